/// UIDL change detection (in the spirit of Dovecot's `uidl_change` log variable): does a client that
/// kept mail on the server see the UIDLs it knows again, or is it about to download everything anew?
///
/// Each session that logged in leaves a small sample of the UIDLs its client may keep (`UIDLSample`, at
/// most `UIDLSample.capacity` items); the next session of the same user compares its maildrop with it
/// (`Maildrop.observeUIDLs`). New mail and deleted mail are normal; what is flagged is remembered UIDLs
/// that are gone while messages of their sizes are still there: the same mail under new UIDLs (a
/// UIDVALIDITY change, another `uidl_format` or `uidl_source`). The samples live outside the sessions in
/// a bounded least-recently-used table (`UIDLHistory`). docs/uidl.md explains the summary fields.

/// A sample of a maildrop's UIDLs: the `capacity` smallest 64-bit FNV-1a hashes (a bottom-k sketch, the
/// same messages whichever order they come in), each with its message's size.
public struct UIDLSample: Sendable, Equatable {
    public struct Item: Sendable, Equatable {
        public var hash: UInt64
        public var size: UInt64
        public init(hash: UInt64, size: UInt64) {
            self.hash = hash
            self.size = size
        }
    }

    public static let capacity = 8

    /// Ascending by hash.
    public private(set) var items: [Item] = []

    public init() {}

    public init(items: [Item]) {
        for item in items { offer(item) }
    }

    /// Keeps `item` if it is among the `capacity` smallest hashes offered (a repeated hash once).
    public mutating func offer(_ item: Item) {
        if items.count == Self.capacity, let last = items.last, item.hash >= last.hash { return }
        var index = items.count
        while index > 0 && items[index - 1].hash > item.hash { index -= 1 }
        if index > 0 && items[index - 1].hash == item.hash { return }
        items.insert(item, at: index)
        if items.count > Self.capacity { items.removeLast() }
    }
}

public enum UIDLChange: String, Sendable, Equatable {
    /// No earlier session of this user on this instance (or it was forgotten).
    case first
    /// The UIDLs the client may know are still listed, or gone with their messages.
    case no
    /// Most remembered UIDLs are gone while messages of their sizes are still listed.
    case yes
}

/// What a session reports at its end.
public struct UIDLObservation: Sendable, Equatable {
    /// FNV-1a 64 of the UIDLs listed at login, in message order, each followed by LF.
    public var setHash: UInt64
    public var change: UIDLChange
    /// What the next session compares with: the UIDLs a client keeps after this session.
    public var sample: UIDLSample

    /// The summary's `uidl_hash`: the first 8 hex digits of `setHash`.
    public var shortHash: String {
        let hex = String(setHash >> 32, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }
}

extension Maildrop {
    /// One pass over the maildrop: the hash of its UIDL set, the change against `previous` (nil: `first`),
    /// and the sample to remember, of the entries for which `kept` is true (not removed at QUIT).
    public func observeUIDLs(format: UIDLFormat, previous: UIDLSample?, kept: (Entry) -> Bool) -> UIDLObservation {
        var setHash = FNV1a64()
        var sample = UIDLSample()
        let remembered = previous?.items ?? []
        var seen = [Bool](repeating: false, count: remembered.count)
        var sizeSeen = [Bool](repeating: false, count: remembered.count)
        var scratch: [UInt8] = []
        scratch.reserveCapacity(72)
        for index in entries.indices {
            scratch.removeAll(keepingCapacity: true)
            appendUIDL(at: index, format: format, to: &scratch)
            setHash.add(scratch)
            setHash.add(0x0A)
            let hash = FNV1a64.hash(scratch)
            let entry = entries[index]
            for slot in remembered.indices {
                if remembered[slot].hash == hash { seen[slot] = true }
                if remembered[slot].size == entry.size { sizeSeen[slot] = true }
            }
            if kept(entry) { sample.offer(UIDLSample.Item(hash: hash, size: entry.size)) }
        }
        let change: UIDLChange
        if previous == nil {
            change = .first
        } else {
            // Gone, while a message of the same size is still listed: the same mail under another UIDL.
            let moved = remembered.indices.filter { !seen[$0] && sizeSeen[$0] }.count
            change = moved * 2 > remembered.count ? .yes : .no
        }
        return UIDLObservation(setHash: setHash.value, change: change, sample: sample)
    }
}

/// The samples of the users' last sessions on this instance: at most `capacity` users, the least
/// recently used forgotten first. Pure; the daemon owns one behind a lock. O(1) amortised per call.
public struct UIDLHistory: Sendable {
    public let capacity: Int
    private var samples: [String: (sample: UIDLSample, stamp: UInt64)] = [:]
    /// Users in the order they were last used (oldest first); entries whose stamp is outdated are skipped.
    private var order: [(user: String, stamp: UInt64)] = []
    private var orderStart = 0
    private var clock: UInt64 = 0

    public init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    public var count: Int { samples.count }

    /// The sample of `user`'s previous session, if it is remembered (and marks the user as used).
    public mutating func recall(_ user: String) -> UIDLSample? {
        guard let found = samples[user] else { return nil }
        touch(user, found.sample)
        return found.sample
    }

    public mutating func remember(_ user: String, _ sample: UIDLSample) {
        guard capacity > 0 else { return }
        touch(user, sample)
        while samples.count > capacity { evictOldest() }
    }

    private mutating func touch(_ user: String, _ sample: UIDLSample) {
        clock += 1
        samples[user] = (sample, clock)
        order.append((user, clock))
        compactIfNeeded()
    }

    private mutating func evictOldest() {
        while orderStart < order.count {
            let (user, stamp) = order[orderStart]
            orderStart += 1
            if samples[user]?.stamp == stamp {
                samples[user] = nil
                return
            }
        }
    }

    /// The order list holds one live entry per user plus outdated ones; rebuilt when they outnumber
    /// the live ones, so its size stays below about twice the users remembered.
    private mutating func compactIfNeeded() {
        guard order.count - orderStart > 2 * samples.count + 16 else { return }
        order = order[orderStart...].filter { samples[$0.user]?.stamp == $0.stamp }
        orderStart = 0
    }
}
