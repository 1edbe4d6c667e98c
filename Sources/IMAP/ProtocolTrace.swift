import Wire

/// The protocol trace of one backend connection (`log.level: trace`): the bytes each way, cut into
/// logical lines that are safe to log.
///
/// - Literals (message bodies, and anything else sent as `{n}`) never appear: their content becomes
///   `[n bytes]` after the literal's `{n}`, and the line goes on after it.
/// - Credentials never appear: `LOGIN`'s password (everything after the user name), an
///   `AUTHENTICATE` initial response, and every line the gateway sends while an `AUTHENTICATE` waits
///   for its tagged answer (the SASL continuation data) become `[redacted]`.
/// - A line is cut at `maxLineLength` bytes (then `...`); control bytes show as `?`. What is kept of a
///   line is at most `maxLineLength` bytes, whatever the peer sends.
///
/// Feed it every byte of the connection in order, from the first (a trace started mid-stream could
/// take a literal's content for lines).
public struct IMAPProtocolTrace: Sendable {
    public static let defaultMaxLineLength = 500
    public static let redacted = "[redacted]"

    private var outgoing: TraceLineAssembler
    private var incoming: TraceLineAssembler
    /// The tag of an `AUTHENTICATE` without initial response whose tagged answer has not come yet.
    private var saslTag: [UInt8]?

    public init(maxLineLength: Int = IMAPProtocolTrace.defaultMaxLineLength) {
        outgoing = TraceLineAssembler(maxLineLength: maxLineLength)
        incoming = TraceLineAssembler(maxLineLength: maxLineLength)
    }

    /// What the gateway sent: every command line completed by `bytes`, redacted.
    public mutating func sent<C: Collection>(_ bytes: C) -> [String] where C.Element == UInt8 {
        var lines: [String] = []
        for line in outgoing.feed(bytes) {
            if saslTag != nil {
                lines.append(Self.redacted)
            } else {
                lines.append(redactCommand(line))
            }
        }
        return lines
    }

    /// What the backend sent: every response line completed by `bytes`.
    public mutating func received<C: Collection>(_ bytes: C) -> [String] where C.Element == UInt8 {
        var lines: [String] = []
        for line in incoming.feed(bytes) {
            if let tag = saslTag, line.bytes.starts(with: tag + [ASCII.space]) { saslTag = nil }
            lines.append(line.text)
        }
        return lines
    }

    /// `LOGIN` and `AUTHENTICATE` lose their secrets; other commands are shown as they are.
    private mutating func redactCommand(_ line: TraceLine) -> String {
        var scanner = TokenScanner(line.bytes)
        guard let tag = scanner.token(), let command = scanner.token() else { return line.text }
        if ASCII.equalsIgnoringCase(command, "LOGIN".utf8) {
            let head = String(decoding: tag + [ASCII.space] + command, as: UTF8.self)
            // The user name may be shown; nothing after it. A user name cut by the line cap shows nothing.
            guard let user = scanner.argument(), scanner.isComplete || scanner.atSpace else { return head + " " + Self.redacted }
            return head + " " + String(decoding: user, as: UTF8.self) + " " + Self.redacted
        }
        if ASCII.equalsIgnoringCase(command, "AUTHENTICATE".utf8) {
            let head = String(decoding: tag + [ASCII.space] + command, as: UTF8.self)
            guard let mechanism = scanner.token() else { return head + (line.truncated ? " " + Self.redacted : "") }
            let shown = head + " " + String(decoding: mechanism, as: UTF8.self)
            if scanner.isComplete && !line.truncated {
                // No initial response: the payload follows in a continuation line.
                saslTag = tag
                return shown
            }
            return shown + " " + Self.redacted
        }
        return line.text
    }
}

/// One logical line: the rendered bytes (literals already replaced), at most the cap.
struct TraceLine {
    var bytes: [UInt8]
    var truncated: Bool
    var text: String { String(decoding: bytes, as: UTF8.self) + (truncated ? "..." : "") }
}

/// Cuts an IMAP byte stream into logical lines: a line that ends with a literal header `{n}` or
/// `{n+}` goes on after the literal's n bytes, which are skipped (counted, never kept).
struct TraceLineAssembler: Sendable {
    let maxLineLength: Int
    private var rendered: [UInt8] = []
    private var truncated = false
    private var lastWasCR = false
    /// Bytes of a literal still to skip.
    private var literalRemaining: UInt64 = 0
    private var marker = Marker.none

    /// Where the current physical line stands with respect to a trailing literal header.
    private enum Marker {
        case none
        case open(value: UInt64, digits: Int)
        case plus(value: UInt64)
        /// `{n}` or `{n+}` seen, nothing since (but a CR).
        case closed(value: UInt64)
    }

    init(maxLineLength: Int) {
        self.maxLineLength = max(16, maxLineLength)
    }

    /// The logical lines `bytes` completes.
    mutating func feed<C: Collection>(_ bytes: C) -> [TraceLine] where C.Element == UInt8 {
        var lines: [TraceLine] = []
        var index = bytes.startIndex
        while index != bytes.endIndex {
            if literalRemaining > 0 {
                let available = UInt64(bytes.distance(from: index, to: bytes.endIndex))
                let skip = min(available, literalRemaining)
                literalRemaining -= skip
                index = bytes.index(index, offsetBy: Int(skip))
                continue
            }
            let byte = bytes[index]
            index = bytes.index(after: index)
            if byte == ASCII.lf {
                if lastWasCR, !truncated, rendered.last == UInt8(ascii: "?") { rendered.removeLast() }
                lastWasCR = false
                if case .closed(let count) = marker {
                    append(Array("[\(count) bytes]".utf8))
                    literalRemaining = count
                    marker = .none
                    continue
                }
                lines.append(TraceLine(bytes: rendered, truncated: truncated))
                rendered.removeAll(keepingCapacity: true)
                truncated = false
                marker = .none
                continue
            }
            lastWasCR = byte == ASCII.cr
            advanceMarker(byte)
            append(byte < 32 || byte == 127 ? UInt8(ascii: "?") : byte)
        }
        return lines
    }

    private mutating func advanceMarker(_ byte: UInt8) {
        switch (marker, byte) {
        case (_, UInt8(ascii: "{")):
            marker = .open(value: 0, digits: 0)
        case (.open(let value, let digits), _) where ASCII.isDigit(byte):
            // Saturates: an absurd length hides the rest of the stream rather than showing it.
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = times.addingReportingOverflow(UInt64(byte - 48))
            marker = .open(value: o1 || o2 ? .max : sum, digits: digits + 1)
        case (.open(let value, let digits), UInt8(ascii: "+")) where digits > 0:
            marker = .plus(value: value)
        case (.open(let value, let digits), UInt8(ascii: "}")) where digits > 0:
            marker = .closed(value: value)
        case (.plus(let value), UInt8(ascii: "}")):
            marker = .closed(value: value)
        case (.closed, ASCII.cr):
            break
        default:
            marker = .none
        }
    }

    private mutating func append(_ byte: UInt8) {
        if rendered.count < maxLineLength { rendered.append(byte) } else { truncated = true }
    }

    private mutating func append(_ bytes: [UInt8]) {
        for byte in bytes { append(byte) }
    }
}

/// Reads the words of a rendered command line.
struct TokenScanner {
    private let bytes: [UInt8]
    private var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isComplete: Bool { position >= bytes.count }
    var atSpace: Bool { position < bytes.count && bytes[position] == ASCII.space }

    /// The bytes up to the next space (skipping one space before them); nil at the end.
    mutating func token() -> [UInt8]? {
        if atSpace { position += 1 }
        guard position < bytes.count else { return nil }
        let start = position
        while position < bytes.count && bytes[position] != ASCII.space { position += 1 }
        return Array(bytes[start..<position])
    }

    /// An IMAP astring as rendered: a quoted string (to its closing quote), a literal (`{n}[n bytes]`)
    /// or an atom. Nil when it does not end within the bytes (cut by the line cap).
    mutating func argument() -> [UInt8]? {
        if atSpace { position += 1 }
        guard position < bytes.count else { return nil }
        let start = position
        switch bytes[position] {
        case UInt8(ascii: "\""):
            position += 1
            while position < bytes.count {
                switch bytes[position] {
                case UInt8(ascii: "\\"): position += 2
                case UInt8(ascii: "\""):
                    position += 1
                    return Array(bytes[start..<position])
                default: position += 1
                }
            }
            return nil
        case UInt8(ascii: "{"):
            // Our own rendering: `{n}` or `{n+}` right before `[n bytes]`.
            guard let close = bytes[position...].firstIndex(of: UInt8(ascii: "]")) else { return nil }
            position = close + 1
            return Array(bytes[start..<position])
        default:
            return token()
        }
    }
}
