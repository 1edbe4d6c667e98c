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

    /// Entries must be in ascending UID order (the snapshot sorts them).
    public init(entries: [Entry], uidValidity: UIDValidity) {
        self.entries = entries
        self.uidValidity = uidValidity
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
    public static func snapshot(_ fetched: [FetchedSummary], uidValidity: UIDValidity, hidden: Hidden = Hidden()) -> Maildrop {
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
        return Maildrop(entries: entries, uidValidity: uidValidity)
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
