import Wire

/// Parsing of the first line of a response, which decides what kind of response it is (RFC 3501 §7):
///
///     S: + Ready for additional command text          → continuation request
///     S: A1 OK [READ-WRITE] Select completed.          → tagged condition
///     S: * OK [UIDVALIDITY 1732780000] UIDs valid      → untagged condition
///     S: * 3 EXISTS                                    → message data
///     S: * 2 FETCH (UID 7 BODY[] {5}                   → the start of a streamed FETCH
extension IMAPResponseParser {
    enum FirstLine: Equatable {
        /// A one-line response.
        case complete(IMAPResponse)
        /// `* n FETCH (`: the attributes start `prefixLength` bytes into the line.
        case fetch(SequenceNumber, prefixLength: Int)
        /// Any other untagged response: skipped to its end, literals included.
        case other(keyword: String)
    }

    /// Parses `bytes[start..<end]`, a whole line without its CRLF.
    static func parseFirstLine(_ bytes: [UInt8], from start: Int, to end: Int) throws(IMAPParseError) -> FirstLine {
        var reader = ByteReader(bytes: bytes, index: start, end: end, isComplete: true)
        guard let first = reader.peek() else { throw .malformed("empty line") }

        if first == Byte.plus {
            reader.index += 1
            if reader.atEnd { return .complete(.continuationRequest(text: "")) }
            try reader.require(ASCII.space, "SP after \"+\"")
            return .complete(.continuationRequest(text: reader.rest()))
        }

        if first == Byte.star {
            reader.index += 1
            try reader.require(ASCII.space, "SP after \"*\"")
            if let byte = reader.peek(), ASCII.isDigit(byte) {
                return try numberedData(&reader, start: start)
            }
            let keyword = Byte.uppercased(try ByteReader.complete(reader.read(while: Byte.isAtomChar)))
            switch keyword {
            case "OK": return .complete(.untagged(try condition(&reader, .ok)))
            case "NO": return .complete(.untagged(try condition(&reader, .no)))
            case "BAD": return .complete(.untagged(try condition(&reader, .bad)))
            case "PREAUTH": return .complete(.untagged(try condition(&reader, .preauth)))
            case "BYE": return .complete(.untagged(try condition(&reader, .bye)))
            case "CAPABILITY":
                guard !reader.atEnd else { return .complete(.capability([])) }
                try reader.require(ASCII.space, "SP after CAPABILITY")
                return .complete(.capability(capabilityList(bytes[reader.index..<end])))
            case "FLAGS":
                try reader.require(ASCII.space, "SP after FLAGS")
                let flags = try ByteReader.complete(reader.readFlagList())
                guard reader.atEnd else { throw reader.malformed("expected end of line after FLAGS") }
                return .complete(.flags(flags))
            // Both are only looked at for `retention.move_to: auto`: one the grammar does not cover
            // (or with a literal) is skipped as before rather than failing the connection.
            case "LIST" where !endsWithLiteral(bytes, start: start, end: end):
                var attempt = reader
                guard let listing = try? listing(&attempt) else { return .other(keyword: keyword) }
                return .complete(.list(listing))
            case "NAMESPACE" where !endsWithLiteral(bytes, start: start, end: end):
                var attempt = reader
                guard let personal = try? namespaces(&attempt) else { return .other(keyword: keyword) }
                return .complete(.namespace(personal: personal))
            case "":
                throw reader.malformed("expected response keyword")
            default:
                return .other(keyword: keyword)
            }
        }

        let tag = try ByteReader.complete(reader.read(while: Byte.isTagChar))
        guard !tag.isEmpty else { throw reader.malformed("expected tag") }
        try reader.require(ASCII.space, "SP after tag")
        let status = Byte.uppercased(try ByteReader.complete(reader.read(while: Byte.isAtomChar)))
        let tagValue = IMAPTag(String(decoding: tag, as: UTF8.self))
        switch status {
        case "OK": return .complete(.tagged(tagValue, try condition(&reader, .ok)))
        case "NO": return .complete(.tagged(tagValue, try condition(&reader, .no)))
        case "BAD": return .complete(.tagged(tagValue, try condition(&reader, .bad)))
        default: throw reader.malformed("expected OK, NO or BAD after tag")
        }
    }

    /// `* 3 EXISTS`, `* 0 RECENT`, `* 4 EXPUNGE`, `* 12 FETCH (`, or unknown numbered data.
    private static func numberedData(_ reader: inout ByteReader, start: Int) throws(IMAPParseError) -> FirstLine {
        let number = try ByteReader.complete(reader.readNumber("number"))
        guard number <= UInt64(UInt32.max) else { throw reader.malformed("number out of range") }
        let value = UInt32(number)
        try reader.require(ASCII.space, "SP after number")
        let keyword = Byte.uppercased(try ByteReader.complete(reader.read(while: Byte.isAtomChar)))
        switch keyword {
        case "EXISTS", "RECENT":
            guard reader.atEnd else { throw reader.malformed("expected end of line after \(keyword)") }
            return .complete(keyword == "EXISTS" ? .exists(value) : .recent(value))
        case "EXPUNGE":
            guard value > 0 else { throw reader.malformed("sequence number 0") }
            guard reader.atEnd else { throw reader.malformed("expected end of line after EXPUNGE") }
            return .complete(.expunge(SequenceNumber(value)))
        case "FETCH":
            guard value > 0 else { throw reader.malformed("sequence number 0") }
            try reader.require(ASCII.space, "SP after FETCH")
            try reader.require(Byte.openParen, "\"(\" after FETCH")
            return .fetch(SequenceNumber(value), prefixLength: reader.index - start)
        case "":
            throw reader.malformed("expected keyword after number")
        default:
            return .other(keyword: keyword)
        }
    }

    /// `resp-text` after a status: `[CODE argument] text`, both parts optional.
    static func condition(_ reader: inout ByteReader, _ status: IMAPStatus) throws(IMAPParseError) -> IMAPCondition {
        guard !reader.atEnd else { return IMAPCondition(status: status, code: nil, text: "") }
        try reader.require(ASCII.space, "SP after status")
        var code: IMAPResponseCode?
        if reader.peek() == Byte.openBracket {
            reader.index += 1
            code = try responseCode(&reader)
            if reader.peek() == ASCII.space { reader.index += 1 }
        }
        return IMAPCondition(status: status, code: code, text: reader.rest())
    }

    private static func responseCode(_ reader: inout ByteReader) throws(IMAPParseError) -> IMAPResponseCode {
        let nameBytes = try ByteReader.complete(reader.read(while: Byte.isAtomChar))
        guard !nameBytes.isEmpty else { throw reader.malformed("expected response code") }
        let name = Byte.uppercased(nameBytes)
        var argument: ArraySlice<UInt8>?
        if reader.peek() == ASCII.space {
            reader.index += 1
            let start = reader.index
            // The argument ends at the first "]" outside a quoted string.
            var quoted = false
            var escaped = false
            while let byte = reader.peek() {
                if quoted {
                    if escaped { escaped = false } else if byte == Byte.backslash { escaped = true } else if byte == Byte.quote { quoted = false }
                } else if byte == Byte.quote {
                    quoted = true
                } else if byte == Byte.closeBracket {
                    break
                }
                reader.index += 1
            }
            argument = reader.bytes[start..<reader.index]
        }
        try reader.require(Byte.closeBracket, "\"]\" after response code")
        return try responseCode(name: name, argument: argument, reader: reader)
    }

    private static func responseCode(name: String, argument: ArraySlice<UInt8>?, reader: ByteReader) throws(IMAPParseError) -> IMAPResponseCode {
        func number() throws(IMAPParseError) -> UInt32 {
            guard let argument, let value = ASCII.parseUnsigned(argument), value <= UInt64(UInt32.max) else {
                throw reader.malformed("expected number in \(name)")
            }
            return UInt32(value)
        }
        switch name {
        case "ALERT": return .alert
        case "PARSE": return .parse
        case "READ-ONLY": return .readOnly
        case "READ-WRITE": return .readWrite
        case "TRYCREATE": return .tryCreate
        case "CAPABILITY": return .capability(capabilityList(argument ?? []))
        case "UIDVALIDITY": return .uidValidity(UIDValidity(try number()))
        case "UIDNEXT": return .uidNext(UID(try number()))
        case "PERMANENTFLAGS":
            guard let argument else { throw reader.malformed("expected flag list in PERMANENTFLAGS") }
            var flagReader = ByteReader(bytes: Array(argument), index: 0, end: argument.count, isComplete: true)
            let flags = try ByteReader.complete(flagReader.readFlagList())
            guard flagReader.atEnd else { throw flagReader.malformed("expected \"]\" after PERMANENTFLAGS list") }
            return .permanentFlags(flags)
        // RFC 5530
        case "INUSE": return .inUse
        case "AUTHENTICATIONFAILED": return .authenticationFailed
        case "AUTHORIZATIONFAILED": return .authorizationFailed
        case "UNAVAILABLE": return .unavailable
        case "EXPIRED": return .expired
        case "PRIVACYREQUIRED": return .privacyRequired
        case "CONTACTADMIN": return .contactAdmin
        case "NOPERM": return .noPerm
        case "LIMIT": return .limit
        case "OVERQUOTA": return .overQuota
        case "SERVERBUG": return .serverBug
        case "NONEXISTENT": return .nonExistent
        case "ALREADYEXISTS": return .alreadyExists
        case "CANNOT": return .cannot
        default: return .other(name: name, argument: argument.map { String(decoding: $0, as: UTF8.self) })
        }
    }

    /// A line that announces a literal (`{n}` at its end): LIST and NAMESPACE with one are skipped like
    /// any unknown response (their names then stay unknown), so only whole lines are parsed here.
    static func endsWithLiteral(_ bytes: [UInt8], start: Int, end: Int) -> Bool {
        end > start && bytes[end - 1] == Byte.closeBrace
    }

    /// `SP "(" [mbx-list-flags] ")" SP (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox [SP extended data]`
    /// (RFC 3501 §7.2.2, RFC 5258 §9). Extended data after the name (CHILDINFO, OLDNAME) is ignored.
    private static func listing(_ reader: inout ByteReader) throws(IMAPParseError) -> MailboxListing {
        try reader.require(ASCII.space, "SP after LIST")
        let attributes = try ByteReader.complete(reader.readFlagList())
        try reader.require(ASCII.space, "SP after LIST attributes")
        let delimiter = try nilOrQuoted(&reader, "LIST delimiter")
        try reader.require(ASCII.space, "SP after LIST delimiter")
        let name = try astring(&reader, "mailbox name")
        guard reader.atEnd || reader.peek() == ASCII.space else { throw reader.malformed("expected end of LIST") }
        reader.index = reader.end
        return MailboxListing(attributes: attributes, delimiter: delimiter, name: name)
    }

    /// `SP personal SP other SP shared` (RFC 2342 §5); each `NIL` or `"(" 1*("(" prefix SP delimiter
    /// *(extension) ")") ")"`. Only the personal namespaces are returned; the others are checked and dropped.
    private static func namespaces(_ reader: inout ByteReader) throws(IMAPParseError) -> [Namespace] {
        var personal: [Namespace] = []
        for part in 0..<3 {
            try reader.require(ASCII.space, "SP in NAMESPACE")
            let list = try namespaceList(&reader)
            if part == 0 { personal = list }
        }
        guard reader.atEnd else { throw reader.malformed("expected end of NAMESPACE") }
        return personal
    }

    private static func namespaceList(_ reader: inout ByteReader) throws(IMAPParseError) -> [Namespace] {
        if try readNIL(&reader) { return [] }
        try reader.require(Byte.openParen, "\"(\" or NIL in NAMESPACE")
        var list: [Namespace] = []
        repeat {
            try reader.require(Byte.openParen, "\"(\" before a namespace")
            let prefix = try astring(&reader, "namespace prefix")
            try reader.require(ASCII.space, "SP after namespace prefix")
            let delimiter = try nilOrQuoted(&reader, "namespace delimiter")
            // Namespace_Response_Extension: SP string SP "(" string *(SP string) ")"
            while reader.peek() == ASCII.space {
                reader.index += 1
                _ = try astring(&reader, "namespace extension")
                try reader.require(ASCII.space, "SP after namespace extension")
                try reader.require(Byte.openParen, "\"(\" of namespace extension values")
                _ = try astring(&reader, "namespace extension value")
                while reader.peek() == ASCII.space {
                    reader.index += 1
                    _ = try astring(&reader, "namespace extension value")
                }
                try reader.require(Byte.closeParen, "\")\" after namespace extension values")
            }
            try reader.require(Byte.closeParen, "\")\" after a namespace")
            list.append(Namespace(prefix: prefix, delimiter: delimiter))
        } while reader.peek() == Byte.openParen
        try reader.require(Byte.closeParen, "\")\" after the namespaces")
        return list
    }

    /// `NIL` (true, consumed) or anything else (false, nothing consumed); case-insensitive.
    private static func readNIL(_ reader: inout ByteReader) throws(IMAPParseError) -> Bool {
        let start = reader.index
        let word = try ByteReader.complete(reader.read(while: Byte.isAtomChar))
        if Byte.uppercased(word) == "NIL" { return true }
        reader.index = start
        return false
    }

    /// `nil / DQUOTE QUOTED-CHAR DQUOTE`: a hierarchy delimiter.
    private static func nilOrQuoted(_ reader: inout ByteReader, _ what: String) throws(IMAPParseError) -> String? {
        if try readNIL(&reader) { return nil }
        guard reader.peek() == Byte.quote else { throw reader.malformed("expected \(what)") }
        return String(decoding: try ByteReader.complete(reader.readQuoted()), as: UTF8.self)
    }

    /// `astring` without literals (lines announcing one are not parsed here): an atom of ASTRING-CHARs
    /// or a quoted string.
    private static func astring(_ reader: inout ByteReader, _ what: String) throws(IMAPParseError) -> String {
        if reader.peek() == Byte.quote {
            return String(decoding: try ByteReader.complete(reader.readQuoted()), as: UTF8.self)
        }
        let atom = try ByteReader.complete(reader.read { Byte.isAtomChar($0) || $0 == Byte.closeBracket })
        guard !atom.isEmpty else { throw reader.malformed("expected \(what)") }
        return String(decoding: atom, as: UTF8.self)
    }

    /// Space-separated capability names, uppercased.
    private static func capabilityList(_ bytes: ArraySlice<UInt8>) -> [String] {
        bytes.split(separator: ASCII.space).map(Byte.uppercased)
    }
}
