import POP3
import XCTest

final class POP3ProtocolTraceTests: XCTestCase {
    private let secret = "s3cret-Pa55"

    private func trace(_ text: String, maxLineLength: Int = 500) -> [String] {
        var trace = POP3ProtocolTrace(maxLineLength: maxLineLength)
        return trace.received(Array(text.utf8))
    }

    func testCommandsShowAndPasswordsDoNot() {
        XCTAssertEqual(trace("CAPA\r\nUSER alice\r\nPASS \(secret)\r\nSTAT\r\nLIST 1\r\nRETR 1\r\nTOP 1 5\r\nUIDL\r\nDELE 1\r\nNOOP\r\nRSET\r\nQUIT\r\n"),
                       ["CAPA", "USER alice", "PASS [redacted]", "STAT", "LIST 1", "RETR 1", "TOP 1 5", "UIDL", "DELE 1", "NOOP", "RSET", "QUIT"])
        XCTAssertEqual(trace("pass \(secret)\r\n"), ["PASS [redacted]"])
        XCTAssertEqual(trace("PASS\r\nPASS \r\n"), ["PASS", "PASS [redacted]"])
        XCTAssertEqual(trace("APOP alice c4c9334bac560ecc979e58001b3e22fb\r\n"), ["APOP alice [redacted]"])
    }

    func testAuthPayloads() {
        let payload = "AGFsaWNlAHMzY3JldC1QYTU1"  // \0alice\0s3cret-Pa55
        XCTAssertEqual(trace("AUTH\r\nAUTH PLAIN \(payload)\r\nSTAT\r\n"), ["AUTH", "AUTH PLAIN [redacted]", "STAT"])
        XCTAssertEqual(trace("AUTH PLAIN\r\n\(payload)\r\nSTAT\r\n"), ["AUTH PLAIN", "[redacted]", "STAT"])
        XCTAssertEqual(trace("AUTH PLAIN\r\n*\r\nQUIT\r\n"), ["AUTH PLAIN", "[redacted]", "QUIT"])
        XCTAssertEqual(trace("AUTH \(payload)=\r\n"), ["AUTH [redacted]"], "not a mechanism name")
    }

    func testSplitAnywhere() {
        let wire = Array("USER alice\r\nPASS \(secret)\r\nAUTH PLAIN\r\nAGFsaWNlAHMzY3JldC1QYTU1\r\nQUIT\r\n".utf8)
        for split in 0...wire.count {
            var trace = POP3ProtocolTrace()
            let lines = trace.received(wire[..<split]) + trace.received(wire[split...])
            XCTAssertEqual(lines, ["USER alice", "PASS [redacted]", "AUTH PLAIN", "[redacted]", "QUIT"], "split at \(split)")
        }
    }

    func testUnknownLines() {
        XCTAssertEqual(trace("XTND XMIT\r\n"), ["XTND [redacted]"])
        XCTAssertEqual(trace("HELO\r\n"), ["HELO"])
        XCTAssertEqual(trace("\(secret)\r\n"), ["[11 bytes]"], "a password sent as a line by mistake")
        XCTAssertEqual(trace("\r\n"), ["[0 bytes]"])
    }

    func testLongLinesAreCutAndKeptBounded() {
        let long = "LIST " + String(repeating: "9", count: 10_000) + "\r\n"
        XCTAssertEqual(trace(long, maxLineLength: 20), ["LIST " + String(repeating: "9", count: 15) + "..."])
        XCTAssertEqual(trace("PASS " + String(repeating: "p", count: 10_000) + "\r\n", maxLineLength: 20), ["PASS [redacted]"])
        XCTAssertEqual(trace("USER a\u{1}b\n"), ["USER a?b"], "bare LF ends a line; control bytes show as ?")
    }

    func testResetForgetsAPendingSASLResponse() {
        var trace = POP3ProtocolTrace()
        XCTAssertEqual(trace.received(Array("AUTH PLAIN\r\nUSER par".utf8)), ["AUTH PLAIN"])
        trace.reset()
        XCTAssertEqual(trace.received(Array("USER bob\r\n".utf8)), ["USER bob"])
    }
}
