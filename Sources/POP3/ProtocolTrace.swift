import Wire

/// The protocol trace of a POP3 client's command lines (`log.level: trace`), safe to log:
///
/// - `PASS` keeps only its name: `PASS [redacted]`; `APOP` keeps the user name.
/// - `AUTH` keeps the mechanism; an initial response becomes `[redacted]`, and so does the line
///   after an `AUTH` without one (the client's SASL response, or its `*` cancel).
/// - An unknown command keeps its name only when it looks like one (letters, at most 8), else the
///   line shows as `[n bytes]`: a client that sends its password as a command line by mistake.
/// - A line is cut at `maxLineLength` bytes (then `...`); control bytes show as `?`. What is kept is
///   at most `maxLineLength` bytes, whatever the client sends.
public struct POP3ProtocolTrace: Sendable {
    public static let defaultMaxLineLength = 500
    public static let redacted = "[redacted]"

    public let maxLineLength: Int
    private var line: [UInt8] = []
    /// Bytes of the current line, counted past the cap too.
    private var lineLength = 0
    private var saslResponseNext = false

    public init(maxLineLength: Int = POP3ProtocolTrace.defaultMaxLineLength) {
        self.maxLineLength = max(16, maxLineLength)
    }

    /// After STLS: what was buffered in clear text is gone, and so is any state.
    public mutating func reset() {
        line = []
        lineLength = 0
        saslResponseNext = false
    }

    /// Every command line `bytes` completes, ready to log.
    public mutating func received<C: Collection>(_ bytes: C) -> [String] where C.Element == UInt8 {
        var lines: [String] = []
        for byte in bytes {
            if byte == ASCII.lf {
                if lineLength <= maxLineLength, line.last == ASCII.cr {
                    line.removeLast()
                    lineLength -= 1
                }
                lines.append(render())
                line.removeAll(keepingCapacity: true)
                lineLength = 0
                continue
            }
            lineLength += 1
            if line.count < maxLineLength { line.append(byte) }
        }
        return lines
    }

    /// The commands whose arguments are no secret.
    static let shownCommands: Set<String> = ["USER", "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "QUIT", "TOP", "UIDL", "CAPA", "STLS"]

    private mutating func render() -> String {
        if saslResponseNext {
            saslResponseNext = false
            return Self.redacted
        }
        let truncated = lineLength > line.count
        let keyword = line.prefix { $0 != ASCII.space }
        let hasArguments = keyword.count < line.count || truncated
        let name = String(decoding: keyword.map(ASCII.uppercased), as: UTF8.self)
        switch name {
        case _ where Self.shownCommands.contains(name):
            return Self.sanitized(line) + (truncated ? "..." : "")
        case "PASS":
            return hasArguments ? "PASS " + Self.redacted : "PASS"
        case "APOP":
            var words = line.split(separator: ASCII.space, maxSplits: 2, omittingEmptySubsequences: false).dropFirst()
            guard let user = words.popFirst(), !user.isEmpty else { return hasArguments ? "APOP " + Self.redacted : "APOP" }
            return "APOP " + Self.sanitized(user) + " " + Self.redacted
        case "AUTH":
            let words = line.split(separator: ASCII.space, omittingEmptySubsequences: false)
            guard words.count >= 2, !words[1].isEmpty else { return hasArguments ? "AUTH " + Self.redacted : "AUTH" }
            let mechanism = words[1]
            guard mechanism.count <= 20, mechanism.allSatisfy(Self.isMechanismChar) else { return "AUTH " + Self.redacted }
            let shown = "AUTH " + Self.sanitized(mechanism)
            if words.count == 2 && !truncated {
                // RFC 5034: without an initial response the next line is the client's SASL response.
                saslResponseNext = true
                return shown
            }
            return shown + " " + Self.redacted
        default:
            guard !keyword.isEmpty, keyword.count <= 8, keyword.allSatisfy(Self.isLetter) else {
                return "[\(lineLength) bytes]"
            }
            return hasArguments ? name + " " + Self.redacted : name
        }
    }

    static func sanitized<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        String(decoding: bytes.map { $0 < 32 || $0 == 127 ? UInt8(ascii: "?") : $0 }, as: UTF8.self)
    }

    static func isLetter(_ byte: UInt8) -> Bool {
        (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
    }

    /// RFC 4422 §3.1 mechanism names: upper-case letters, digits, `-` and `_` (any case accepted here).
    static func isMechanismChar(_ byte: UInt8) -> Bool {
        isLetter(byte) || ASCII.isDigit(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
    }
}
