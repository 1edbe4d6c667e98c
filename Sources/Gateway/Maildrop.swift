import IMAP
import Wire
import POP3

/// The POP3 maildrop: a snapshot of the IMAP folder taken once at login.
///
/// Number spaces, defined here once (never mix them up as bare integers):
/// - `MessageNumber` (POP3, 1-based): the index of an entry in `entries` plus one. Fixed for the whole
///   session (RFC 1939 §5: numbers never shift, deleted messages keep theirs).
/// - `UID` (IMAP): what every backend command after the snapshot uses, so expunges by other clients
///   (which shift IMAP sequence numbers) can never make us touch the wrong message.
/// - `UIDValidity`: with the UID, the stable identity behind the UIDL.
/// IMAP sequence numbers are used nowhere after the snapshot.
public struct Maildrop: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var uid: UID
        /// RFC822.SIZE: the message size with CRLF line endings, as Dovecot's POP3 reports it.
        public var size: UInt64
        public var markedDeleted = false
        public var retrieved = false

        public init(uid: UID, size: UInt64) {
            self.uid = uid
            self.size = size
        }
    }

    public private(set) var entries: [Entry]
    public let uidValidity: UIDValidity
    /// `uidl_source: header`: the `X-UIDL` values used as UIDLs, keyed by entry index (every one usable
    /// and unique in the maildrop, see `resolveHeaderUIDLs`); nil otherwise.
    public let headerUIDLs: HeaderUIDLs?

    /// Entries must be in ascending UID order (the snapshot sorts them).
    public init(entries: [Entry], uidValidity: UIDValidity, headerUIDLs: HeaderUIDLs? = nil) {
        self.entries = entries
        self.uidValidity = uidValidity
        self.headerUIDLs = headerUIDLs
    }

    /// The UIDL of the entry at `index` (0-based) appended to `output`: its header UIDL if it has one,
    /// else `format` of its UID and the UIDVALIDITY.
    public func appendUIDL(at index: Int, format: UIDLFormat, to output: inout [UInt8]) {
        if let headerUIDLs, !headerUIDLs.isEmpty, let value = headerUIDLs.value(forKey: UInt32(index)) {
            output.append(contentsOf: value)
            return
        }
        format.append(uid: entries[index].uid.rawValue, uidValidity: uidValidity.rawValue, to: &output)
    }

    public func uidl(at index: Int, format: UIDLFormat) -> String {
        var out: [UInt8] = []
        appendUIDL(at: index, format: format, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    public enum Lookup: Equatable {
        case found(Entry)
        case noSuchMessage
        case deleted
    }

    public func lookup(_ number: MessageNumber) -> Lookup {
        guard number.rawValue >= 1, number.rawValue <= entries.count else { return .noSuchMessage }
        let entry = entries[number.rawValue - 1]
        return entry.markedDeleted ? .deleted : .found(entry)
    }

    /// The entry when it exists and is not marked deleted.
    public func visibleEntry(_ number: MessageNumber) -> Entry? {
        if case .found(let entry) = lookup(number) { return entry }
        return nil
    }

    /// Messages not marked deleted, and their total size (STAT).
    public var visibleCount: Int { entries.lazy.filter { !$0.markedDeleted }.count }
    /// Saturating: sizes come from the backend, and no sum of them may trap.
    public var visibleSize: UInt64 { entries.lazy.filter { !$0.markedDeleted }.reduce(0) { $0.saturatingAdding($1.size) } }

    public var deletedUIDs: [UID] { entries.filter(\.markedDeleted).map(\.uid) }
    public var retrievedUIDs: [UID] { entries.filter(\.retrieved).map(\.uid) }

    public mutating func markDeleted(_ number: MessageNumber) { entries[number.rawValue - 1].markedDeleted = true }
    public mutating func markRetrieved(_ number: MessageNumber) { entries[number.rawValue - 1].retrieved = true }

    /// RSET: unmarks every deletion. Returns how many were unmarked.
    public mutating func unmarkAll() -> Int {
        var count = 0
        for index in entries.indices where entries[index].markedDeleted {
            entries[index].markedDeleted = false
            count += 1
        }
        return count
    }

    /// Builds the snapshot from the `UID FETCH 1:* (UID RFC822.SIZE FLAGS)` answer, leaving out what
    /// `hidden` says (messages another client flagged `\Deleted` are always left out: webmail deleted
    /// them, POP3 no longer offers them).
    ///
    /// With `headerCandidates` (`uidl_source: header`: usable `X-UIDL` values keyed by UID), the maildrop
    /// gets those that keep every UIDL unique (`resolveHeaderUIDLs`); `ignoredHeaderUIDLs` says how many
    /// were not used.
    public static func snapshot(_ fetched: [FetchedSummary], uidValidity: UIDValidity, hidden: Hidden,
                                headerCandidates: HeaderUIDLs?, format: UIDLFormat = .dovecotDefault) -> (Maildrop, ignoredHeaderUIDLs: Int) {
        let entries = snapshotEntries(fetched, hidden: hidden)
        guard let headerCandidates else { return (Maildrop(entries: entries, uidValidity: uidValidity), 0) }
        let (used, ignored) = resolveHeaderUIDLs(entries: entries, candidates: headerCandidates, format: format, uidValidity: uidValidity)
        return (Maildrop(entries: entries, uidValidity: uidValidity, headerUIDLs: used), ignored)
    }

    /// The entries of the snapshot, without header UIDLs.
    public static func snapshot(_ fetched: [FetchedSummary], uidValidity: UIDValidity, hidden: Hidden = Hidden()) -> Maildrop {
        Maildrop(entries: snapshotEntries(fetched, hidden: hidden), uidValidity: uidValidity)
    }

    static func snapshotEntries(_ fetched: [FetchedSummary], hidden: Hidden) -> [Entry] {
        var entries: [Entry] = []
        entries.reserveCapacity(fetched.count)
        // Backends answer `UID FETCH 1:*` in UID order: then there is nothing to sort and, UIDs being
        // strictly ascending, no duplicate to drop. Otherwise sort, and drop repeats of a UID.
        let inOrder = zip(fetched, fetched.dropFirst()).allSatisfy { $0.uid < $1.uid }
        var previous: UID?
        for item in inOrder ? fetched : fetched.sorted(by: { $0.uid < $1.uid }) {
            if item.uid == previous { continue }
            previous = item.uid
            if item.flags.contains(where: hidden.hides) { continue }
            entries.append(Entry(uid: item.uid, size: item.size))
        }
        return entries
    }

    /// Which `X-UIDL` values become UIDLs. RFC 1939 §7 wants every unique-id in a maildrop to be unique,
    /// and headers copied between messages or forged by a sender can repeat one, so a value is used only
    /// when no message before it (in UID order) uses it and it is not another message's `uidl_format`
    /// UIDL. A message whose value is not used gets its format UIDL, which is then unique as well: format
    /// UIDLs differ from each other (they contain the UID) and from every value used.
    ///
    /// Compared by 64-bit FNV-1a hashes; a collision only makes a value unused, never a duplicate. Costs one
    /// format UIDL hash per message (8 bytes each, only while the maildrop is built), and only when some
    /// listed message has a candidate.
    static func resolveHeaderUIDLs(entries: [Entry], candidates: HeaderUIDLs, format: UIDLFormat, uidValidity: UIDValidity) -> (HeaderUIDLs, ignored: Int) {
        var spans = candidates.spans
        if !candidates.isSortedByKey {
            // Stable, so of several values for one UID (a repeated FETCH response) the first is kept.
            spans = spans.enumerated().sorted { ($0.element.key, $0.offset) < ($1.element.key, $1.offset) }.map(\.element)
        }
        var matched: [(index: Int, span: HeaderUIDLs.Span)] = []
        var next = 0
        for (index, entry) in entries.enumerated() {
            let uid = entry.uid.rawValue
            while next < spans.count && spans[next].key < uid { next += 1 }
            guard next < spans.count, spans[next].key == uid else { continue }
            matched.append((index, spans[next]))
            while next < spans.count && spans[next].key == uid { next += 1 }
        }
        var used = HeaderUIDLs()
        guard !matched.isEmpty else { return (used, 0) }
        var scratch: [UInt8] = []
        scratch.reserveCapacity(64)
        var formatHashes: [UInt64] = []
        formatHashes.reserveCapacity(entries.count)
        for entry in entries {
            scratch.removeAll(keepingCapacity: true)
            format.append(uid: entry.uid.rawValue, uidValidity: uidValidity.rawValue, to: &scratch)
            formatHashes.append(FNV1a64.hash(scratch))
        }
        formatHashes.sort()
        var taken = Set<UInt64>()
        var ignored = 0
        for (index, span) in matched {
            let value = candidates.value(of: span)
            let hash = FNV1a64.hash(value)
            scratch.removeAll(keepingCapacity: true)
            format.append(uid: entries[index].uid.rawValue, uidValidity: uidValidity.rawValue, to: &scratch)
            let isOwnFormatUIDL = value.elementsEqual(scratch)
            if taken.contains(hash) || (!isOwnFormatUIDL && Self.sortedContains(formatHashes, hash)) {
                ignored += 1
                continue
            }
            taken.insert(hash)
            used.append(key: UInt32(index), value)
        }
        return (used, ignored)
    }

    static func sortedContains(_ sorted: [UInt64], _ value: UInt64) -> Bool {
        var low = 0, high = sorted.count
        while low < high {
            let mid = (low + high) / 2
            if sorted[mid] < value { low = mid + 1 } else { high = mid }
        }
        return low < sorted.count && sorted[low] == value
    }

    /// The flags that keep a message out of the maildrop, compared in any case (RFC 3501 §2.3.2)
    /// without lower-cased copies: `\Deleted` always, and what the session's policy adds.
    public struct Hidden: Sendable, Equatable {
        /// `on_delete: flag`'s keyword, `visible: not_popped`'s keyword.
        public var keywords: [String]
        /// `visible: unseen`.
        public var seen: Bool

        public init(keywords: [String] = [], seen: Bool = false) {
            self.keywords = keywords
            self.seen = seen
        }

        public init(_ policy: SessionPolicy) {
            var keywords: [String] = []
            if policy.retention.onDelete == .flag { keywords.append(policy.retention.flagKeyword) }
            if policy.visible == .notPopped { keywords.append(policy.retrievedKeyword) }
            self.init(keywords: keywords, seen: policy.visible == .unseen)
        }

        public func hides(_ flag: String) -> Bool {
            let bytes = flag.utf8
            if ASCII.equalsIgnoringCase(bytes, "\\Deleted".utf8) { return true }
            if seen && ASCII.equalsIgnoringCase(bytes, "\\Seen".utf8) { return true }
            return keywords.contains { ASCII.equalsIgnoringCase(bytes, $0.utf8) }
        }
    }
}

/// One message as the snapshot FETCH described it.
public struct FetchedSummary: Sendable, Equatable {
    public var uid: UID
    public var size: UInt64
    public var flags: [String]

    public init(uid: UID, size: UInt64, flags: [String]) {
        self.uid = uid
        self.size = size
        self.flags = flags
    }
}

extension UInt64 {
    /// `self + other`, or `UInt64.max` where that would overflow.
    public func saturatingAdding(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}
