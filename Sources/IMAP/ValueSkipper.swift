import Wire

/// Skips one value of a FETCH attribute the gateway does not use (ENVELOPE, BODYSTRUCTURE, MODSEQ,
/// INTERNALDATE, X-GM-LABELS…): an atom or number, NIL, a quoted string, a literal (`{n}` or `~{n}`) or a
/// parenthesised list of those, nested to any depth.
///
/// Resumable: it keeps its place between calls, so the value may arrive split anywhere. Skipped bytes are
/// consumed as they are scanned, so even a value with many literals never sits whole in the buffer.
struct ValueSkipper: Sendable, Equatable {
    enum Mode: Sendable, Equatable {
        /// Expecting a value, or inside a list: the next element or ")".
        case valueStart
        case token
        case quoted
        case quotedEscape
        /// After `~` of a literal8.
        case tilde
        case literalSize(UInt64, digits: Int)
        case literalPlus(UInt64)
        case literalCR(UInt64)
        case literalLF(UInt64)
        case literalData(remaining: Int)
    }

    var mode: Mode = .valueStart
    var depth = 0
    /// Bytes of the current line section (since the last literal), for `maxLineLength`.
    var lineLength: Int
    let maxLineLength: Int
    let maxLiteralSize: Int

    init(lineLength: Int, options: IMAPResponseParser.Options) {
        self.lineLength = lineLength
        self.maxLineLength = options.maxLineLength
        self.maxLiteralSize = options.maxLiteralSize
    }

    /// Scans `bytes[start..<end]`. Returns how far it got, and whether the value ended there.
    mutating func scan(_ bytes: [UInt8], from start: Int, to end: Int) throws(IMAPParseError) -> (index: Int, done: Bool) {
        var index = start
        while index < end {
            let byte = bytes[index]
            switch mode {
            case .literalData(let remaining):
                let count = Swift.min(remaining, end - index)
                index += count
                if count < remaining {
                    mode = .literalData(remaining: remaining - count)
                } else if elementEnded() {
                    return (index, true)
                }
            case .valueStart:
                switch byte {
                case Byte.openParen:
                    depth += 1
                case Byte.closeParen:
                    guard depth > 0 else { throw .malformed("unexpected \")\" in FETCH value") }
                    depth -= 1
                    if depth == 0 { return (try advance(index), true) }
                case ASCII.space:
                    guard depth > 0 else { throw .malformed("expected FETCH value") }
                case Byte.quote:
                    mode = .quoted
                case Byte.openBrace:
                    mode = .literalSize(0, digits: 0)
                case Byte.tilde:
                    mode = .tilde
                case ASCII.cr, ASCII.lf:
                    throw .malformed("unexpected end of line in FETCH value")
                default:
                    mode = .token
                }
                index = try advance(index)
            case .token:
                switch byte {
                case ASCII.space, Byte.openParen, Byte.closeParen, ASCII.cr, ASCII.lf:
                    // The delimiter belongs to what follows: look at it again.
                    if elementEnded() { return (index, true) }
                default:
                    index = try advance(index)
                }
            case .quoted:
                switch byte {
                case Byte.backslash:
                    mode = .quotedEscape
                case Byte.quote:
                    index = try advance(index)
                    if elementEnded() { return (index, true) }
                    continue
                case ASCII.cr, ASCII.lf:
                    throw .malformed("line break in quoted string")
                default:
                    break
                }
                index = try advance(index)
            case .quotedEscape:
                guard byte != ASCII.cr && byte != ASCII.lf else { throw .malformed("line break in quoted string") }
                mode = .quoted
                index = try advance(index)
            case .tilde:
                guard byte == Byte.openBrace else { throw .malformed("expected \"{\" after \"~\"") }
                mode = .literalSize(0, digits: 0)
                index = try advance(index)
            case .literalSize(let size, let digits):
                if ASCII.isDigit(byte) {
                    let (times10, o1) = size.multipliedReportingOverflow(by: 10)
                    let (newSize, o2) = times10.addingReportingOverflow(UInt64(byte - 48))
                    guard !o1, !o2, newSize <= UInt64(maxLiteralSize) else { throw .literalTooLarge }
                    mode = .literalSize(newSize, digits: digits + 1)
                } else if digits > 0 && byte == Byte.plus {
                    mode = .literalPlus(size)
                } else if digits > 0 && byte == Byte.closeBrace {
                    mode = .literalCR(size)
                } else {
                    throw .malformed("invalid literal size in FETCH value")
                }
                index = try advance(index)
            case .literalPlus(let size):
                guard byte == Byte.closeBrace else { throw .malformed("invalid literal size in FETCH value") }
                mode = .literalCR(size)
                index = try advance(index)
            case .literalCR(let size):
                guard byte == ASCII.cr else { throw .malformed("expected CRLF after literal size") }
                mode = .literalLF(size)
                index += 1
            case .literalLF(let size):
                guard byte == ASCII.lf else { throw .malformed("expected CRLF after literal size") }
                index += 1
                lineLength = 0
                if size > 0 {
                    mode = .literalData(remaining: Int(size))
                } else if elementEnded() {
                    return (index, true)
                }
            }
        }
        return (index, false)
    }

    /// Steps over one byte of the current line section.
    private mutating func advance(_ index: Int) throws(IMAPParseError) -> Int {
        lineLength += 1
        guard lineLength <= maxLineLength else { throw .lineTooLong }
        return index + 1
    }

    /// A token, string or literal is complete: at depth 0 that is the whole value.
    private mutating func elementEnded() -> Bool {
        mode = .valueStart
        return depth == 0
    }
}
