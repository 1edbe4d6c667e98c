/// The metrics endpoint's side of HTTP/1.0 and HTTP/1.1 (RFC 9112): one request per connection, read
/// with a cap, answered, closed. Pure: bytes in, a decision out; the transport and the deadline live
/// with the caller.
///
/// Only `GET /metrics` (and `HEAD`, which HTTP requires wherever GET works) is served; a query string
/// is ignored. Everything else gets a short error answer:
///
/// | request | answer |
/// |---|---|
/// | another path | 404 |
/// | `/metrics` with another method | 405 (`Allow: GET, HEAD`) |
/// | no line end within the cap | 414 |
/// | a head (request line and headers) longer than the cap | 431 |
/// | a malformed request line or header line | 400 |
/// | a version other than HTTP/1.0 or 1.1 | 505 |
///
/// A request body is never read: every answer says `Connection: close`.
public struct ScrapeRequestReader: Sendable {
    /// The default cap on the request line and headers together.
    public static let defaultMaxHeadBytes = 8 * 1024

    public let maxHeadBytes: Int
    private var buffer: [UInt8] = []
    /// Where the search for the blank line resumes (bytes before it have been searched).
    private var searched = 0
    private var decided = false

    public init(maxHeadBytes: Int = ScrapeRequestReader.defaultMaxHeadBytes) {
        self.maxHeadBytes = max(maxHeadBytes, 16)
    }

    public enum Outcome: Sendable, Equatable {
        /// The head is not complete yet: read more.
        case needMore
        /// Answer with this and close; later input is not looked at.
        case respond(ScrapeAnswer)
    }

    /// Bytes held; never more than `maxHeadBytes`.
    public var bufferedByteCount: Int { buffer.count }

    /// Feeds the bytes read. After the first `.respond`, returns `.needMore` and keeps nothing.
    public mutating func append<C: Collection>(_ bytes: C) -> Outcome where C.Element == UInt8 {
        guard !decided else { return .needMore }
        let room = maxHeadBytes - buffer.count
        let overflow = bytes.count > room
        buffer.append(contentsOf: bytes.prefix(room))
        if let end = headEnd() {
            return decide(ScrapeRequestReader.answer(forHead: buffer[..<end]))
        }
        if overflow || buffer.count >= maxHeadBytes {
            let hasLineEnd = buffer.contains(Self.lf)
            return decide(ScrapeAnswer(status: hasLineEnd ? .headerFieldsTooLarge : .uriTooLong))
        }
        return .needMore
    }

    private mutating func decide(_ answer: ScrapeAnswer) -> Outcome {
        decided = true
        buffer = []
        return .respond(answer)
    }

    /// The end of the blank line that ends the head: CRLF CRLF, or bare LF LF (RFC 9112 §2.2 lets a
    /// recipient take a bare LF as a line end).
    private mutating func headEnd() -> Int? {
        var index = max(searched, 0)
        while index < buffer.count {
            if buffer[index] == Self.lf {
                if index >= 1 && buffer[index - 1] == Self.lf { return index + 1 }
                if index >= 2 && buffer[index - 1] == Self.cr && buffer[index - 2] == Self.lf { return index + 1 }
            }
            index += 1
        }
        searched = buffer.count
        return nil
    }

    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")

    /// The answer to a complete head (without the reader: for tests and for callers with the whole head).
    public static func answer<C: Collection>(forHead head: C) -> ScrapeAnswer where C.Element == UInt8 {
        var lines = splitLines(head)
        // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
        while let first = lines.first, first.isEmpty { lines.removeFirst() }
        guard let requestLine = lines.first else { return ScrapeAnswer(status: .badRequest) }
        for header in lines.dropFirst() where !header.isEmpty {
            guard isValidHeaderLine(header) else { return ScrapeAnswer(status: .badRequest) }
        }
        let parts = requestLine.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].allSatisfy(isTokenChar), !parts[1].isEmpty,
              parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            return ScrapeAnswer(status: .badRequest)
        }
        let version = parts[2]
        guard version.starts(with: "HTTP/".utf8), version.count == 8,
              let major = version.dropFirst(5).first, version[version.index(version.startIndex, offsetBy: 6)] == UInt8(ascii: "."),
              let minor = version.last, isDigit(major), isDigit(minor) else {
            return ScrapeAnswer(status: .badRequest)
        }
        guard major == UInt8(ascii: "1"), minor == UInt8(ascii: "0") || minor == UInt8(ascii: "1") else {
            return ScrapeAnswer(status: .httpVersionNotSupported)
        }
        let target = parts[1]
        let path = target.prefix { $0 != UInt8(ascii: "?") }
        guard path.elementsEqual(metricsPath.utf8) else { return ScrapeAnswer(status: .notFound) }
        let method = parts[0]
        if method.elementsEqual("GET".utf8) { return ScrapeAnswer(status: .ok) }
        if method.elementsEqual("HEAD".utf8) { return ScrapeAnswer(status: .ok, headOnly: true) }
        return ScrapeAnswer(status: .methodNotAllowed)
    }

    /// The one path served.
    public static let metricsPath = "/metrics"

    /// Lines without their CRLF or LF.
    static func splitLines<C: Collection>(_ head: C) -> [ArraySlice<UInt8>] where C.Element == UInt8 {
        let bytes = Array(head)[...]
        var lines: [ArraySlice<UInt8>] = []
        var start = bytes.startIndex
        for index in bytes.indices where bytes[index] == lf {
            var end = index
            if end > start && bytes[end - 1] == cr { end -= 1 }
            lines.append(bytes[start..<end])
            start = index + 1
        }
        if start < bytes.endIndex { lines.append(bytes[start...]) }
        return lines
    }

    /// `name: value` with a token name and no control bytes but tab in the value; obsolete line
    /// folding (a line starting with white space) is refused, as RFC 9112 §5.2 allows.
    static func isValidHeaderLine(_ line: ArraySlice<UInt8>) -> Bool {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else { return false }
        guard line[..<colon].allSatisfy(isTokenChar) else { return false }
        return line[(colon + 1)...].allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }
    }

    /// RFC 9110 §5.6.2 tchar.
    static func isTokenChar(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}

/// What to answer, and how to put it on the wire.
public struct ScrapeAnswer: Sendable, Equatable {
    public enum Status: Int, Sendable, Equatable {
        case ok = 200
        case badRequest = 400
        case notFound = 404
        case methodNotAllowed = 405
        case requestTimeout = 408
        case uriTooLong = 414
        case headerFieldsTooLarge = 431
        case serviceUnavailable = 503
        case httpVersionNotSupported = 505

        public var reason: String {
            switch self {
            case .ok: "OK"
            case .badRequest: "Bad Request"
            case .notFound: "Not Found"
            case .methodNotAllowed: "Method Not Allowed"
            case .requestTimeout: "Request Timeout"
            case .uriTooLong: "URI Too Long"
            case .headerFieldsTooLarge: "Request Header Fields Too Large"
            case .serviceUnavailable: "Service Unavailable"
            case .httpVersionNotSupported: "HTTP Version Not Supported"
            }
        }
    }

    public var status: Status
    /// HEAD: the headers of the answer, no body.
    public var headOnly: Bool

    public init(status: Status, headOnly: Bool = false) {
        self.status = status
        self.headOnly = headOnly
    }

    /// The Prometheus text exposition format, version 0.0.4.
    public static let metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The whole answer: for `.ok` the status line, headers and `metrics` (the exposition text); for
    /// errors a one-line text body saying what went wrong. Always `Connection: close`.
    public func bytes(metrics: [UInt8]) -> [UInt8] {
        let body: [UInt8]
        let contentType: String
        if status == .ok {
            body = metrics
            contentType = Self.metricsContentType
        } else {
            body = Array("\(status.rawValue) \(status.reason)\n".utf8)
            contentType = "text/plain; charset=utf-8"
        }
        var head = "HTTP/1.1 \(status.rawValue) \(status.reason)\r\n"
        head += "Content-Type: \(contentType)\r\n"
        head += "Content-Length: \(body.count)\r\n"
        if status == .methodNotAllowed { head += "Allow: GET, HEAD\r\n" }
        head += "Cache-Control: no-store\r\n"
        head += "Connection: close\r\n\r\n"
        var out = Array(head.utf8)
        if !headOnly { out += body }
        return out
    }
}
