import POP3
import Wire
import XCTest

final class CommandParserTests: XCTestCase {
    private func parse(_ line: String) -> Result<POP3Command, POP3CommandError> {
        POP3CommandParser.parse(ArraySlice(line.utf8))
    }

    private func parse(_ bytes: [UInt8]) -> Result<POP3Command, POP3CommandError> {
        POP3CommandParser.parse(ArraySlice(bytes))
    }

    private func assertParses(_ line: String, _ expected: POP3Command, file: StaticString = #filePath, line number: UInt = #line) {
        XCTAssertEqual(parse(line), .success(expected), "line: \(line)", file: file, line: number)
    }

    private func assertFails(_ line: String, _ expected: POP3CommandError, file: StaticString = #filePath, line number: UInt = #line) {
        XCTAssertEqual(parse(line), .failure(expected), "line: \(line)", file: file, line: number)
    }

    private func assertInvalidArgument(_ line: String, file: StaticString = #filePath, line number: UInt = #line) {
        guard case .failure(.invalidArgument) = parse(line) else {
            return XCTFail("expected invalidArgument for \(line), got \(parse(line))", file: file, line: number)
        }
    }

    // MARK: - Every command

    func testCommandsWithoutArguments() {
        assertParses("CAPA", .capa)
        assertParses("STLS", .stls)
        assertParses("STAT", .stat)
        assertParses("NOOP", .noop)
        assertParses("RSET", .rset)
        assertParses("QUIT", .quit)
        assertParses("APOP", .apop)
        assertParses("APOP mrose c4c9334bac560ecc979e58001b3e22fb", .apop)
    }

    func testKeywordIsCaseInsensitive() {
        assertParses("capa", .capa)
        assertParses("Stat", .stat)
        assertParses("qUiT", .quit)
        assertParses("retr 3", .retr(MessageNumber(3)))
        assertParses("Top 1 2", .top(MessageNumber(1), lines: 2))
        assertParses("user Bob", .user("Bob"))
        assertParses("pass Secret", .pass(Secret("Secret")))
        assertParses("auth plain", .auth(mechanism: "PLAIN", initialResponse: nil))
        assertParses("stls", .stls)
    }

    func testMessageNumberCommands() {
        assertParses("LIST", .list(nil))
        assertParses("LIST 1", .list(MessageNumber(1)))
        assertParses("UIDL", .uidl(nil))
        assertParses("UIDL 42", .uidl(MessageNumber(42)))
        assertParses("RETR 7", .retr(MessageNumber(7)))
        assertParses("DELE 2147483647", .dele(MessageNumber(2_147_483_647)))
        assertParses("TOP 1 0", .top(MessageNumber(1), lines: 0))
        assertParses("TOP 3 2147483647", .top(MessageNumber(3), lines: 2_147_483_647))
        assertParses("RETR 007", .retr(MessageNumber(7)))
    }

    func testLenientSpacesInNumericArguments() {
        assertParses("RETR  1", .retr(MessageNumber(1)))
        assertParses("RETR 1 ", .retr(MessageNumber(1)))
        assertParses("TOP   1    5  ", .top(MessageNumber(1), lines: 5))
        assertParses("LIST ", .list(nil))
        assertParses("UIDL   ", .uidl(nil))
        assertParses("STAT ", .stat)
        assertParses("QUIT  ", .quit)
    }

    // MARK: - Bad arguments

    func testMissingArguments() {
        assertFails("RETR", .missingArgument("RETR needs a message number"))
        assertFails("RETR ", .missingArgument("RETR needs a message number"))
        assertFails("DELE", .missingArgument("DELE needs a message number"))
        assertFails("TOP", .missingArgument("TOP needs a message number and a line count"))
        assertFails("TOP 1", .missingArgument("TOP needs a message number and a line count"))
        assertFails("TOP 1 ", .missingArgument("TOP needs a message number and a line count"))
        assertFails("USER", .missingArgument("USER needs a user name"))
        assertFails("USER ", .missingArgument("USER needs a user name"))
        assertFails("PASS", .missingArgument("PASS needs a password"))
        assertFails("PASS ", .missingArgument("PASS needs a password"))
    }

    func testInvalidNumbers() {
        for line in ["RETR 0", "RETR -1", "RETR +1", "RETR 99999999999999999999", "RETR 2147483648", "RETR 1a",
                     "RETR a", "RETR 0x10", "RETR 1.0", "DELE 0", "LIST 0", "UIDL -5", "LIST x",
                     "TOP 0 1", "TOP 1 x", "TOP 1 -1", "TOP 1 2147483648", "TOP x 1",
                     "TOP 1 99999999999999999999999999999999999999"] {
            assertInvalidArgument(line)
        }
        XCTAssertEqual(parse("RETR 0"), .failure(.invalidArgument("Invalid message number")))
        XCTAssertEqual(parse("TOP 1 x"), .failure(.invalidArgument("Invalid line count")))
    }

    func testTooManyArguments() {
        for line in ["RETR 1 2", "DELE 1 2", "LIST 1 2", "UIDL 1 2", "TOP 1 2 3", "STAT 1", "NOOP x",
                     "CAPA please", "STLS now", "RSET 1", "QUIT bye", "AUTH PLAIN abc def"] {
            assertInvalidArgument(line)
        }
        XCTAssertEqual(parse("STAT 1"), .failure(.invalidArgument("STAT takes no arguments")))
        XCTAssertEqual(parse("TOP 1 2 3"), .failure(.invalidArgument("Too many arguments for TOP")))
    }

    func testUnknownCommands() {
        assertFails("FOO", .unknownCommand("FOO"))
        assertFails("foo bar", .unknownCommand("foo"))
        assertFails("LAST", .unknownCommand("LAST"))
        assertFails("XTND XMIT", .unknownCommand("XTND"))
        assertFails("", .unknownCommand(""))
        assertFails(" RETR 1", .unknownCommand(""))
        assertFails("RETR1", .unknownCommand("RETR1"))
        // Cut to 16 characters.
        assertFails(String(repeating: "A", count: 40), .unknownCommand(String(repeating: "A", count: 16)))
        assertFails("ÄÖÜäöüßÄÖÜäöüßÄÖÜ x", .unknownCommand("ÄÖÜäöüßÄÖÜäöüßÄÖ"))
    }

    func testControlCharactersAreRejected() {
        XCTAssertEqual(parse(Array("RETR 1".utf8) + [0]), .failure(.invalidCharacters))
        XCTAssertEqual(parse([0]), .failure(.invalidCharacters))
        XCTAssertEqual(parse(Array("PASS se".utf8) + [0] + Array("cret".utf8)), .failure(.invalidCharacters))
        XCTAssertEqual(parse(Array("USER bob".utf8) + [13] + Array("QUIT".utf8)), .failure(.invalidCharacters))
        XCTAssertEqual(parse(Array("USER a".utf8) + [10]), .failure(.invalidCharacters))
        XCTAssertEqual(parse("RETR\t1"), .failure(.invalidCharacters))
        XCTAssertEqual(parse(Array("NOOP".utf8) + [0x7F]), .failure(.invalidCharacters))
        XCTAssertEqual(parse(Array("NOOP".utf8) + [0x1B]), .failure(.invalidCharacters))
    }

    func testInvalidUTF8() {
        XCTAssertEqual(parse([0xFF, 0x41]), .failure(.invalidCharacters))
        XCTAssertEqual(parse([0x52, 0xC3, 0x20, 0x31]), .failure(.invalidCharacters))  // truncated sequence in keyword
        XCTAssertEqual(parse(Array("USER ".utf8) + [0xC3, 0x28]), .failure(.invalidCharacters))
    }

    // MARK: - USER / PASS byte-exactness

    func testUserKeepsTheNameAsSent() {
        assertParses("USER bob", .user("bob"))
        assertParses("USER bob@example.org", .user("bob@example.org"))
        assertParses("USER jürgen", .user("jürgen"))
        assertParses("USER  bob", .user(" bob"))
        assertParses("USER bob smith", .user("bob smith"))
        assertParses("USER \u{FFFD}", .user("\u{FFFD}"))  // a real U+FFFD is valid UTF-8
    }

    func testPassKeepsEverythingAfterTheFirstSpace() {
        let cases: [[UInt8]] = [
            Array("a b c".utf8),
            Array(" leading".utf8),
            Array("trailing ".utf8),
            Array("  ".utf8),
            Array("\"quoted\" 'single' \\back".utf8),
            Array("pässwörd 密码 🔑".utf8),
            [0xFF, 0xFE, 0x41],  // not UTF-8: still passed on byte-exact
        ]
        for password in cases {
            let line = Array("PASS ".utf8) + password
            XCTAssertEqual(parse(line), .success(.pass(Secret(password))))
            guard case .success(.pass(let secret)) = parse(line) else { return XCTFail() }
            XCTAssertEqual(secret.bytes, password)
        }
        assertParses("pass x", .pass(Secret("x")))
    }

    // MARK: - AUTH

    func testAuthForms() {
        assertParses("AUTH", .auth(mechanism: nil, initialResponse: nil))
        assertParses("AUTH ", .auth(mechanism: nil, initialResponse: nil))
        assertParses("AUTH PLAIN", .auth(mechanism: "PLAIN", initialResponse: nil))
        assertParses("AUTH plain", .auth(mechanism: "PLAIN", initialResponse: nil))
        assertParses("AUTH Plain", .auth(mechanism: "PLAIN", initialResponse: nil))
        assertParses("AUTH x-oauth_2", .auth(mechanism: "X-OAUTH_2", initialResponse: nil))
        assertParses("AUTH PLAIN =", .auth(mechanism: "PLAIN", initialResponse: Secret([])))
        assertParses("AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbmZ0YW4=",
                     .auth(mechanism: "PLAIN", initialResponse: Secret("AHRpbQB0YW5zdGFhZnRhbmZ0YW4=")))
        // The initial response keeps its case: base64 is case-sensitive.
        assertParses("auth plain dGVzdA==", .auth(mechanism: "PLAIN", initialResponse: Secret("dGVzdA==")))
        assertParses("AUTH  PLAIN  dGVzdA==", .auth(mechanism: "PLAIN", initialResponse: Secret("dGVzdA==")))
    }

    func testAuthBadMechanismNames() {
        assertInvalidArgument("AUTH PL*IN")
        assertInvalidArgument("AUTH " + String(repeating: "A", count: 21))
        assertInvalidArgument("AUTH PLAIN a b")
        assertParses("AUTH " + String(repeating: "A", count: 20), .auth(mechanism: String(repeating: "A", count: 20), initialResponse: nil))
    }

    func testAuthPayloadIsRedacted() {
        guard case .success(let command) = parse("AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbmZ0YW4=") else { return XCTFail() }
        XCTAssertFalse("\(command)".contains("AHRpbQ"))
        guard case .success(let pass) = parse("PASS hunter2") else { return XCTFail() }
        XCTAssertFalse(String(describing: pass).contains("hunter2"))
        XCTAssertFalse(String(reflecting: pass).contains("hunter2"))
    }

    // MARK: - Slices

    func testParsesASliceWithNonZeroStartIndex() {
        let bytes = Array("xxTOP 2 3".utf8)
        XCTAssertEqual(POP3CommandParser.parse(bytes[2...]), .success(.top(MessageNumber(2), lines: 3)))
        let user = Array("__USER ann".utf8)
        XCTAssertEqual(POP3CommandParser.parse(user[2...]), .success(.user("ann")))
    }
}
