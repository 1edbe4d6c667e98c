import IMAP
import Wire
import XCTest

final class IMAPProtocolTraceTests: XCTestCase {
    private let secret = "s3cr\u{e9}t-Pa55"
    private let body = "BODY-MARKER-7f3a"

    private func sent(_ trace: inout IMAPProtocolTrace, _ text: String) -> [String] { trace.sent(Array(text.utf8)) }
    private func received(_ trace: inout IMAPProtocolTrace, _ text: String) -> [String] { trace.received(Array(text.utf8)) }

    /// The secret never shows, in any line, whatever the split of the writes.
    private func assertNoSecret(_ lines: [String], _ secrets: [String], file: StaticString = #filePath, line: UInt = #line) {
        for text in lines {
            for secret in secrets { XCTAssertFalse(text.contains(secret), "\(text) shows \(secret)", file: file, line: line) }
        }
    }

    func testLoginPasswordIsRedactedInEveryEncoding() {
        let user = Secret("alice")
        for literalPlus in [true, false] {
            for password in [secret, "plain-Pa55", "with \"quote\" and \\", "line\nbreak-Pa55"] {
                var trace = IMAPProtocolTrace()
                let segments = IMAPCommandEncoder.encode(.login(user: user, password: Secret(password)), tag: IMAPTag("P2"), literalPlus: literalPlus)
                var lines: [String] = []
                for segment in segments {
                    lines += trace.sent(segment)
                    lines += received(&trace, "+ Ready\r\n").map { "S " + $0 }
                }
                let commands = lines.filter { !$0.hasPrefix("S ") }
                XCTAssertEqual(commands.count, 1, "\(lines)")
                XCTAssertTrue(commands[0].hasPrefix("P2 LOGIN \"alice\" "), commands[0])
                XCTAssertTrue(commands[0].hasSuffix(" [redacted]"), commands[0])
                assertNoSecret(lines, [password, "Pa55", "quote"])
            }
        }
    }

    func testLoginWithALiteralUserName() {
        var trace = IMAPProtocolTrace()
        let segments = IMAPCommandEncoder.encode(.login(user: Secret("j\u{fc}rgen"), password: Secret(secret)), tag: IMAPTag("P2"), literalPlus: true)
        XCTAssertEqual(segments.count, 1)
        XCTAssertEqual(trace.sent(segments[0]), ["P2 LOGIN {7+}[7 bytes] [redacted]"])
    }

    func testLoginSplitAnywhereStillRedacts() {
        let wire = Array("P1 CAPABILITY\r\nP2 LOGIN \"alice\" \"\(secret)\"\r\nP3 SELECT \"INBOX\"\r\n".utf8)
        for split in 0...wire.count {
            var trace = IMAPProtocolTrace()
            let lines = trace.sent(wire[..<split]) + trace.sent(wire[split...])
            XCTAssertEqual(lines, ["P1 CAPABILITY", "P2 LOGIN \"alice\" [redacted]", "P3 SELECT \"INBOX\""], "split at \(split)")
        }
    }

    func testAuthenticateInitialResponseIsRedacted() {
        var trace = IMAPProtocolTrace()
        let payload = Array("\0alice\0\(secret)".utf8)
        let encoded = Secret(Base64.encode(payload))
        let flight = IMAPCommandEncoder.encode(.id([IDField("x-originating-ip", "203.0.113.7")]), tag: IMAPTag("P1"), literalPlus: true)[0]
            + IMAPCommandEncoder.encode(.authenticatePlain(initialResponse: encoded), tag: IMAPTag("P2"), literalPlus: true)[0]
            + IMAPCommandEncoder.encode(.select(mailbox: "INBOX"), tag: IMAPTag("P3"), literalPlus: true)[0]
        let lines = trace.sent(flight)
        XCTAssertEqual(lines, ["P1 ID (\"x-originating-ip\" \"203.0.113.7\")", "P2 AUTHENTICATE PLAIN [redacted]", "P3 SELECT \"INBOX\""])
        assertNoSecret(lines, [String(decoding: encoded.bytes, as: UTF8.self), secret])
    }

    func testSASLContinuationDataIsRedactedUntilTheTaggedAnswer() {
        var trace = IMAPProtocolTrace()
        let encoded = Base64.encode(Array("\0alice\0\(secret)".utf8))
        XCTAssertEqual(sent(&trace, "P2 AUTHENTICATE PLAIN\r\n"), ["P2 AUTHENTICATE PLAIN"])
        XCTAssertEqual(received(&trace, "+ \r\n"), ["+ "])
        XCTAssertEqual(trace.sent(IMAPCommandEncoder.continuationResponse(Secret(encoded))), ["[redacted]"])
        XCTAssertEqual(received(&trace, "+ \r\n"), ["+ "])
        XCTAssertEqual(sent(&trace, "*\r\n"), ["[redacted]"], "a cancel is continuation data too")
        XCTAssertEqual(received(&trace, "* OK still going\r\nP2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
                       ["* OK still going", "P2 NO [AUTHENTICATIONFAILED] Authentication failed."])
        XCTAssertEqual(sent(&trace, "Z LOGOUT\r\n"), ["Z LOGOUT"], "after the tagged answer, commands show again")
    }

    func testLiteralsInResponsesBecomeTheirSize() {
        var trace = IMAPProtocolTrace()
        let message = "Subject: x\r\n\r\n\(body)\r\n{12}\r\nP9 OK fake\r\n"
        let wire = "* 3 FETCH (UID 17 BODY[] {\(message.utf8.count)}\r\n\(message) FLAGS (\\Seen))\r\nP5 OK Fetch completed.\r\n"
        let bytes = Array(wire.utf8)
        for split in stride(from: 0, through: bytes.count, by: 7) {
            var trace = IMAPProtocolTrace()
            let lines = trace.received(bytes[..<split]) + trace.received(bytes[split...])
            XCTAssertEqual(lines, ["* 3 FETCH (UID 17 BODY[] {\(message.utf8.count)}[\(message.utf8.count) bytes] FLAGS (\\Seen))", "P5 OK Fetch completed."])
            assertNoSecret(lines, [body, "Subject"])
        }
        // Byte by byte too.
        var lines: [String] = []
        for byte in bytes { lines += trace.received([byte]) }
        XCTAssertEqual(lines.count, 2)
        assertNoSecret(lines, [body])
    }

    func testSeveralLiteralsAndAnEmptyOne() {
        var trace = IMAPProtocolTrace()
        XCTAssertEqual(received(&trace, "* 1 FETCH (BODY[1] {3}\r\nabc BODY[2] {0}\r\n BODY[3] ~{2}\r\nxy)\r\n"),
                       ["* 1 FETCH (BODY[1] {3}[3 bytes] BODY[2] {0}[0 bytes] BODY[3] ~{2}[2 bytes])"])
        XCTAssertEqual(sent(&trace, "A1 APPEND INBOX {5+}\r\nhello\r\n"), ["A1 APPEND INBOX {5+}[5 bytes]"])
    }

    func testAbsurdLiteralLengthHidesTheRest() {
        var trace = IMAPProtocolTrace()
        XCTAssertEqual(received(&trace, "* 1 FETCH (BODY[] {99999999999999999999999}\r\n\(body)\r\nP1 OK\r\n"), [])
    }

    func testNotALiteral() {
        var trace = IMAPProtocolTrace()
        XCTAssertEqual(received(&trace, "* OK [ALERT] {5} is not at the end\r\n* OK {x}\r\n* OK {}\r\n* OK {+}\r\n"),
                       ["* OK [ALERT] {5} is not at the end", "* OK {x}", "* OK {}", "* OK {+}"])
    }

    func testLongLinesAreCutAndControlBytesShown() {
        var trace = IMAPProtocolTrace(maxLineLength: 40)
        let long = "* OK " + String(repeating: "x", count: 5000) + "\r\n"
        XCTAssertEqual(received(&trace, long), ["* OK " + String(repeating: "x", count: 35) + "..."])
        XCTAssertEqual(received(&trace, "* OK a\u{1}b\rc\r\n"), ["* OK a?b?c"])
        // A LOGIN whose user name is cut by the cap shows nothing after LOGIN.
        XCTAssertEqual(sent(&trace, "P2 LOGIN \"\(String(repeating: "u", count: 60))\" \"\(secret)\"\r\n"), ["P2 LOGIN [redacted]"])
    }

    func testCaseInsensitiveCommandNames() {
        var trace = IMAPProtocolTrace()
        XCTAssertEqual(sent(&trace, "a login alice \(secret)\r\n"), ["a login alice [redacted]"])
        XCTAssertEqual(sent(&trace, "b Authenticate plain AGFsaWNl\r\n"), ["b Authenticate plain [redacted]"])
    }
}
