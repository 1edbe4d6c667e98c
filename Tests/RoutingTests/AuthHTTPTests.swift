import Gateway
import Routing
import Wire
import XCTest

final class AuthHTTPTests: XCTestCase {
    func testEndpoints() {
        XCTAssertEqual(AuthHTTP.Endpoint(url: "http://127.0.0.1:9000/auth"), endpoint("127.0.0.1", 9000, "/auth"))
        XCTAssertEqual(AuthHTTP.Endpoint(url: "http://auth.internal"), endpoint("auth.internal", 80, "/"))
        XCTAssertEqual(AuthHTTP.Endpoint(url: "http://[::1]:81/a?b=c"), endpoint("::1", 81, "/a?b=c"))
        for bad in ["https://x/", "ftp://x", "http://", "http://x:0/", "http://x:70000/", "http://u@x/", "http://x/a b", "http://[::1/"] {
            XCTAssertNil(AuthHTTP.Endpoint(url: bad), bad)
        }
    }

    private func endpoint(_ host: String, _ port: UInt16, _ path: String) -> AuthHTTP.Endpoint? {
        var e = AuthHTTP.Endpoint(url: "http://x/")
        e?.host = host
        e?.port = port
        e?.path = path
        return e
    }

    /// nginx's request, header for header; user and password URL-encoded.
    func testRequestIsNginxShaped() {
        let request = RouteRequest(user: "alice@example.com", password: Secret("p@ss word%\r\n"), attempt: 2, clientAddress: "192.0.2.42")
        let bytes = AuthHTTP.request(request, endpoint: AuthHTTP.Endpoint(url: "http://127.0.0.1:9000/auth")!)
        XCTAssertEqual(String(decoding: bytes, as: UTF8.self), """
            GET /auth HTTP/1.0\r
            Host: 127.0.0.1\r
            Auth-Method: plain\r
            Auth-User: alice%40example.com\r
            Auth-Pass: p%40ss%20word%25%0D%0A\r
            Auth-Protocol: pop3\r
            Auth-Login-Attempt: 2\r
            Client-IP: 192.0.2.42\r
            Client-Host: [UNAVAILABLE]\r
            \r

            """)
    }

    private func parse(_ text: String, chunk: Int = 1) -> AuthHTTP.Answer? {
        var parser = AuthHTTP.ResponseParser()
        let bytes = Array(text.utf8)
        var index = 0
        while index < bytes.count {
            if let answer = parser.append(bytes[index..<min(index + chunk, bytes.count)]) { return answer }
            index += chunk
        }
        return parser.finish()
    }

    func testOKAnswerInPieces() {
        let answer = parse("HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 198.51.100.1\r\nAuth-Port: 143\r\n\r\nignored body")
        XCTAssertEqual(answer, .ok(server: "198.51.100.1", port: 143, user: nil, password: nil, policy: nil))
        let rewrite = parse("HTTP/1.1 200 OK\r\nauth-status: OK\r\nAuth-Server: 10.0.0.1\r\nAuth-Port: 993\r\nAuth-User: u1\r\nAuth-Pass: pw\r\nAuth-Policy: gmail\r\n\r\n", chunk: 7)
        XCTAssertEqual(rewrite, .ok(server: "10.0.0.1", port: 993, user: "u1", password: Secret("pw"), policy: "gmail"))
    }

    func testRefusals() {
        XCTAssertEqual(parse("HTTP/1.0 200 OK\r\nAuth-Status: Invalid login or password\r\nAuth-Wait: 3\r\n\r\n"),
                       .refused(text: "Invalid login or password", wait: .seconds(3)))
        XCTAssertEqual(parse("HTTP/1.0 200 OK\r\nAuth-Status: Locked\r\n\r\n"), .refused(text: "Locked", wait: nil))
        XCTAssertEqual(parse("HTTP/1.0 200 OK\r\nAuth-Status: x\r\nAuth-Wait: forever\r\n\r\n"), .refused(text: "x", wait: nil))
    }

    func testBrokenAnswersAreInvalid() {
        for text in [
            "HTTP/1.0 500 Oops\r\nAuth-Status: OK\r\n\r\n",
            "HTTP/1.0 200 OK\r\n\r\n",
            "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Port: 143\r\n\r\n",
            "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\nAuth-Server: 10.0.0.1\r\nAuth-Port: 0\r\n\r\n",
            "SSH-2.0-OpenSSH\r\n\r\n",
            "HTTP/1.0 200 OK\r\nAuth-Status: OK\r\n",   // closed before the head ended
            "",
        ] {
            guard case .invalid? = parse(text) else { return XCTFail("\(text.debugDescription) → \(String(describing: parse(text)))") }
        }
    }

    /// A service that sends an endless head costs at most the cap.
    func testEndlessHeadIsCutAtTheCap() {
        var parser = AuthHTTP.ResponseParser()
        let line = Array("X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n".utf8)
        var answer: AuthHTTP.Answer?
        var sent = 0
        _ = parser.append(Array("HTTP/1.0 200 OK\r\n".utf8))
        while answer == nil && sent < 1_000_000 {
            answer = parser.append(line)
            sent += line.count
        }
        guard case .invalid? = answer else { return XCTFail("\(String(describing: answer))") }
        XCTAssertLessThanOrEqual(sent, AuthHTTP.ResponseParser.maxHeadBytes + line.count)
    }

    func testRefusalTextIsSanitised() {
        guard case .refused(let text, _)? = parse("HTTP/1.0 200 OK\r\nAuth-Status: bad\u{1b}[31m text\r\n\r\n") else { return XCTFail() }
        XCTAssertFalse(text.unicodeScalars.contains { $0.value < 0x20 }, text)
    }
}
