import Wire

/// A cursor over buffered bytes, shared by the line parser and the FETCH parser.
///
/// `end` is where the buffered data stops. When `isComplete`, the data ends there for good (a whole
/// line is being parsed) and running into `end` is a grammar error; otherwise more bytes may still
/// arrive and a method that runs into `end` returns nil: "need more bytes, decide nothing yet".
struct ByteReader {
    let bytes: [UInt8]
    var index: Int
    let end: Int
    let isComplete: Bool

    var atEnd: Bool { index >= end }

    func peek() -> UInt8? { index < end ? bytes[index] : nil }

    /// The sanitised text around the cursor, for error messages.
    func context() -> String {
        let from = Swift.max(index - 20, 0)
        let to = Swift.min(index + 20, bytes.count)
        return ASCII.sanitized(bytes[from..<to], limit: 40)
    }

    func malformed(_ what: String) -> IMAPParseError {
        .malformed("\(what) near \"\(context())\"")
    }

    /// Unwraps a result read from complete data, where "need more" cannot happen (the methods throw instead).
    static func complete<T>(_ value: T?) throws(IMAPParseError) -> T {
        guard let value else { throw .malformed("truncated line") }
        return value
    }

    /// `expect` on complete data.
    mutating func require(_ byte: UInt8, _ what: @autoclosure () -> String) throws(IMAPParseError) {
        guard try expect(byte, what()) else { throw malformed("expected \(what())") }
    }

    /// Consumes `byte`. False: need more bytes. Throws on any other byte, or at the end of complete data.
    /// `what` is built only for the error: this runs for every byte the grammar expects.
    mutating func expect(_ byte: UInt8, _ what: @autoclosure () -> String) throws(IMAPParseError) -> Bool {
        guard index < end else {
            if isComplete { throw malformed("expected \(what())") }
            return false
        }
        guard bytes[index] == byte else { throw malformed("expected \(what())") }
        index += 1
        return true
    }

    /// The run of bytes for which `accept` holds; nil when the run reaches the end of incomplete data
    /// (it may go on).
    mutating func read(while accept: (UInt8) -> Bool) -> ArraySlice<UInt8>? {
        let start = index
        while index < end, accept(bytes[index]) { index += 1 }
        if index == end && !isComplete { return nil }
        return bytes[start..<index]
    }

    /// An unsigned decimal number of at most 19 digits.
    mutating func readNumber(_ what: @autoclosure () -> String) throws(IMAPParseError) -> UInt64? {
        guard let digits = read(while: ASCII.isDigit) else { return nil }
        guard let value = ASCII.parseUnsigned(digits) else { throw malformed("expected \(what())") }
        return value
    }

    /// A quoted string (RFC 3501 §4.3), unescaped. The cursor must be at the opening quote.
    mutating func readQuoted() throws(IMAPParseError) -> [UInt8]? {
        guard try expect(Byte.quote, "quoted string") else { return nil }
        var output: [UInt8] = []
        while index < end {
            let byte = bytes[index]
            switch byte {
            case Byte.quote:
                index += 1
                return output
            case Byte.backslash:
                guard index + 1 < end else { return try needMore("quoted string") }
                let escaped = bytes[index + 1]
                guard escaped == Byte.quote || escaped == Byte.backslash else {
                    throw malformed("invalid escape in quoted string")
                }
                output.append(escaped)
                index += 2
            case ASCII.cr, ASCII.lf:
                throw malformed("line break in quoted string")
            default:
                output.append(byte)
                index += 1
            }
        }
        return try needMore("end of quoted string")
    }

    /// A parenthesised flag list, `(\Seen $Label)`, flags as sent.
    mutating func readFlagList() throws(IMAPParseError) -> [String]? {
        guard try expect(Byte.openParen, "flag list") else { return nil }
        var flags: [String] = []
        while true {
            guard let byte = peek() else { return try needMore("end of flag list") }
            if byte == Byte.closeParen {
                index += 1
                return flags
            }
            if !flags.isEmpty {
                guard try expect(ASCII.space, "SP or \")\" in flag list") else { return nil }
            }
            guard let flag = read(while: Byte.isFlagChar) else { return nil }
            guard !flag.isEmpty else { throw malformed("expected flag") }
            flags.append(String(decoding: flag, as: UTF8.self))
        }
    }

    /// The rest of the (complete) data as text.
    mutating func rest() -> String {
        let text = String(decoding: bytes[index..<end], as: UTF8.self)
        index = end
        return text
    }

    private func needMore<T>(_ what: String) throws(IMAPParseError) -> T? {
        if isComplete { throw malformed("expected \(what)") }
        return nil
    }
}

/// Byte constants and classes of the RFC 3501 §9 grammar.
enum Byte {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let openParen = UInt8(ascii: "(")
    static let closeParen = UInt8(ascii: ")")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let lessThan = UInt8(ascii: "<")
    static let greaterThan = UInt8(ascii: ">")
    static let plus = UInt8(ascii: "+")
    static let star = UInt8(ascii: "*")
    static let tilde = UInt8(ascii: "~")

    /// ATOM-CHAR: any CHAR except atom-specials `( ) { SP CTL % * " \ ]`.
    static func isAtomChar(_ byte: UInt8) -> Bool {
        IMAPCommandEncoder.isAtomChar(byte)
    }

    /// A FETCH item name stops before a section `[`.
    static func isNameChar(_ byte: UInt8) -> Bool {
        isAtomChar(byte) && byte != openBracket
    }

    /// ASTRING-CHAR except "+" (RFC 3501 §9 `tag`).
    static func isTagChar(_ byte: UInt8) -> Bool {
        (isAtomChar(byte) || byte == closeBracket) && byte != plus
    }

    /// `flag`: `\Seen`, `\*`, a keyword atom.
    static func isFlagChar(_ byte: UInt8) -> Bool {
        isAtomChar(byte) || byte == backslash || byte == star
    }

    /// Keywords and tags of every response line: built straight into the String's storage (no array
    /// in between; short ones fit in the String itself). Bytes that are not UTF-8 are repaired.
    static func uppercased(_ bytes: ArraySlice<UInt8>) -> String {
        String(unsafeUninitializedCapacity: bytes.count) { buffer in
            for (offset, byte) in bytes.enumerated() { buffer[offset] = ASCII.uppercased(byte) }
            return bytes.count
        }
    }
}
