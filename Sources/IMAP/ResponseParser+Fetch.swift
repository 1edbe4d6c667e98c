import Wire

/// The attribute list of a FETCH response (RFC 3501 §7.4.2), parsed item by item as bytes arrive.
///
///     S: * 1 FETCH (UID 3 MODSEQ (12) INTERNALDATE "17-Jul-1996 02:44:25 -0700" BODY[] {0}
///     S: )
///
/// UID, RFC822.SIZE and FLAGS are decoded; `BODY[section]<origin>` is streamed (begin, bytes, end);
/// anything else is skipped by `ValueSkipper` and reported by name.
extension IMAPResponseParser {
    struct ItemHead {
        /// The item, when it is one the gateway decodes; nil for any other (then `otherName` says which).
        var known: KnownItem?
        var otherName = ""
        /// Built only when needed (skipped items, error messages).
        var name: String { known?.name ?? otherName }
        var section: String?
        var origin: UInt64?
    }

    mutating func fetchItem(first: Bool) throws(IMAPParseError) -> Step {
        // Decide nothing on bytes past the line limit: fed in pieces, the parser would have stopped with
        // lineTooLong (needMoreInLine) before they arrived, so fed whole it must too (drip-feed equality).
        let room = options.maxLineLength - lineSectionLength
        let visible = room < bufferedByteCount ? Swift.max(0, room + 1) : bufferedByteCount
        var reader = ByteReader(bytes: storage, index: readIndex, end: readIndex + visible, isComplete: false)
        guard let byte = reader.peek() else { return try needMoreInLine() }
        if byte == Byte.closeParen {
            reader.index += 1
            guard try reader.expect(ASCII.cr, "CRLF after FETCH"), try reader.expect(ASCII.lf, "CRLF after FETCH") else {
                return try needMoreInLine()
            }
            consume(reader.index - readIndex)
            lineSectionLength = 0
            state = .responseStart
            return .emit(.fetchEnd)
        }
        if !first {
            guard try reader.expect(ASCII.space, "SP or \")\" after FETCH item") else { return try needMoreInLine() }
        }
        guard let head = try readItemHead(&reader) else { return try needMoreInLine() }
        guard try reader.expect(ASCII.space, "SP after \(head.name)") else { return try needMoreInLine() }

        switch (head.known, head.section) {
        case (.body?, let section?):
            return try bodyValue(&reader, section: section, origin: head.origin)
        case (.uid?, nil):
            guard let value = try reader.readNumber("UID") else { return try needMoreInLine() }
            guard value > 0, value <= UInt64(UInt32.max) else { throw reader.malformed("UID out of range") }
            commit(reader)
            return .emit(.fetchAttribute(.uid(UID(UInt32(value)))))
        case (.rfc822Size?, nil):
            guard let value = try reader.readNumber("RFC822.SIZE") else { return try needMoreInLine() }
            commit(reader)
            return .emit(.fetchAttribute(.rfc822Size(value)))
        case (.flags?, nil):
            guard let flags = try reader.readFlagList() else { return try needMoreInLine() }
            commit(reader)
            return .emit(.fetchAttribute(.flags(flags)))
        case (.internalDate?, nil):
            guard let text = try reader.readQuoted() else { return try needMoreInLine() }
            guard let day = IMAPDay(imapDate: text) else { throw reader.malformed("INTERNALDATE \"\(ASCII.sanitized(text, limit: 40))\"") }
            commit(reader)
            return .emit(.fetchAttribute(.internalDate(day)))
        default:
            let name = head.section.map { "\(head.name)[\($0)]" } ?? head.name
            // From here on the bytes are only skipped, so they may be consumed as they are scanned.
            lineSectionLength += reader.index - readIndex
            consume(reader.index - readIndex)
            state = .fetchSkipping(name: name, skipper: ValueSkipper(lineLength: lineSectionLength, options: options))
            return .proceed
        }
    }

    /// `NAME`, `NAME[section]` or `NAME[section]<origin>`; the name uppercased, the section as sent.
    private func readItemHead(_ reader: inout ByteReader) throws(IMAPParseError) -> ItemHead? {
        guard let nameBytes = reader.read(while: Byte.isNameChar) else { return nil }
        guard !nameBytes.isEmpty else { throw reader.malformed("expected FETCH item") }
        // The items of every snapshot line are recognised without building a String for their names.
        let known = KnownItem(nameBytes)
        var head = ItemHead(known: known, otherName: known == nil ? Byte.uppercased(nameBytes) : "")
        guard reader.peek() == Byte.openBracket else { return head }
        reader.index += 1
        guard let section = reader.read(while: { $0 != Byte.closeBracket && $0 != ASCII.cr && $0 != ASCII.lf }),
              try reader.expect(Byte.closeBracket, "\"]\" after section") else { return nil }
        head.section = String(decoding: section, as: UTF8.self)
        guard let next = reader.peek() else { return nil }
        if next == Byte.lessThan {
            reader.index += 1
            guard let origin = try reader.readNumber("origin"),
                  try reader.expect(Byte.greaterThan, "\">\" after origin") else { return nil }
            head.origin = origin
        }
        return head
    }

    /// The FETCH items the gateway decodes, matched case-insensitively on the bytes.
    enum KnownItem {
        case uid, rfc822Size, flags, body, internalDate

        init?(_ bytes: ArraySlice<UInt8>) {
            let candidate: KnownItem
            switch bytes.count {
            case 3: candidate = .uid
            case 4: candidate = .body
            case 5: candidate = .flags
            case 11: candidate = .rfc822Size
            case 12: candidate = .internalDate
            default: return nil
            }
            guard candidate.upperCaseName.withUTF8Buffer({ ASCII.equalsIgnoringCase(bytes, $0) }) else { return nil }
            self = candidate
        }

        var name: String { "\(upperCaseName)" }

        /// A `StaticString`: no reference counting on a path taken three times per FETCH line.
        private var upperCaseName: StaticString {
            switch self {
            case .uid: "UID"
            case .rfc822Size: "RFC822.SIZE"
            case .flags: "FLAGS"
            case .body: "BODY"
            case .internalDate: "INTERNALDATE"
            }
        }
    }

    /// The value of `BODY[...]`: a literal (streamed), a quoted string or NIL.
    private mutating func bodyValue(_ reader: inout ByteReader, section: String, origin: UInt64?) throws(IMAPParseError) -> Step {
        guard let byte = reader.peek() else { return try needMoreInLine() }
        switch byte {
        case Byte.openBrace, Byte.tilde:
            if byte == Byte.tilde { reader.index += 1 }
            guard try reader.expect(Byte.openBrace, "\"{\""),
                  let size = try reader.readNumber("literal size"),
                  try reader.expect(Byte.closeBrace, "\"}\" after literal size"),
                  try reader.expect(ASCII.cr, "CRLF after literal size"),
                  try reader.expect(ASCII.lf, "CRLF after literal size") else {
                return try needMoreInLine()
            }
            guard size <= UInt64(Int.max) else { throw reader.malformed("literal size out of range") }
            consume(reader.index - readIndex)
            // The line section after the literal starts afresh.
            lineSectionLength = 0
            state = size > 0 ? .bodyLiteral(remaining: Int(size)) : .bodyEnd
            return .emit(.fetchBodyBegin(section: section, origin: origin, size: Int(size)))
        case Byte.quote:
            guard let bytes = try reader.readQuoted() else { return try needMoreInLine() }
            commit(reader)
            state = bytes.isEmpty ? .bodyEnd : .bodyQuoted(bytes: bytes, sent: 0)
            return .emit(.fetchBodyBegin(section: section, origin: origin, size: bytes.count))
        default:
            guard let atom = reader.read(while: Byte.isAtomChar) else { return try needMoreInLine() }
            guard Byte.uppercased(atom) == "NIL" else { throw reader.malformed("expected literal, string or NIL for BODY") }
            commit(reader)
            state = .bodyEnd
            return .emit(.fetchBodyBegin(section: section, origin: origin, size: nil))
        }
    }

    /// An item is complete up to `reader.index`.
    private mutating func commit(_ reader: ByteReader) {
        lineSectionLength += reader.index - readIndex
        consume(reader.index - readIndex)
        state = .fetchItems(first: false)
    }

    /// "Need more" inside a FETCH line section: everything buffered belongs to one line without its
    /// CRLF yet, so the line limit can be checked here.
    private func needMoreInLine() throws(IMAPParseError) -> Step {
        if lineSectionLength + bufferedByteCount > options.maxLineLength { throw .lineTooLong }
        return .needMore
    }
}
