import IMAP
import Wire

/// `X-UIDL:` values (`uidl_source: header`), packed: one byte pool and a sorted index of spans, so
/// messages without the header cost nothing and those with one cost their bytes plus 12.
///
/// While the snapshot is taken the spans are keyed by IMAP UID (`SnapshotBuilder.headerUIDLs`); in the
/// maildrop they are keyed by the entry index, and only values that are safe to use are left (see
/// `Maildrop.snapshot`).
public struct HeaderUIDLs: Sendable, Equatable {
    struct Span: Sendable, Equatable {
        var key: UInt32
        var offset: UInt32
        var length: UInt8
    }

    var bytes: [UInt8] = []
    var spans: [Span] = []

    public init() {}

    public var count: Int { spans.count }
    public var isEmpty: Bool { spans.isEmpty }

    /// RFC 1939 §7: a unique-id is 1 to 70 characters from 0x21 to 0x7E. Anything else in a header
    /// (too long, spaces, 8-bit, empty) is not used: the message gets its `uidl_format` UIDL.
    public static func isUsable(_ value: some Collection<UInt8>) -> Bool {
        value.count >= 1 && value.count <= 70 && value.allSatisfy { $0 >= 0x21 && $0 <= 0x7E }
    }

    mutating func append(key: UInt32, _ value: some Collection<UInt8>) {
        precondition(Self.isUsable(value))
        spans.append(Span(key: key, offset: UInt32(bytes.count), length: UInt8(value.count)))
        bytes.append(contentsOf: value)
    }

    func value(of span: Span) -> ArraySlice<UInt8> {
        bytes[Int(span.offset)..<Int(span.offset) + Int(span.length)]
    }

    /// The value for `key`, by binary search (spans are sorted by key).
    public func value(forKey key: UInt32) -> ArraySlice<UInt8>? {
        var low = 0, high = spans.count
        while low < high {
            let mid = (low + high) / 2
            if spans[mid].key < key { low = mid + 1 } else { high = mid }
        }
        guard low < spans.count, spans[low].key == key else { return nil }
        return value(of: spans[low])
    }

    var isSortedByKey: Bool { zip(spans, spans.dropFirst()).allSatisfy { $0.key < $1.key } }
}

/// 64-bit FNV-1a (Fowler–Noll–Vo): a fast, stable hash of bytes, the same in every process and
/// release (Swift's `Hasher` is seeded per process). Not a cryptographic hash; used where a collision
/// costs at most a missed hint (`uidl_hash`, `uidl_change`) or a header UIDL not used.
public struct FNV1a64: Sendable, Equatable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func add(_ bytes: some Sequence<UInt8>) {
        for byte in bytes {
            value ^= UInt64(byte)
            value = value &* 0x0000_0100_0000_01B3
        }
    }

    public mutating func add(_ byte: UInt8) {
        value ^= UInt64(byte)
        value = value &* 0x0000_0100_0000_01B3
    }

    public static func hash(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var h = FNV1a64()
        h.add(bytes)
        return h.value
    }
}
