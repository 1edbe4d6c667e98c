import IMAP
import XCTest

/// One-line responses and unknown responses, with the exact lines Dovecot sends.
final class ResponseParserTests: XCTestCase {
    private func single(_ line: String, file: StaticString = #filePath, line number: UInt = #line) throws -> IMAPResponse? {
        let events = try parse(line)
        XCTAssertEqual(events.count, 1, "\(events)", file: file, line: number)
        return events.first
    }

    private func condition(_ status: IMAPStatus, _ code: IMAPResponseCode?, _ text: String) -> IMAPCondition {
        IMAPCondition(status: status, code: code, text: text)
    }

    func testGreeting() throws {
        let line = "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot (Debian) ready.\r\n"
        XCTAssertEqual(try single(line), .untagged(condition(.ok, .capability([
            "IMAP4REV1", "SASL-IR", "LOGIN-REFERRALS", "ID", "ENABLE", "IDLE", "LITERAL+", "STARTTLS", "AUTH=PLAIN",
        ]), "Dovecot (Debian) ready.")))
    }

    func testTaggedLoginWithCapability() throws {
        let line = "A1 OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES UIDPLUS MOVE LITERAL+ NOTIFY SPECIAL-USE] Logged in\r\n"
        XCTAssertEqual(try single(line), .tagged(IMAPTag("A1"), condition(.ok, .capability([
            "IMAP4REV1", "SASL-IR", "LOGIN-REFERRALS", "ID", "ENABLE", "IDLE", "SORT", "SORT=DISPLAY",
            "THREAD=REFERENCES", "UIDPLUS", "MOVE", "LITERAL+", "NOTIFY", "SPECIAL-USE",
        ]), "Logged in")))
    }

    func testAuthenticationFailed() throws {
        XCTAssertEqual(try single("A2 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
                       .tagged(IMAPTag("A2"), condition(.no, .authenticationFailed, "Authentication failed.")))
    }

    func testSelectResponses() throws {
        let transcript = """
            * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r
            * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r
            * 3 EXISTS\r
            * 0 RECENT\r
            * OK [UIDVALIDITY 1732780000] UIDs valid\r
            * OK [UIDNEXT 4] Predicted next UID\r
            * OK [HIGHESTMODSEQ 5] Highest\r
            A3 OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r

            """
        XCTAssertEqual(try parse(transcript), [
            .flags(["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"]),
            .untagged(condition(.ok, .permanentFlags(["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\*"]), "Flags permitted.")),
            .exists(3),
            .recent(0),
            .untagged(condition(.ok, .uidValidity(UIDValidity(1732780000)), "UIDs valid")),
            .untagged(condition(.ok, .uidNext(UID(4)), "Predicted next UID")),
            .untagged(condition(.ok, .other(name: "HIGHESTMODSEQ", argument: "5"), "Highest")),
            .tagged(IMAPTag("A3"), condition(.ok, .readWrite, "Select completed (0.001 + 0.000 secs).")),
        ])
    }

    func testExpungeByeAndContinuations() throws {
        XCTAssertEqual(try single("* 4 EXPUNGE\r\n"), .expunge(SequenceNumber(4)))
        XCTAssertEqual(try single("* BYE Server shutting down.\r\n"), .untagged(condition(.bye, nil, "Server shutting down.")))
        XCTAssertEqual(try single("+ \r\n"), .continuationRequest(text: ""))
        XCTAssertEqual(try single("+\r\n"), .continuationRequest(text: ""))
        XCTAssertEqual(try single("+ Ready for additional command text\r\n"), .continuationRequest(text: "Ready for additional command text"))
        XCTAssertEqual(try single("+ dGVzdA==\r\n"), .continuationRequest(text: "dGVzdA=="))
    }

    func testTaggedCodes() throws {
        XCTAssertEqual(try single("A4 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n"),
                       .tagged(IMAPTag("A4"), condition(.ok, .other(name: "COPYUID", argument: "38505 304,319:320 3956:3958"), "Done")))
        XCTAssertEqual(try single("A5 NO [TRYCREATE] Mailbox doesn't exist: Trash\r\n"),
                       .tagged(IMAPTag("A5"), condition(.no, .tryCreate, "Mailbox doesn't exist: Trash")))
        XCTAssertEqual(try single("A6 OK Move completed\r\n"), .tagged(IMAPTag("A6"), condition(.ok, nil, "Move completed")))
        XCTAssertEqual(try single("A7 BAD Error in IMAP command UID: Invalid arguments.\r\n"),
                       .tagged(IMAPTag("A7"), condition(.bad, nil, "Error in IMAP command UID: Invalid arguments.")))
    }

    func testMissingText() throws {
        XCTAssertEqual(try single("A1 OK\r\n"), .tagged(IMAPTag("A1"), condition(.ok, nil, "")))
        XCTAssertEqual(try single("A1 OK \r\n"), .tagged(IMAPTag("A1"), condition(.ok, nil, "")))
        XCTAssertEqual(try single("* OK [ALERT]\r\n"), .untagged(condition(.ok, .alert, "")))
        XCTAssertEqual(try single("a1 ok [read-only] lower case\r\n"), .tagged(IMAPTag("a1"), condition(.ok, .readOnly, "lower case")))
        XCTAssertEqual(try single("* PREAUTH [ALERT] hi\r\n"), .untagged(condition(.preauth, .alert, "hi")))
        XCTAssertEqual(try single("* NO [OVERQUOTA] Quota\r\n"), .untagged(condition(.no, .overQuota, "Quota")))
        XCTAssertEqual(try single("* BAD [PARSE] Huh\r\n"), .untagged(condition(.bad, .parse, "Huh")))
    }

    func testRFC5530Codes() throws {
        let codes: [(String, IMAPResponseCode)] = [
            ("INUSE", .inUse), ("AUTHENTICATIONFAILED", .authenticationFailed), ("AUTHORIZATIONFAILED", .authorizationFailed),
            ("UNAVAILABLE", .unavailable), ("EXPIRED", .expired), ("PRIVACYREQUIRED", .privacyRequired),
            ("CONTACTADMIN", .contactAdmin), ("NOPERM", .noPerm), ("LIMIT", .limit), ("OVERQUOTA", .overQuota),
            ("SERVERBUG", .serverBug), ("NONEXISTENT", .nonExistent), ("ALREADYEXISTS", .alreadyExists), ("CANNOT", .cannot),
            ("ALERT", .alert), ("PARSE", .parse), ("READ-ONLY", .readOnly), ("READ-WRITE", .readWrite), ("TRYCREATE", .tryCreate),
            ("X-UNKNOWN", .other(name: "X-UNKNOWN", argument: nil)),
            ("BADCHARSET (UTF-8 \"x]\")", .other(name: "BADCHARSET", argument: "(UTF-8 \"x]\")")),
        ]
        for (text, code) in codes {
            XCTAssertEqual(try single("T NO [\(text)] t\r\n"), .tagged(IMAPTag("T"), condition(.no, code, "t")), text)
        }
    }

    func testCapabilityAndFlagsData() throws {
        XCTAssertEqual(try single("* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED auth=plain\r\n"),
                       .capability(["IMAP4REV1", "STARTTLS", "LOGINDISABLED", "AUTH=PLAIN"]))
        XCTAssertEqual(try single("* FLAGS ()\r\n"), .flags([]))
        XCTAssertEqual(try single("* FLAGS (\\Seen $POP3Deleted NonJunk)\r\n"), .flags(["\\Seen", "$POP3Deleted", "NonJunk"]))
    }

    func testOtherResponsesAreConsumed() throws {
        let transcript = """
            * VANISHED (EARLIER) 1:3\r
            * LIST (\\HasNoChildren) "." INBOX\r
            * ENABLED\r
            * ID ("name" "Dovecot")\r
            * STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\r
            * 5 XUNKNOWN foo\r
            * LIST () "/" {9}\r
            Entw\u{fc}rfe\r
            * ID ("name" {7}\r
            Dovecot "x" {3}\r
            a\r
            )\r
            A1 OK done\r

            """
        XCTAssertEqual(try parse(transcript), [
            .other(keyword: "VANISHED"), .list(MailboxListing(attributes: ["\\HasNoChildren"], delimiter: ".", name: "INBOX")),
            .other(keyword: "ENABLED"), .other(keyword: "ID"),
            .other(keyword: "STATUS"), .other(keyword: "XUNKNOWN"), .other(keyword: "LIST"), .other(keyword: "ID"),
            .tagged(IMAPTag("A1"), condition(.ok, nil, "done")),
        ])
    }

    func testStatusTextEndingLikeALiteralIsNotALiteral() throws {
        XCTAssertEqual(try parse("* OK see {5}\r\nA1 OK x\r\n"), [
            .untagged(condition(.ok, nil, "see {5}")),
            .tagged(IMAPTag("A1"), condition(.ok, nil, "x")),
        ])
    }

    func testNeedMoreConsumesNothing() throws {
        var parser = IMAPResponseParser()
        parser.append(bytes("A1 OK Don"))
        XCTAssertNil(try parser.next())
        XCTAssertEqual(parser.bufferedByteCount, 9)
        parser.append(bytes("e\r"))
        XCTAssertNil(try parser.next())
        XCTAssertEqual(parser.bufferedByteCount, 11)
        parser.append(bytes("\n* 1 EXI"))
        XCTAssertEqual(try parser.next(), .tagged(IMAPTag("A1"), condition(.ok, nil, "Done")))
        XCTAssertNil(try parser.next())
        XCTAssertEqual(parser.bufferedByteCount, 7)
        parser.append(bytes("STS\r\n"))
        XCTAssertEqual(try parser.next(), .exists(1))
        XCTAssertNil(try parser.next())
        XCTAssertEqual(parser.bufferedByteCount, 0)
    }

    // MARK: Errors

    func testGarbage() {
        XCTAssertTrue(isMalformed(parseError("garbage\r\n")))
        XCTAssertTrue(isMalformed(parseError("garbage text\r\n")))
        XCTAssertTrue(isMalformed(parseError("\r\n")))
        XCTAssertTrue(isMalformed(parseError("*\r\n")))
        XCTAssertTrue(isMalformed(parseError("* \r\n")))
        XCTAssertTrue(isMalformed(parseError("+x\r\n")))
        XCTAssertTrue(isMalformed(parseError("A1 BYE no\r\n")))
        XCTAssertTrue(isMalformed(parseError("(A1 OK\r\n")))
    }

    func testMalformedData() {
        XCTAssertTrue(isMalformed(parseError("* 0 EXPUNGE\r\n")))
        XCTAssertTrue(isMalformed(parseError("* 3 EXISTS now\r\n")))
        XCTAssertTrue(isMalformed(parseError("* 99999999999 EXISTS\r\n")))
        XCTAssertTrue(isMalformed(parseError("* 3\r\n")))
        XCTAssertTrue(isMalformed(parseError("* FLAGS (\\Seen\r\n")))
        XCTAssertTrue(isMalformed(parseError("* FLAGS \\Seen\r\n")))
        XCTAssertTrue(isMalformed(parseError("* OK [UIDVALIDITY abc] x\r\n")))
        XCTAssertTrue(isMalformed(parseError("* OK [UIDVALIDITY 4294967296] x\r\n")))
        XCTAssertTrue(isMalformed(parseError("* OK [UIDNEXT] x\r\n")))
        XCTAssertTrue(isMalformed(parseError("* OK [ALERT text\r\n")))
        XCTAssertTrue(isMalformed(parseError("* OK [PERMANENTFLAGS \\Seen] x\r\n")))
        XCTAssertTrue(isMalformed(parseError("A1 OK done\n")))
    }

    func testLineTooLong() {
        var options = IMAPResponseParser.Options()
        options.maxLineLength = 100
        // Detected before the CRLF arrives, and with it.
        XCTAssertEqual(parseError("* OK " + String(repeating: "x", count: 200), options: options), .lineTooLong)
        XCTAssertEqual(parseError("* OK " + String(repeating: "x", count: 96) + "\r\n", options: options), .lineTooLong)
        XCTAssertEqual(try parse("* OK " + String(repeating: "x", count: 95) + "\r\n", options: options).count, 1)
        // A line of an unknown response after a literal.
        XCTAssertEqual(parseError("* LIST () \"/\" {3}\r\nabc" + String(repeating: "x", count: 200), options: options), .lineTooLong)
    }

    func testLiteralTooLarge() {
        var options = IMAPResponseParser.Options()
        options.maxLiteralSize = 1000
        XCTAssertEqual(parseError("* LIST () \"/\" {1001}\r\n", options: options), .literalTooLarge)
        XCTAssertEqual(parseError("* LIST () \"/\" {99999999999999999999999}\r\n", options: options), .literalTooLarge)
        XCTAssertEqual(try parse("* LIST () \"/\" {1000}\r\n" + String(repeating: "x", count: 1000) + "\r\n", options: options),
                       [.other(keyword: "LIST")])
    }

    func testParserIsUnusableAfterAnError() {
        var parser = IMAPResponseParser()
        parser.append(bytes("garbage\r\nA1 OK fine\r\n"))
        XCTAssertThrowsError(try parser.next())
        parser.append(bytes("A2 OK fine\r\n"))
        XCTAssertThrowsError(try parser.next()) { error in
            XCTAssertTrue(isMalformed(error as? IMAPParseError))
        }
    }

    func testErrorTextIsSanitised() {
        guard case .malformed(let text)? = parseError(bytes("A1 \u{1b}[31m\r\n")) else { return XCTFail("expected malformed") }
        XCTAssertFalse(text.unicodeScalars.contains { $0.value < 32 }, text)
    }
}

final class ResponseParserIdleMemoryTests: XCTestCase {
    func testReleaseGivesBackTheBufferOnlyBetweenResponses() throws {
        var parser = IMAPResponseParser()
        var lines = ""
        for n in 1...500 { lines += "* \(n) FETCH (UID \(n) RFC822.SIZE 10 FLAGS ())\r\n" }
        parser.append(Array((lines + "A1 OK done\r\n* 501 FETCH (UID").utf8))
        XCTAssertGreaterThan(parser.bufferCapacity, 10_000)
        var tagged = 0
        while let response = try parser.next() {
            if case .tagged = response { tagged += 1 }
        }
        XCTAssertEqual(tagged, 1)
        parser.releaseIdleMemory()
        XCTAssertGreaterThan(parser.bufferCapacity, 0, "inside a response: kept")
        parser.append(Array(" 501)\r\n".utf8))
        while try parser.next() != nil {}
        parser.releaseIdleMemory()
        XCTAssertEqual(parser.bufferCapacity, 0)
        parser.append(Array("A2 OK again\r\n".utf8))
        guard case .tagged(let tag, _)? = try parser.next() else { return XCTFail("no tagged response after a release") }
        XCTAssertEqual(tag.description, "A2")
    }
}
