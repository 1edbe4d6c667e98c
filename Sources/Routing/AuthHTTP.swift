import Gateway
import Wire

/// The request and answer of an nginx-compatible `auth_http` routing service (nginx's
/// `ngx_mail_auth_http_module` protocol), so a provider's existing mail auth service drives PopGate
/// unchanged:
///
///     GET /auth HTTP/1.0                      HTTP/1.0 200 OK
///     Host: 127.0.0.1                          Auth-Status: OK
///     Auth-Method: plain                       Auth-Server: 198.51.100.1
///     Auth-User: alice%40example.com           Auth-Port: 143
///     Auth-Pass: secret                        (Auth-User, Auth-Pass: optional rewrites)
///     Auth-Protocol: pop3
///     Auth-Login-Attempt: 1                    HTTP/1.0 200 OK
///     Client-IP: 192.0.2.42                    Auth-Status: Invalid login or password
///     Client-Host: [UNAVAILABLE]               Auth-Wait: 3
///
/// `Auth-User` and `Auth-Pass` are URL-encoded, as nginx sends them. A refusal without `Auth-Wait`
/// closes the connection after the answer, as nginx does. Anything else (no answer in time, a status
/// other than 200, a missing header) is an outage: the client hears `[SYS/TEMP]`, never `[AUTH]`.
public enum AuthHTTP {
    /// `http://host[:port]/path`. Only plain HTTP: the service belongs on loopback or a trusted network.
    public struct Endpoint: Sendable, Equatable {
        public var host: String
        public var port: UInt16
        public var path: String

        public init?(url: String) {
            guard url.hasPrefix("http://") else { return nil }
            let rest = url.dropFirst("http://".count)
            let authority = rest.prefix { $0 != "/" && $0 != "?" }
            let path = String(rest.dropFirst(authority.count))
            guard !authority.isEmpty, !authority.contains("@") else { return nil }
            var host = Substring(authority)
            var port: UInt16 = 80
            if host.hasPrefix("[") {
                guard let close = host.firstIndex(of: "]") else { return nil }
                let after = host[host.index(after: close)...]
                let inner = host[host.index(after: host.startIndex)..<close]
                if !after.isEmpty {
                    guard after.hasPrefix(":"), let parsed = UInt16(after.dropFirst()), parsed > 0 else { return nil }
                    port = parsed
                }
                host = inner
            } else if let colon = host.lastIndex(of: ":") {
                guard let parsed = UInt16(host[host.index(after: colon)...]), parsed > 0 else { return nil }
                port = parsed
                host = host[..<colon]
            }
            guard !host.isEmpty, host.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }),
                  path.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
            self.host = String(host)
            self.port = port
            self.path = path.isEmpty ? "/" : path
        }
    }

    /// The request bytes for one login.
    public static func request(_ login: RouteRequest, endpoint: Endpoint) -> [UInt8] {
        var text = "GET \(endpoint.path) HTTP/1.0\r\n"
        text += "Host: \(endpoint.host.contains(":") ? "[\(endpoint.host)]" : endpoint.host)\r\n"
        text += "Auth-Method: plain\r\n"
        text += "Auth-User: \(urlEncoded(Array(login.user.utf8)))\r\n"
        text += "Auth-Pass: \(urlEncoded(login.password.bytes))\r\n"
        text += "Auth-Protocol: pop3\r\n"
        text += "Auth-Login-Attempt: \(login.attempt)\r\n"
        text += "Client-IP: \(login.clientAddress ?? "")\r\n"
        text += "Client-Host: [UNAVAILABLE]\r\n\r\n"
        return Array(text.utf8)
    }

    /// RFC 3986 percent-encoding of everything but the unreserved characters.
    public static func urlEncoded(_ bytes: [UInt8]) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        for byte in bytes {
            switch byte {
            case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, 0x2D, 0x2E, 0x5F, 0x7E:
                out.append(byte)
            default:
                out += [0x25, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// What the service said.
    public enum Answer: Sendable, Equatable {
        case ok(server: String, port: UInt16, user: String?, password: Secret?, policy: String?)
        /// `Auth-Status` other than OK, with `Auth-Wait` seconds when given.
        case refused(text: String, wait: Duration?)
        /// Not an answer of this protocol: an outage.
        case invalid(String)
    }

    /// Reads the answer's head (the body is ignored, as nginx ignores it). Bounded: a head larger than
    /// `maxHeadBytes` is an invalid answer, so a service that never stops sending costs no more.
    public struct ResponseParser: Sendable {
        public static let maxHeadBytes = 16 * 1024
        private var buffer: [UInt8] = []
        public private(set) var answer: Answer?

        public init() {}

        /// Feeds bytes; returns the answer once the head is complete (or broken).
        public mutating func append(_ bytes: some Collection<UInt8>) -> Answer? {
            guard answer == nil else { return answer }
            // Only the new bytes (and the three before them) can complete the blank line: a head fed
            // in many small pieces is scanned once, not once per piece.
            let from = Swift.max(0, buffer.count - 3)
            buffer.append(contentsOf: bytes)
            if let end = Self.headEnd(buffer, from: from) {
                answer = Self.parse(buffer[..<end])
            } else if buffer.count > Self.maxHeadBytes {
                answer = .invalid("answer head larger than \(Self.maxHeadBytes) bytes")
            }
            return answer
        }

        /// The connection ended: an answer whose head never completed is invalid.
        public mutating func finish() -> Answer {
            if let answer { return answer }
            let result = Answer.invalid(buffer.isEmpty ? "connection closed without an answer" : "connection closed in the middle of the answer")
            answer = result
            return result
        }

        static func headEnd(_ bytes: [UInt8], from start: Int = 0) -> Int? {
            guard bytes.count >= 4, start <= bytes.count - 4 else { return nil }
            for index in start...(bytes.count - 4) where bytes[index] == 0x0D && bytes[index + 1] == 0x0A && bytes[index + 2] == 0x0D && bytes[index + 3] == 0x0A {
                return index
            }
            return nil
        }

        static func parse(_ head: ArraySlice<UInt8>) -> Answer {
            let lines = head.split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
                line.last == 0x0D ? line.dropLast() : line
            }
            guard let statusLine = lines.first else { return .invalid("empty answer") }
            let parts = statusLine.split(separator: 0x20, maxSplits: 2)
            guard parts.count >= 2, parts[0].starts(with: Array("HTTP/1.".utf8)) else {
                return .invalid("not an HTTP answer: \(ASCII.sanitized(statusLine, limit: 80))")
            }
            guard Array(parts[1]) == Array("200".utf8) else {
                return .invalid("HTTP status \(ASCII.sanitized(parts[1], limit: 10))")
            }
            var headers: [String: String] = [:]
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: 0x3A) else { continue }
                let name = String(decoding: line[..<colon].map(ASCII.lowercased), as: UTF8.self)
                var value = line[line.index(after: colon)...]
                while value.first == 0x20 || value.first == 0x09 { value = value.dropFirst() }
                while value.last == 0x20 || value.last == 0x09 { value = value.dropLast() }
                if headers[name] == nil { headers[name] = String(decoding: value, as: UTF8.self) }
            }
            guard let status = headers["auth-status"] else { return .invalid("no Auth-Status header") }
            guard status == "OK" else {
                var wait: Duration?
                if let text = headers["auth-wait"], let seconds = Int(text), seconds >= 0, seconds <= 3600 {
                    wait = .seconds(seconds)
                }
                let shown = ASCII.sanitized(Array(status.utf8), limit: 200)
                return .refused(text: shown.isEmpty ? "Authentication failed." : shown, wait: wait)
            }
            guard let server = headers["auth-server"], !server.isEmpty, server.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                return .invalid("Auth-Status OK without a valid Auth-Server")
            }
            guard let portText = headers["auth-port"], let port = UInt16(portText), port > 0 else {
                return .invalid("Auth-Status OK without a valid Auth-Port")
            }
            let user = headers["auth-user"].flatMap { $0.isEmpty ? nil : $0 }
            let password = headers["auth-pass"].map { Secret($0) }
            return .ok(server: server, port: port, user: user, password: password, policy: headers["auth-policy"])
        }
    }
}
