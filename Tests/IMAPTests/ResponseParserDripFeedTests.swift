import IMAP
import XCTest

/// The same bytes fed all at once, byte by byte and in random splits give the same events.
final class ResponseParserDripFeedTests: XCTestCase {
    static let message = "From: a@example.org\r\nSubject: {5}\r\n\r\n)\r\n* 9 EXISTS\r\nA9 OK fake\r\n"

    static let transcript = """
        * OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] Dovecot (Debian) ready.\r
        + \r
        A1 OK [CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE UIDPLUS MOVE LITERAL+] Logged in\r
        * FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r
        * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.\r
        * 3 EXISTS\r
        * 0 RECENT\r
        * OK [UIDVALIDITY 1732780000] UIDs valid\r
        * OK [UIDNEXT 4] Predicted next UID\r
        A2 OK [READ-WRITE] Select completed (0.001 + 0.000 secs).\r
        * 1 FETCH (UID 1 RFC822.SIZE 1234 FLAGS (\\Seen))\r
        * 2 FETCH (UID 7 RFC822.SIZE 5 FLAGS ())\r
        A3 OK Fetch completed.\r
        * 2 FETCH (UID 7 BODY[] {\(message.utf8.count)}\r
        \(message))\r
        * 2 FETCH (FLAGS (\\Seen) UID 7)\r
        * 1 FETCH (UID 3 MODSEQ (12) INTERNALDATE "17-Jul-1996 02:44:25 -0700" BODY[] {0}\r
        )\r
        * 2 FETCH (UID 7 ENVELOPE (NIL {3}\r
        a\r
         ("x" "y\\"z")) BODY[]<0> {5}\r
        hello BODY[HEADER] NIL X-Q "q")\r
        A4 OK Fetch completed.\r
        * VANISHED (EARLIER) 1:3\r
        * LIST (\\HasNoChildren) "." {5}\r
        INBOX\r
        * ENABLED\r
        * ID ("name" "Dovecot")\r
        * 4 EXPUNGE\r
        A5 OK [COPYUID 38505 304,319:320 3956:3958] Done\r
        A6 NO [TRYCREATE] Mailbox doesn't exist: Trash\r
        A7 BAD Error in IMAP command UID: Invalid arguments.\r
        * OK [ALERT]\r
        A8 OK\r
        * BYE Server shutting down.\r

        """

    static var expected: [IMAPResponse] {
        func ok(_ code: IMAPResponseCode?, _ text: String) -> IMAPCondition { IMAPCondition(status: .ok, code: code, text: text) }
        return [
            .untagged(ok(.capability(["IMAP4REV1", "SASL-IR", "LOGIN-REFERRALS", "ID", "ENABLE", "IDLE", "LITERAL+", "STARTTLS", "AUTH=PLAIN"]), "Dovecot (Debian) ready.")),
            .continuationRequest(text: ""),
            .tagged(IMAPTag("A1"), ok(.capability(["IMAP4REV1", "SASL-IR", "ID", "ENABLE", "IDLE", "UIDPLUS", "MOVE", "LITERAL+"]), "Logged in")),
            .flags(["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"]),
            .untagged(ok(.permanentFlags(["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\*"]), "Flags permitted.")),
            .exists(3),
            .recent(0),
            .untagged(ok(.uidValidity(UIDValidity(1732780000)), "UIDs valid")),
            .untagged(ok(.uidNext(UID(4)), "Predicted next UID")),
            .tagged(IMAPTag("A2"), ok(.readWrite, "Select completed (0.001 + 0.000 secs).")),
            .fetchBegin(SequenceNumber(1)), .fetchAttribute(.uid(UID(1))), .fetchAttribute(.rfc822Size(1234)),
            .fetchAttribute(.flags(["\\Seen"])), .fetchEnd,
            .fetchBegin(SequenceNumber(2)), .fetchAttribute(.uid(UID(7))), .fetchAttribute(.rfc822Size(5)),
            .fetchAttribute(.flags([])), .fetchEnd,
            .tagged(IMAPTag("A3"), ok(nil, "Fetch completed.")),
            .fetchBegin(SequenceNumber(2)), .fetchAttribute(.uid(UID(7))),
            .fetchBodyBegin(section: "", origin: nil, size: message.utf8.count), .fetchBodyBytes(Array(message.utf8)), .fetchBodyEnd,
            .fetchEnd,
            .fetchBegin(SequenceNumber(2)), .fetchAttribute(.flags(["\\Seen"])), .fetchAttribute(.uid(UID(7))), .fetchEnd,
            .fetchBegin(SequenceNumber(1)), .fetchAttribute(.uid(UID(3))), .fetchAttribute(.other(name: "MODSEQ")),
            .fetchAttribute(.internalDate(IMAPDay(year: 1996, month: 7, day: 17)!)), .fetchBodyBegin(section: "", origin: nil, size: 0), .fetchBodyEnd,
            .fetchEnd,
            .fetchBegin(SequenceNumber(2)), .fetchAttribute(.uid(UID(7))), .fetchAttribute(.other(name: "ENVELOPE")),
            .fetchBodyBegin(section: "", origin: 0, size: 5), .fetchBodyBytes(Array("hello".utf8)), .fetchBodyEnd,
            .fetchBodyBegin(section: "HEADER", origin: nil, size: nil), .fetchBodyEnd,
            .fetchAttribute(.other(name: "X-Q")),
            .fetchEnd,
            .tagged(IMAPTag("A4"), ok(nil, "Fetch completed.")),
            .other(keyword: "VANISHED"),
            .other(keyword: "LIST"),
            .other(keyword: "ENABLED"),
            .other(keyword: "ID"),
            .expunge(SequenceNumber(4)),
            .tagged(IMAPTag("A5"), ok(.other(name: "COPYUID", argument: "38505 304,319:320 3956:3958"), "Done")),
            .tagged(IMAPTag("A6"), IMAPCondition(status: .no, code: .tryCreate, text: "Mailbox doesn't exist: Trash")),
            .tagged(IMAPTag("A7"), IMAPCondition(status: .bad, code: nil, text: "Error in IMAP command UID: Invalid arguments.")),
            .untagged(ok(.alert, "")),
            .tagged(IMAPTag("A8"), ok(nil, "")),
            .untagged(IMAPCondition(status: .bye, code: nil, text: "Server shutting down.")),
        ]
    }

    func testWhole() throws {
        XCTAssertEqual(coalesced(try parse(Self.transcript)), Self.expected)
    }

    func testByteByByte() throws {
        XCTAssertEqual(coalesced(try parse(Self.transcript, feed: .byteByByte)), Self.expected)
    }

    func testRandomSplits() throws {
        for seed: UInt64 in 1...40 {
            let maxPiece = seed % 2 == 0 ? 7 : 97
            XCTAssertEqual(coalesced(try parse(Self.transcript, feed: .random(seed: seed, maxPiece: maxPiece))), Self.expected, "seed \(seed)")
        }
    }

    func testEverySingleSplitPoint() throws {
        let input = Array(Self.transcript.utf8)
        for cut in 1..<input.count {
            var parser = IMAPResponseParser()
            var events: [IMAPResponse] = []
            parser.append(input[..<cut])
            while let event = try parser.next() { events.append(event) }
            parser.append(input[cut...])
            while let event = try parser.next() { events.append(event) }
            XCTAssertEqual(coalesced(events), Self.expected, "cut at \(cut)")
        }
    }

    /// An over-long line that ends in a bare LF: fed in pieces the length limit trips before the LF
    /// arrives, so all at once it must be the same error, not "LF without CR" (found by FuzzIMAPParser).
    func testOverlongLineWithBareLFFailsTheSameWayWhateverTheSplit() {
        var options = IMAPResponseParser.Options()
        options.maxLineLength = 64
        let input = "* " + String(repeating: "M", count: 70) + "\n"
        for feed in [Feed.whole, .byteByByte, .random(seed: 7, maxPiece: 5)] {
            XCTAssertThrowsError(try parse(input, feed: feed, options: options), "\(feed)") { error in
                XCTAssertEqual(error as? IMAPParseError, .lineTooLong, "\(feed)")
            }
        }
        // At the limit, the bare LF is what is wrong.
        let short = "* " + String(repeating: "M", count: 62) + "\n"
        for feed in [Feed.whole, .byteByByte] {
            XCTAssertThrowsError(try parse(short, feed: feed, options: options), "\(feed)") { error in
                XCTAssertEqual(error as? IMAPParseError, .malformed("line ends in LF without CR"), "\(feed)")
            }
        }
    }

    /// A FETCH item that runs past the line limit and is malformed after it: fed in pieces the limit
    /// trips first, so all at once it must too (found by FuzzIMAPParser).
    func testFetchItemPastTheLineLimitFailsTheSameWayWhateverTheSplit() {
        var options = IMAPResponseParser.Options()
        options.maxLineLength = 64
        // After a literal the rest of the line is a new section, which only the FETCH parser measures.
        let input = "* 1 FETCH (BODY[] {5}\r\nhello BODY[" + String(repeating: "H", count: 70) + "]N)\r\n"
        for feed in [Feed.whole, .byteByByte, .random(seed: 3, maxPiece: 9)] {
            XCTAssertThrowsError(try parse(input, feed: feed, options: options), "\(feed)") { error in
                XCTAssertEqual(error as? IMAPParseError, .lineTooLong, "\(feed)")
            }
        }
        // Within the limit the grammar error is what is reported.
        let short = "* 1 FETCH (BODY[] {5}\r\nhello BODY[" + String(repeating: "H", count: 20) + "]N)\r\n"
        for feed in [Feed.whole, .byteByByte] {
            XCTAssertThrowsError(try parse(short, feed: feed, options: options), "\(feed)") { error in
                guard case .malformed? = error as? IMAPParseError else { return XCTFail("\(feed): \(error)") }
            }
        }
    }

    func testSplitsWithSmallChunks() throws {
        var options = IMAPResponseParser.Options()
        options.maxBodyChunk = 3
        for feed in [Feed.whole, .byteByByte, .random(seed: 99, maxPiece: 11)] {
            let events = try parse(Self.transcript, feed: feed, options: options)
            for case .fetchBodyBytes(let chunk) in events {
                XCTAssertFalse(chunk.isEmpty)
                XCTAssertLessThanOrEqual(chunk.count, 3)
            }
            XCTAssertEqual(coalesced(events), Self.expected)
        }
    }

    /// A 5 MB body fed in 3000-byte pieces: the parser's buffer stays small and every byte arrives in order.
    func testLargeLiteralIsStreamed() throws {
        let size = 5 * 1024 * 1024
        var body = [UInt8](repeating: 0, count: size)
        for index in body.indices { body[index] = UInt8(truncatingIfNeeded: index % 251) }
        let input = Array("* 1 FETCH (UID 9 BODY[] {\(size)}\r\n".utf8) + body + Array(" FLAGS (\\Seen))\r\nA5 OK done\r\n".utf8)

        var parser = IMAPResponseParser()
        var received: [UInt8] = []
        received.reserveCapacity(size)
        var others: [IMAPResponse] = []
        var maxBuffered = 0
        var chunks = 0
        var start = 0
        while start < input.count {
            let end = min(start + 3000, input.count)
            parser.append(input[start..<end])
            maxBuffered = max(maxBuffered, parser.bufferedByteCount)
            start = end
            while let event = try parser.next() {
                if case .fetchBodyBytes(let chunk) = event {
                    XCTAssertLessThanOrEqual(chunk.count, 65536)
                    received += chunk
                    chunks += 1
                } else {
                    others.append(event)
                }
            }
            XCTAssertLessThan(parser.bufferedByteCount, 200 * 1024)
        }
        XCTAssertLessThan(maxBuffered, 200 * 1024)
        XCTAssertEqual(parser.bufferedByteCount, 0)
        XCTAssertEqual(received.count, size)
        XCTAssertTrue(received == body, "body bytes differ")
        XCTAssertGreaterThan(chunks, 1000, "bytes must be emitted as they arrive")
        XCTAssertEqual(others, [
            .fetchBegin(SequenceNumber(1)),
            .fetchAttribute(.uid(UID(9))),
            .fetchBodyBegin(section: "", origin: nil, size: size),
            .fetchBodyEnd,
            .fetchAttribute(.flags(["\\Seen"])),
            .fetchEnd,
            .tagged(IMAPTag("A5"), IMAPCondition(status: .ok, code: nil, text: "done")),
        ])
    }

    /// Skipped literals are consumed while they are scanned, so they do not pile up in the buffer either.
    func testSkippedLiteralsDoNotAccumulate() throws {
        let literal = String(repeating: "q", count: 900_000)
        let input = Array("* 1 LIST () \"/\" {900000}\r\n\(literal)\r\n* 1 FETCH (ENVELOPE ({900000}\r\n\(literal) {900000}\r\n\(literal)) UID 1)\r\n".utf8)
        var parser = IMAPResponseParser()
        var events: [IMAPResponse] = []
        var start = 0
        while start < input.count {
            let end = min(start + 3000, input.count)
            parser.append(input[start..<end])
            start = end
            while let event = try parser.next() { events.append(event) }
            XCTAssertLessThan(parser.bufferedByteCount, 8 * 1024)
        }
        XCTAssertEqual(events, [
            .other(keyword: "LIST"),
            .fetchBegin(SequenceNumber(1)),
            .fetchAttribute(.other(name: "ENVELOPE")),
            .fetchAttribute(.uid(UID(1))),
            .fetchEnd,
        ])
    }
}
