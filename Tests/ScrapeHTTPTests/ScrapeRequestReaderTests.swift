import ScrapeHTTP
import XCTest

final class ScrapeRequestReaderTests: XCTestCase {
    private func answer(_ text: String, maxHeadBytes: Int = 8192) -> ScrapeRequestReader.Outcome {
        var reader = ScrapeRequestReader(maxHeadBytes: maxHeadBytes)
        return reader.append(Array(text.utf8))
    }

    func testGetMetricsIsServed() {
        XCTAssertEqual(answer("GET /metrics HTTP/1.1\r\nHost: localhost:9110\r\nUser-Agent: Prometheus/2.45\r\nAccept: text/plain\r\n\r\n"), .respond(ScrapeAnswer(status: .ok)))
        XCTAssertEqual(answer("GET /metrics HTTP/1.0\r\n\r\n"), .respond(ScrapeAnswer(status: .ok)))
        XCTAssertEqual(answer("GET /metrics?name[]=x HTTP/1.1\r\n\r\n"), .respond(ScrapeAnswer(status: .ok)), "a query string is ignored")
        XCTAssertEqual(answer("GET /metrics HTTP/1.1\n\n"), .respond(ScrapeAnswer(status: .ok)), "bare LF line ends")
        XCTAssertEqual(answer("\r\nGET /metrics HTTP/1.1\r\n\r\n"), .respond(ScrapeAnswer(status: .ok)), "an empty line before the request line is ignored")
    }

    func testHeadGetsTheHeadOnly() {
        XCTAssertEqual(answer("HEAD /metrics HTTP/1.1\r\n\r\n"), .respond(ScrapeAnswer(status: .ok, headOnly: true)))
        let bytes = ScrapeAnswer(status: .ok, headOnly: true).bytes(metrics: Array("a 1\n".utf8))
        XCTAssertEqual(String(decoding: bytes, as: UTF8.self),
                       "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 4\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n")
    }

    func testOtherPathsAndMethods() {
        XCTAssertEqual(answer("GET / HTTP/1.1\r\n\r\n"), .respond(ScrapeAnswer(status: .notFound)))
        XCTAssertEqual(answer("GET /metrics/ HTTP/1.1\r\n\r\n"), .respond(ScrapeAnswer(status: .notFound)))
        XCTAssertEqual(answer("GET /Metrics HTTP/1.1\r\n\r\n"), .respond(ScrapeAnswer(status: .notFound)))
        XCTAssertEqual(answer("GET http://localhost/metrics HTTP/1.1\r\n\r\n"), .respond(ScrapeAnswer(status: .notFound)))
        XCTAssertEqual(answer("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"), .respond(ScrapeAnswer(status: .methodNotAllowed)))
        XCTAssertEqual(answer("get /metrics HTTP/1.1\r\n\r\n"), .respond(ScrapeAnswer(status: .methodNotAllowed)), "methods are case-sensitive")
        XCTAssertEqual(answer("DELETE /x HTTP/1.1\r\n\r\n"), .respond(ScrapeAnswer(status: .notFound)))
    }

    func testMalformedRequests() {
        for text in ["GET /metrics\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n", "GET /metrics HTTP/1.1 x\r\n\r\n", "GET /metrics http/1.1\r\n\r\n",
                     "GET /metrics HTTP/11\r\n\r\n", "G(T /metrics HTTP/1.1\r\n\r\n", "GET /metrics HTTP/1.1\r\nno colon\r\n\r\n",
                     "GET /metrics HTTP/1.1\r\n: empty name\r\n\r\n", "GET /metrics HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
                     "GET /met\u{1}rics HTTP/1.1\r\n\r\n", "GET /metrics HTTP/1.1\r\nX: a\u{0}b\r\n\r\n"] {
            XCTAssertEqual(answer(text), .respond(ScrapeAnswer(status: .badRequest)), text.debugDescription)
        }
    }

    func testOtherVersions() {
        XCTAssertEqual(answer("GET /metrics HTTP/2.0\r\n\r\n"), .respond(ScrapeAnswer(status: .httpVersionNotSupported)))
        XCTAssertEqual(answer("GET /metrics HTTP/1.2\r\n\r\n"), .respond(ScrapeAnswer(status: .httpVersionNotSupported)))
        XCTAssertEqual(answer("GET /metrics HTTP/0.9\r\n\r\n"), .respond(ScrapeAnswer(status: .httpVersionNotSupported)))
    }

    func testByteByByte() {
        var reader = ScrapeRequestReader()
        let request = Array("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        for byte in request.dropLast() {
            XCTAssertEqual(reader.append([byte]), .needMore)
        }
        XCTAssertEqual(reader.append([request.last!]), .respond(ScrapeAnswer(status: .ok)))
        XCTAssertEqual(reader.append(Array("GET /metrics HTTP/1.1\r\n\r\n".utf8)), .needMore, "one request per connection")
        XCTAssertEqual(reader.bufferedByteCount, 0)
    }

    func testEndlessRequestLineIsCutAtTheCap() {
        var reader = ScrapeRequestReader(maxHeadBytes: 8192)
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        XCTAssertEqual(reader.append(Array("GET /".utf8)), .needMore)
        var outcome = ScrapeRequestReader.Outcome.needMore
        var fed = 5
        while outcome == .needMore {
            outcome = reader.append(chunk)
            fed += chunk.count
            XCTAssertLessThanOrEqual(reader.bufferedByteCount, 8192)
            XCTAssertLessThan(fed, 20_000)
        }
        XCTAssertEqual(outcome, .respond(ScrapeAnswer(status: .uriTooLong)))
        XCTAssertEqual(fed, 9005, "decided at the read that crossed the cap")
    }

    func testEndlessHeadersAreCutAtTheCap() {
        var reader = ScrapeRequestReader(maxHeadBytes: 8192)
        XCTAssertEqual(reader.append(Array("GET /metrics HTTP/1.1\r\n".utf8)), .needMore)
        var outcome = ScrapeRequestReader.Outcome.needMore
        var count = 0
        while outcome == .needMore && count < 10_000 {
            outcome = reader.append(Array("X-Filler: yes\r\n".utf8))
            count += 1
            XCTAssertLessThanOrEqual(reader.bufferedByteCount, 8192)
        }
        XCTAssertEqual(outcome, .respond(ScrapeAnswer(status: .headerFieldsTooLarge)))
        XCTAssertEqual(count, (8192 - 23) / 15 + 1)
    }

    func testAHeadOfExactlyTheCapIsServed() {
        let start = "GET /metrics HTTP/1.1\r\nX: "
        let filler = String(repeating: "a", count: 100 - start.utf8.count - 4)
        XCTAssertEqual(answer(start + filler + "\r\n\r\n", maxHeadBytes: 100), .respond(ScrapeAnswer(status: .ok)))
        XCTAssertEqual(answer(start + filler + "a\r\n\r\n", maxHeadBytes: 100), .respond(ScrapeAnswer(status: .headerFieldsTooLarge)))
    }

    func testAnswerBytes() {
        let ok = ScrapeAnswer(status: .ok).bytes(metrics: Array("# TYPE a counter\na 1\n".utf8))
        XCTAssertEqual(String(decoding: ok, as: UTF8.self),
                       "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 21\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n# TYPE a counter\na 1\n")
        let notAllowed = ScrapeAnswer(status: .methodNotAllowed).bytes(metrics: Array("secret 1\n".utf8))
        XCTAssertEqual(String(decoding: notAllowed, as: UTF8.self),
                       "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 23\r\nAllow: GET, HEAD\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n405 Method Not Allowed\n")
        let busy = ScrapeAnswer(status: .serviceUnavailable).bytes(metrics: [])
        XCTAssertTrue(String(decoding: busy, as: UTF8.self).hasPrefix("HTTP/1.1 503 Service Unavailable\r\n"))
    }
}
