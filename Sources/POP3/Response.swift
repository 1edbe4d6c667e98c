import Wire

/// RFC 2449 §8 extended response codes, sent in brackets after `-ERR`.
public enum ResponseCode: String, Sendable {
    /// The maildrop is locked by another session.
    case inUse = "IN-USE"
    /// Logged in too recently (RFC 2449 §8.1.2).
    case loginDelay = "LOGIN-DELAY"
    /// A temporary failure: trying again later may work (RFC 3206).
    case sysTemp = "SYS/TEMP"
    /// A permanent failure: do not retry without changing something (RFC 3206).
    case sysPerm = "SYS/PERM"
    /// The credentials were wrong (RFC 3206).
    case auth = "AUTH"
}

/// Encodes POP3 responses (RFC 1939 §3, RFC 2449 §4).
///
/// ```
/// S: +OK 2 320
/// S: -ERR [SYS/TEMP] Backend unavailable
/// S: + 
/// ```
///
/// Text is made safe for the wire: control characters (CR and LF included, so backend text can never
/// inject a response line) become spaces, and a status line is cut to RFC 2449's 512 octets
/// including CRLF, at a character boundary.
public enum POP3Response {
    /// RFC 2449 §4: the first line of a response, CRLF included.
    public static let maximumStatusLineLength = 512

    /// `+OK text\r\n`, or `+OK\r\n` when text is empty.
    public static func ok(_ text: String) -> [UInt8] {
        statusLine(Array("+OK".utf8), text)
    }

    /// `-ERR [CODE] text\r\n`; without a code `-ERR text\r\n`; `-ERR\r\n` when both are absent.
    public static func err(_ text: String, code: ResponseCode? = nil) -> [UInt8] {
        var prefix = Array("-ERR".utf8)
        if let code {
            prefix.append(contentsOf: " [".utf8)
            prefix.append(contentsOf: code.rawValue.utf8)
            prefix.append(UInt8(ascii: "]"))
        }
        return statusLine(prefix, text)
    }

    /// `+ base64\r\n`, a SASL continuation (RFC 5034 §4); an empty challenge gives `+ \r\n`.
    public static func continuation(_ base64: [UInt8]) -> [UInt8] {
        var output: [UInt8] = [UInt8(ascii: "+"), ASCII.space]
        output.append(contentsOf: base64.lazy.filter { !isControl($0) })
        output.append(contentsOf: ASCII.crlf)
        return output
    }

    /// The line that ends a multi-line response (RFC 1939 §3).
    public static let terminator: [UInt8] = Array(".\r\n".utf8)

    /// A complete multi-line response: `+OK first\r\n`, each line dot-stuffed and CRLF-terminated,
    /// then `.\r\n`. `first` is the text after `+OK`, as for `ok(_:)`.
    ///
    /// ```
    /// multiline("2 messages", lines: ["1 120", "2 200"])
    /// S: +OK 2 messages
    /// S: 1 120
    /// S: 2 200
    /// S: .
    /// ```
    public static func multiline(_ first: String, lines: [String]) -> [UInt8] {
        var output = ok(first)
        for line in lines {
            let bytes = sanitized(line)
            if bytes.first == UInt8(ascii: ".") { output.append(UInt8(ascii: ".")) }
            output.append(contentsOf: bytes)
            output.append(contentsOf: ASCII.crlf)
        }
        output.append(contentsOf: [UInt8(ascii: "."), ASCII.cr, ASCII.lf])
        return output
    }

    // MARK: - Helpers

    private static func isControl(_ byte: UInt8) -> Bool { byte < 0x20 || byte == 0x7F }

    private static func sanitized(_ text: String) -> [UInt8] {
        text.utf8.map { isControl($0) ? ASCII.space : $0 }
    }

    private static func statusLine(_ prefix: [UInt8], _ text: String) -> [UInt8] {
        var output = prefix
        if !text.isEmpty {
            var body = sanitized(text)
            let room = maximumStatusLineLength - ASCII.crlf.count - prefix.count - 1
            if body.count > room {
                var cut = Swift.max(0, room)
                // Never split a UTF-8 sequence: back off continuation bytes (10xxxxxx).
                while cut > 0 && body[cut] & 0xC0 == 0x80 { cut -= 1 }
                body.removeSubrange(cut...)
            }
            output.append(ASCII.space)
            output.append(contentsOf: body)
        }
        output.append(contentsOf: ASCII.crlf)
        return output
    }
}
