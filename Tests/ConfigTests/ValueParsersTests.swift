import XCTest

@testable import Config

final class ValueParsersTests: XCTestCase {
    // MARK: Durations

    func testDurationsWithEachUnit() {
        XCTAssertEqual(ConfigLoader.parseDuration("500ms"), .milliseconds(500))
        XCTAssertEqual(ConfigLoader.parseDuration("30s"), .seconds(30))
        XCTAssertEqual(ConfigLoader.parseDuration("10m"), .seconds(600))
        XCTAssertEqual(ConfigLoader.parseDuration("1h"), .seconds(3600))
        XCTAssertEqual(ConfigLoader.parseDuration("0"), .zero)
        XCTAssertEqual(ConfigLoader.parseDuration("0s"), .zero)
        XCTAssertEqual(ConfigLoader.parseDuration("0ms"), .zero)
        XCTAssertEqual(ConfigLoader.parseDuration("007s"), .seconds(7))
        XCTAssertEqual(ConfigLoader.parseDuration("1500ms"), .milliseconds(1500))
        XCTAssertEqual(ConfigLoader.parseDuration("48h"), .seconds(48 * 3600))
    }

    func testInvalidDurations() {
        for text in ["", "ten", "10", "600", "s", "ms", "-1s", "+1s", "1.5s", "1h30m", "10 m", " 10m", "10m ", "10M", "10S",
                     "10sec", "10min", "1d", "0x10s", "１０s", "00", "0.0", "999999999999999999999s"] {
            XCTAssertNil(ConfigLoader.parseDuration(text), text.debugDescription)
        }
    }

    func testDurationOverflowIsRejectedNotWrapped() {
        // 18 digits parse; the unit multiplication would overflow Int64 milliseconds.
        XCTAssertEqual(ConfigLoader.parseDuration("999999999999999999ms"), .milliseconds(999_999_999_999_999_999))
        XCTAssertNil(ConfigLoader.parseDuration("999999999999999999h"))
        XCTAssertNil(ConfigLoader.parseDuration("9999999999999999999ms"))
    }

    func testFormatDuration() {
        XCTAssertEqual(ValueParsers.format(.seconds(600)), "10m")
        XCTAssertEqual(ValueParsers.format(.seconds(7200)), "2h")
        XCTAssertEqual(ValueParsers.format(.seconds(90)), "90s")
        XCTAssertEqual(ValueParsers.format(.milliseconds(1500)), "1500ms")
        XCTAssertEqual(ValueParsers.format(.zero), "0s")
        for text in ["500ms", "30s", "10m", "1h", "61s"] {
            XCTAssertEqual(ValueParsers.format(ConfigLoader.parseDuration(text)!), text)
        }
    }

    // MARK: Addresses

    private func address(_ text: String, allowPortZero: Bool = false) -> ValueParsers.Address? {
        try? ValueParsers.address(text, allowPortZero: allowPortZero).get()
    }

    private func addressError(_ text: String, allowPortZero: Bool = false) -> String? {
        switch ValueParsers.address(text, allowPortZero: allowPortZero) {
        case .success: nil
        case .failure(let error): error.message
        }
    }

    func testIPv4AndNames() {
        XCTAssertEqual(address("0.0.0.0:110"), .init(host: "0.0.0.0", port: 110))
        XCTAssertEqual(address("imap.example.net:993"), .init(host: "imap.example.net", port: 993))
        XCTAssertEqual(address("localhost:65535"), .init(host: "localhost", port: 65535))
        XCTAssertEqual(address("h:1"), .init(host: "h", port: 1))
        XCTAssertEqual(address("h:00110"), .init(host: "h", port: 110))
    }

    func testIPv6NeedsBrackets() {
        XCTAssertEqual(address("[::]:110"), .init(host: "::", port: 110))
        XCTAssertEqual(address("[::1]:995"), .init(host: "::1", port: 995))
        XCTAssertEqual(address("[2001:db8::25]:143"), .init(host: "2001:db8::25", port: 143))
        XCTAssertEqual(address("[::ffff:127.0.0.1]:993"), .init(host: "::ffff:127.0.0.1", port: 993))
        XCTAssertEqual(addressError("::1:110"), "invalid address \"::1:110\": put an IPv6 address in brackets, e.g. [::1]:110")
        XCTAssertEqual(addressError("[::1]110"), "invalid address \"[::1]110\": expected host:port, e.g. [::1]:110")
        XCTAssertEqual(addressError("[]:110"), "invalid address \"[]:110\": only IPv6 addresses go in brackets")
        XCTAssertEqual(addressError("[localhost]:110"), "invalid address \"[localhost]:110\": only IPv6 addresses go in brackets")
        XCTAssertEqual(addressError("[::1:110"), "invalid address \"[::1:110\": missing \"]\" after the IPv6 address")
        XCTAssertEqual(addressError("[::1]:"), "invalid address \"[::1]:\": the port \"\" is not a number")
        // One parser (Wire.IPAddress) for every address: malformed literals are refused.
        XCTAssertEqual(address("[fe80::1%eth0]:110"), .init(host: "fe80::1%eth0", port: 110))
        XCTAssertEqual(addressError("[fe80::1%]:110"), "invalid address \"[fe80::1%]:110\": invalid zone \"\" (an interface name or number after \"%\")")
        XCTAssertEqual(addressError("[::g]:110"), "invalid address \"[::g]:110\": invalid IPv6 address \"::g\": unexpected character \"g\" in an IPv6 address")
        XCTAssertEqual(addressError("300.0.0.1:110"), "invalid address \"300.0.0.1:110\": invalid IPv4 address \"300.0.0.1\": each part of an IPv4 address must be 0...255")
        XCTAssertEqual(addressError("010.0.0.1:110"), "invalid address \"010.0.0.1:110\": invalid IPv4 address \"010.0.0.1\": leading zeros are not allowed in an IPv4 address (octal to some tools)")
    }

    func testPortRange() {
        XCTAssertNil(address("h:0"))
        XCTAssertEqual(address("h:0", allowPortZero: true), .init(host: "h", port: 0))
        XCTAssertEqual(address("[::1]:0", allowPortZero: true), .init(host: "::1", port: 0))
        XCTAssertEqual(addressError("h:0"), "invalid address \"h:0\": the port must be 1...65535")
        XCTAssertEqual(addressError("h:65536", allowPortZero: true), "invalid address \"h:65536\": the port must be 0...65535 (0: any free port)")
        XCTAssertEqual(addressError("h:99999"), "invalid address \"h:99999\": the port must be 1...65535")
        XCTAssertEqual(addressError("h:123456"), "invalid address \"h:123456\": the port \"123456\" is not a number")
        XCTAssertEqual(addressError("h:+1"), "invalid address \"h:+1\": the port \"+1\" is not a number")
        XCTAssertEqual(addressError("h: 1"), "invalid address \"h: 1\": the port \" 1\" is not a number")
    }

    func testHostProblems() {
        XCTAssertEqual(addressError(""), "invalid address \"\": expected host:port, e.g. 127.0.0.1:110 or [::1]:110")
        XCTAssertEqual(addressError(":110"), "invalid address \":110\": the host is empty")
        XCTAssertEqual(addressError("my host:110"), "invalid address \"my host:110\": the host contains spaces, brackets or control characters")
        XCTAssertEqual(addressError("a]b:110"), "invalid address \"a]b:110\": the host contains spaces, brackets or control characters")
    }

    // MARK: Names

    func testIMAPAtoms() {
        for good in ["$POP3Deleted", "Junk", "NonJunk", "$Label1", "a.b-c_d+e/f:g", "x'y", "~", "!#&"] {
            XCTAssertNil(ValueParsers.imapAtomProblem(good), good)
        }
        for bad in ["", "\\Deleted", "a b", "(", ")", "{", "%", "*", "\"", "\\", "]", "a\u{7F}", "\u{01}", "é"] {
            XCTAssertNotNil(ValueParsers.imapAtomProblem(bad), bad.debugDescription)
        }
        // "[" is allowed in an atom (only "]" is a resp-special).
        XCTAssertNil(ValueParsers.imapAtomProblem("a[b"))
    }

    func testListenerNames() {
        for good in ["pop3", "pop3s", "POP3-lo_0.x", "0"] {
            XCTAssertTrue(ValueParsers.isValidListenerName(good), good)
        }
        for bad in ["", "pop 3", "pop3:", "pöp", "a/b", "a\n"] {
            XCTAssertFalse(ValueParsers.isValidListenerName(bad), bad.debugDescription)
        }
    }

    func testMailboxNames() {
        XCTAssertNil(ValueParsers.mailboxProblem("INBOX"))
        XCTAssertNil(ValueParsers.mailboxProblem("Gelöschte Elemente"))
        XCTAssertEqual(ValueParsers.mailboxProblem(""), "must not be empty")
        XCTAssertEqual(ValueParsers.mailboxProblem("a\rb"), "must not contain control characters")
    }
}
