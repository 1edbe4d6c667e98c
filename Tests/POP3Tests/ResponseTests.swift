import POP3
import XCTest

final class ResponseTests: XCTestCase {
    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    func testOK() {
        XCTAssertEqual(POP3Response.ok("2 320"), bytes("+OK 2 320\r\n"))
        XCTAssertEqual(POP3Response.ok(""), bytes("+OK\r\n"))
        XCTAssertEqual(POP3Response.ok("POP3 gateway ready"), bytes("+OK POP3 gateway ready\r\n"))
    }

    func testErr() {
        XCTAssertEqual(POP3Response.err("No such message"), bytes("-ERR No such message\r\n"))
        XCTAssertEqual(POP3Response.err(""), bytes("-ERR\r\n"))
        XCTAssertEqual(POP3Response.err("Backend unavailable", code: .sysTemp), bytes("-ERR [SYS/TEMP] Backend unavailable\r\n"))
        XCTAssertEqual(POP3Response.err("x", code: .sysPerm), bytes("-ERR [SYS/PERM] x\r\n"))
        XCTAssertEqual(POP3Response.err("Authentication failed", code: .auth), bytes("-ERR [AUTH] Authentication failed\r\n"))
        XCTAssertEqual(POP3Response.err("Mailbox locked", code: .inUse), bytes("-ERR [IN-USE] Mailbox locked\r\n"))
        XCTAssertEqual(POP3Response.err("Wait", code: .loginDelay), bytes("-ERR [LOGIN-DELAY] Wait\r\n"))
        XCTAssertEqual(POP3Response.err("", code: .sysTemp), bytes("-ERR [SYS/TEMP]\r\n"))
    }

    func testResponseCodeSpellings() {
        XCTAssertEqual(ResponseCode.inUse.rawValue, "IN-USE")
        XCTAssertEqual(ResponseCode.loginDelay.rawValue, "LOGIN-DELAY")
        XCTAssertEqual(ResponseCode.sysTemp.rawValue, "SYS/TEMP")
        XCTAssertEqual(ResponseCode.sysPerm.rawValue, "SYS/PERM")
        XCTAssertEqual(ResponseCode.auth.rawValue, "AUTH")
    }

    func testTextCannotInjectLines() {
        XCTAssertEqual(POP3Response.err("bad\r\n+OK injected"), bytes("-ERR bad  +OK injected\r\n"))
        XCTAssertEqual(POP3Response.ok("a\0b\tc\u{7F}"), bytes("+OK a b c \r\n"))
        XCTAssertEqual(POP3Response.multiline("x", lines: ["one\r\n.", "two"]), bytes("+OK x\r\none  .\r\ntwo\r\n.\r\n"))
        XCTAssertEqual(POP3Response.continuation(bytes("AB\r\nCD")), bytes("+ ABCD\r\n"))
    }

    func testStatusLineIsCutTo512Octets() {
        let long = POP3Response.err(String(repeating: "x", count: 1000), code: .sysTemp)
        XCTAssertEqual(long.count, 512)
        XCTAssertEqual(Array(long.prefix(17)), bytes("-ERR [SYS/TEMP] x"))
        XCTAssertEqual(Array(long.suffix(3)), bytes("x\r\n"))

        let exact = String(repeating: "y", count: 512 - 6)  // "+OK " + text + CRLF
        XCTAssertEqual(POP3Response.ok(exact), bytes("+OK " + exact + "\r\n"))
        XCTAssertEqual(POP3Response.ok(exact + "z").count, 512)

        // Never inside a UTF-8 sequence: "é" is 2 bytes, the cut falls in the middle of one.
        let accented = POP3Response.ok("a" + String(repeating: "é", count: 400))
        XCTAssertEqual(accented.count, 511)
        XCTAssertEqual(Array(String(decoding: accented, as: UTF8.self).utf8), accented)  // valid UTF-8
        XCTAssertEqual(Array(accented.suffix(4)), bytes("é\r\n"))
    }

    func testContinuation() {
        XCTAssertEqual(POP3Response.continuation([]), bytes("+ \r\n"))
        XCTAssertEqual(POP3Response.continuation(bytes("PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+")),
                       bytes("+ PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\r\n"))
    }

    func testMultiline() {
        XCTAssertEqual(POP3Response.multiline("Capability list follows", lines: ["USER", "SASL PLAIN", "TOP", "UIDL"]),
                       bytes("+OK Capability list follows\r\nUSER\r\nSASL PLAIN\r\nTOP\r\nUIDL\r\n.\r\n"))
        XCTAssertEqual(POP3Response.multiline("2 messages", lines: ["1 120", "2 200"]),
                       bytes("+OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n"))
        XCTAssertEqual(POP3Response.multiline("", lines: []), bytes("+OK\r\n.\r\n"))
    }

    func testMultilineStuffsDots() {
        XCTAssertEqual(POP3Response.multiline("x", lines: [".", ".a", "a.", "", "..b"]),
                       bytes("+OK x\r\n..\r\n..a\r\na.\r\n\r\n...b\r\n.\r\n"))
    }
}
