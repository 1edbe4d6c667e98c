import Wire

/// Turns an `IMAPCommand` into bytes for the wire (RFC 3501 §4 data formats, RFC 7888 LITERAL+).
///
/// User data (credentials, mailbox names) is never sent as an atom: it is a quoted string when every
/// byte is 0x01-0x7F other than CR and LF, else a literal. A synchronising literal splits the command:
///
///     C: A1 LOGIN "user" {7}        ← segment 0, then wait for "+ ..."
///     S: + Ready for additional command text
///     C: pässwd                     ← segment 1 (ends with CRLF)
///
/// With LITERAL+ the same command is one segment: `A1 LOGIN "user" {7+}\r\npässwd\r\n`.
public enum IMAPCommandEncoder {
    /// Returns the command as wire segments. Segment 0 starts with the tag. When there is more than one
    /// segment, each previous segment ends with a synchronising literal header `{n}\r\n` and the sender must
    /// wait for a continuation request ("+ ...") before sending the next one — unless `literalPlus` is true,
    /// in which case non-synchronising literals `{n+}` are used and ONE segment is returned.
    /// The last segment ends with CRLF.
    public static func encode(_ command: IMAPCommand, tag: IMAPTag, literalPlus: Bool) -> [[UInt8]] {
        var writer = Writer(literalPlus: literalPlus)
        writer.raw(tag.value)
        writer.raw(" ")
        switch command {
        case .capability:
            writer.raw("CAPABILITY")
        case .noop:
            writer.raw("NOOP")
        case .starttls:
            writer.raw("STARTTLS")
        case .logout:
            writer.raw("LOGOUT")
        case .login(let user, let password):
            writer.raw("LOGIN ")
            writer.string(user.bytes)
            writer.raw(" ")
            writer.string(password.bytes)
        case .authenticatePlain(let initialResponse):
            writer.raw("AUTHENTICATE PLAIN")
            if let initialResponse {
                writer.raw(" ")
                // RFC 4959 §3: an empty initial response is sent as "=".
                writer.bytes(initialResponse.isEmpty ? [UInt8(ascii: "=")] : initialResponse.bytes)
            }
        case .select(let mailbox):
            writer.raw("SELECT ")
            writer.mailbox(mailbox)
        case .create(let mailbox):
            writer.raw("CREATE ")
            writer.mailbox(mailbox)
        case .uidFetch(let set, let items):
            writer.raw("UID FETCH \(set) (")
            writer.raw(items.map(Self.fetchItem).joined(separator: " "))
            writer.raw(")")
        case .uidStore(let set, let flags, let silent):
            writer.raw("UID STORE \(set) +FLAGS\(silent ? ".SILENT" : "") (")
            writer.raw(flags.joined(separator: " "))
            writer.raw(")")
        case .uidExpunge(let set):
            writer.raw("UID EXPUNGE \(set)")
        case .uidMove(let set, let mailbox):
            writer.raw("UID MOVE \(set) ")
            writer.mailbox(mailbox)
        case .uidCopy(let set, let mailbox):
            writer.raw("UID COPY \(set) ")
            writer.mailbox(mailbox)
        case .listAll(let specialUse):
            writer.raw(specialUse ? "LIST \"\" \"*\" RETURN (SPECIAL-USE)" : "LIST \"\" \"*\"")
        case .namespace:
            writer.raw("NAMESPACE")
        case .id(let fields):
            writer.raw("ID ")
            let printable = fields.filter { Self.isPrintableIDText($0.name) && ($0.value.map(Self.isPrintableIDText) ?? true) }
            guard !printable.isEmpty else {
                writer.raw("NIL")
                break
            }
            writer.raw("(")
            for (index, field) in printable.enumerated() {
                if index > 0 { writer.raw(" ") }
                writer.string(Array(field.name.utf8))
                writer.raw(" ")
                if let value = field.value { writer.string(Array(value.utf8)) } else { writer.raw("NIL") }
            }
            writer.raw(")")
        }
        return writer.finish()
    }

    /// RFC 2971 §3.3: field strings are at most 30 octets for names and 1024 for values; we send
    /// printable ASCII only, so an ID never needs a literal (and never waits for a continuation).
    static func isPrintableIDText(_ text: String) -> Bool {
        text.utf8.count <= 1024 && text.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
    }

    /// The client's answer to an AUTHENTICATE continuation: the payload + CRLF (payload "*" cancels).
    public static func continuationResponse(_ payload: Secret) -> [UInt8] {
        payload.bytes + ASCII.crlf
    }

    /// Whether `flag` can be sent in a STORE flag list: a system flag (`\Seen`) or a keyword atom
    /// (`$POP3Deleted`). Use it to validate configured keywords; the encoder sends flags as given.
    public static func isValidFlag(_ flag: String) -> Bool {
        var bytes = Array(flag.utf8)[...]
        if bytes.first == UInt8(ascii: "\\") { bytes = bytes.dropFirst() }
        return !bytes.isEmpty && bytes.allSatisfy(isAtomChar)
    }

    static func fetchItem(_ item: FetchItem) -> String {
        switch item {
        case .uid: return "UID"
        case .rfc822Size: return "RFC822.SIZE"
        case .flags: return "FLAGS"
        case .internalDate: return "INTERNALDATE"
        case .bodyPeek(let partial?): return "BODY.PEEK[]<\(partial.offset).\(partial.length)>"
        case .bodyPeek(nil): return "BODY.PEEK[]"
        case .headerFieldsPeek(let names):
            precondition(!names.isEmpty && names.allSatisfy { !$0.isEmpty && $0.utf8.allSatisfy(isAtomChar) }, "header field names must be atoms")
            return "BODY.PEEK[HEADER.FIELDS (\(names.joined(separator: " ")))]"
        }
    }

    /// RFC 3501 §9 ATOM-CHAR: any CHAR except atom-specials `( ) { SP CTL % * " \ ]`. The one atom
    /// check: the response parser and the configuration's keyword check use it too.
    public static func isAtomChar(_ byte: UInt8) -> Bool {
        switch byte {
        case 0...0x20, 0x7F...0xFF: return false
        case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "{"), UInt8(ascii: "%"), UInt8(ascii: "*"),
             UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "]"):
            return false
        default: return true
        }
    }

    /// Collects the segments of one command.
    struct Writer {
        let literalPlus: Bool
        var segments: [[UInt8]] = []
        var current: [UInt8] = []

        init(literalPlus: Bool) { self.literalPlus = literalPlus }

        mutating func raw(_ text: String) { current += Array(text.utf8) }
        mutating func bytes(_ bytes: [UInt8]) { current += bytes }

        mutating func mailbox(_ name: String) {
            string(Array(ModifiedUTF7.encode(name).utf8))
        }

        /// A quoted string (RFC 3501 §4.3) if every byte allows it, else a literal.
        mutating func string(_ value: [UInt8]) {
            let quotable = value.allSatisfy { $0 >= 0x01 && $0 <= 0x7F && $0 != ASCII.cr && $0 != ASCII.lf }
            guard quotable else {
                literal(value)
                return
            }
            current.append(UInt8(ascii: "\""))
            for byte in value {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { current.append(UInt8(ascii: "\\")) }
                current.append(byte)
            }
            current.append(UInt8(ascii: "\""))
        }

        mutating func literal(_ value: [UInt8]) {
            if literalPlus {
                raw("{\(value.count)+}\r\n")
                current += value
            } else {
                raw("{\(value.count)}\r\n")
                segments.append(current)
                current = value
            }
        }

        mutating func finish() -> [[UInt8]] {
            current += ASCII.crlf
            segments.append(current)
            return segments
        }
    }
}
