/// RFC 1939 §5 message number, 1-based, as the POP3 client sees it.
///
/// Distinct from IMAP UIDs and sequence numbers (see the maildrop snapshot in module Gateway).
/// `POP3CommandParser` only produces values in `1...Int32.max`; other code must not invent 0.
public struct MessageNumber: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: Int

    public init(_ v: Int) { rawValue = v }

    public static func < (lhs: MessageNumber, rhs: MessageNumber) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { String(rawValue) }
}
