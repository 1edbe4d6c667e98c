import Wire

/// A data item of `UID FETCH` (RFC 3501 §6.4.5).
public enum FetchItem: Sendable, Equatable {
    /// `<offset.length>` of a partial fetch: at most `length` octets starting at `offset`.
    public struct Partial: Sendable, Equatable, Hashable {
        public var offset: UInt64
        public var length: UInt64
        public init(offset: UInt64, length: UInt64) {
            self.offset = offset
            self.length = length
        }
    }

    /// `UID`
    case uid
    /// `RFC822.SIZE`: the size with CRLF line endings.
    case rfc822Size
    /// `FLAGS`
    case flags
    /// `INTERNALDATE`: when the server received the message.
    case internalDate
    /// `BODY.PEEK[]` (whole message, no `\Seen` side effect); with `partial`: `BODY.PEEK[]<offset.length>`.
    /// The answer is `BODY[]` or `BODY[]<offset>`.
    case bodyPeek(partial: Partial?)
    /// `BODY.PEEK[HEADER.FIELDS (NAME ...)]`: only these header fields (RFC 3501 §6.4.5), no `\Seen`. The
    /// answer is `BODY[HEADER.FIELDS (NAME ...)]`, the matching lines and a blank line; read the first
    /// field's value with `HeaderFieldScanner`. Names must be atoms (`X-UIDL`).
    case headerFieldsPeek([String])
}

/// The IMAP4rev1 commands the gateway sends (RFC 3501 plus UIDPLUS, MOVE, SASL-IR).
///
///     C: A1 LOGIN "user" "secret"
///     C: A2 SELECT "INBOX"
///     C: A3 UID FETCH 1:* (UID RFC822.SIZE FLAGS)
///     C: A4 UID STORE 3,5 +FLAGS.SILENT (\Seen $POP3Deleted)
public enum IMAPCommand: Sendable, Equatable {
    case capability
    case noop
    case starttls
    case logout
    /// `LOGIN user password` (RFC 3501 §6.2.3), each a quoted string or a literal.
    case login(user: Secret, password: Secret)
    /// `AUTHENTICATE PLAIN` (RFC 4616); with SASL-IR (RFC 4959) the already base64-encoded payload
    /// follows on the same line; an empty payload is sent as `=`.
    case authenticatePlain(initialResponse: Secret?)
    /// Mailbox names are encoded in modified UTF-7 (RFC 3501 §5.1.3), then sent as a quoted string.
    case select(mailbox: String)
    case create(mailbox: String)
    case uidFetch(UIDSet, items: [FetchItem])
    /// `UID STORE set +FLAGS[.SILENT] (flags)`. Flags are sent as given (`\Seen`, `$POP3Deleted`);
    /// check user-supplied keywords with `IMAPCommandEncoder.isValidFlag`.
    case uidStore(UIDSet, addFlags: [String], silent: Bool)
    /// `UID EXPUNGE set` (RFC 4315 UIDPLUS).
    case uidExpunge(UIDSet)
    /// `UID MOVE set mailbox` (RFC 6851).
    case uidMove(UIDSet, mailbox: String)
    case uidCopy(UIDSet, mailbox: String)
    /// `ID ("name" "value" ...)` (RFC 2971): who the client is. Only printable ASCII fields are sent,
    /// each as a quoted string; a nil value is `NIL`.
    ///
    ///     C: I1 ID ("x-originating-ip" "203.0.113.7" "x-originating-port" "50812")
    case id([IDField])
    /// `LIST "" "*"`, with `specialUse` `LIST "" "*" RETURN (SPECIAL-USE)` (RFC 6154 §5.1, needs
    /// LIST-EXTENDED): every mailbox with its attributes, to find the `\Trash` one.
    case listAll(specialUse: Bool)
    /// `NAMESPACE` (RFC 2342).
    case namespace
}

/// One name/value pair of an `ID` command.
public struct IDField: Sendable, Equatable {
    public var name: String
    public var value: String?

    public init(_ name: String, _ value: String?) {
        self.name = name
        self.value = value
    }
}
