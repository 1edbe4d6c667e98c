/// The number spaces of IMAP. Each is its own type so a UID can never be passed where
/// a sequence number is meant; the POP3 message number lives in the POP3 module.

/// A message's unique identifier (RFC 3501 §2.3.1.1): stable while `UIDValidity` is unchanged.
public struct UID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(_ v: UInt32) { self.rawValue = v }
    public var description: String { String(rawValue) }
    public static func < (lhs: UID, rhs: UID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The mailbox's UIDVALIDITY (RFC 3501 §2.3.1.1): when it changes, every UID is void.
public struct UIDValidity: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(_ v: UInt32) { self.rawValue = v }
    public var description: String { String(rawValue) }
}

/// A message sequence number (RFC 3501 §2.3.1.2): 1-based, shifts on every expunge.
public struct SequenceNumber: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(_ v: UInt32) { self.rawValue = v }
    public var description: String { String(rawValue) }
    public static func < (lhs: SequenceNumber, rhs: SequenceNumber) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A command tag (RFC 3501 §2.2.1), e.g. `A1`. The client picks it; the tagged response echoes it.
public struct IMAPTag: Hashable, Sendable, CustomStringConvertible {
    public var value: String
    public init(_ value: String) { self.value = value }
    public var description: String { value }
}
