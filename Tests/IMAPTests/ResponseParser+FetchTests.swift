import IMAP
import XCTest

/// FETCH responses: decoded items, streamed bodies, skipped items.
final class ResponseParserFetchTests: XCTestCase {
    private func body(_ text: String) -> IMAPResponse { .fetchBodyBytes(Array(text.utf8)) }

    func testSummary() throws {
        XCTAssertEqual(try parse("* 1 FETCH (UID 1 RFC822.SIZE 1234 FLAGS (\\Seen))\r\n"), [
            .fetchBegin(SequenceNumber(1)),
            .fetchAttribute(.uid(UID(1))),
            .fetchAttribute(.rfc822Size(1234)),
            .fetchAttribute(.flags(["\\Seen"])),
            .fetchEnd,
        ])
        XCTAssertEqual(try parse("* 9 FETCH (FLAGS () UID 4294967295 RFC822.SIZE 0)\r\n"), [
            .fetchBegin(SequenceNumber(9)),
            .fetchAttribute(.flags([])),
            .fetchAttribute(.uid(UID(UInt32.max))),
            .fetchAttribute(.rfc822Size(0)),
            .fetchEnd,
        ])
    }

    func testBodyLiteral() throws {
        XCTAssertEqual(try parse("* 2 FETCH (UID 7 BODY[] {5}\r\nhello)\r\n"), [
            .fetchBegin(SequenceNumber(2)),
            .fetchAttribute(.uid(UID(7))),
            .fetchBodyBegin(section: "", origin: nil, size: 5),
            body("hello"),
            .fetchBodyEnd,
            .fetchEnd,
        ])
    }

    func testPartialBodyLiteral() throws {
        XCTAssertEqual(try parse("* 2 FETCH (UID 7 BODY[]<0> {5}\r\nhello)\r\n"), [
            .fetchBegin(SequenceNumber(2)),
            .fetchAttribute(.uid(UID(7))),
            .fetchBodyBegin(section: "", origin: 0, size: 5),
            body("hello"),
            .fetchBodyEnd,
            .fetchEnd,
        ])
        XCTAssertEqual(try parse("* 2 FETCH (BODY[]<8192> {3}\r\nabc UID 7)\r\n"), [
            .fetchBegin(SequenceNumber(2)),
            .fetchBodyBegin(section: "", origin: 8192, size: 3),
            body("abc"),
            .fetchBodyEnd,
            .fetchAttribute(.uid(UID(7))),
            .fetchEnd,
        ])
    }

    func testUnsolicitedFlags() throws {
        XCTAssertEqual(try parse("* 2 FETCH (FLAGS (\\Seen) UID 7)\r\n"), [
            .fetchBegin(SequenceNumber(2)),
            .fetchAttribute(.flags(["\\Seen"])),
            .fetchAttribute(.uid(UID(7))),
            .fetchEnd,
        ])
    }

    func testEmptyBodyAfterSkippedItems() throws {
        XCTAssertEqual(try parse("* 1 FETCH (UID 3 MODSEQ (12) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" BODY[] {0}\r\n)\r\n"), [
            .fetchBegin(SequenceNumber(1)),
            .fetchAttribute(.uid(UID(3))),
            .fetchAttribute(.other(name: "MODSEQ")),
            .fetchAttribute(.internalDate(IMAPDay(year: 1996, month: 7, day: 17)!)),
            .fetchBodyBegin(section: "", origin: nil, size: 0),
            .fetchBodyEnd,
            .fetchEnd,
        ])
    }

    func testBodyContainingCRLFAndParens() throws {
        let message = "Subject: x\r\n\r\n)\r\nA1 OK not really\r\n* 3 EXISTS\r\n"
        let input = "* 1 FETCH (BODY[] {\(message.utf8.count)}\r\n\(message))\r\nA1 OK done\r\n"
        XCTAssertEqual(try parse(input), [
            .fetchBegin(SequenceNumber(1)),
            .fetchBodyBegin(section: "", origin: nil, size: message.utf8.count),
            body(message),
            .fetchBodyEnd,
            .fetchEnd,
            .tagged(IMAPTag("A1"), IMAPCondition(status: .ok, code: nil, text: "done")),
        ])
    }

    func testNilAndQuotedBodies() throws {
        XCTAssertEqual(try parse("* 1 FETCH (BODY[HEADER] NIL UID 2)\r\n"), [
            .fetchBegin(SequenceNumber(1)),
            .fetchBodyBegin(section: "HEADER", origin: nil, size: nil),
            .fetchBodyEnd,
            .fetchAttribute(.uid(UID(2))),
            .fetchEnd,
        ])
        XCTAssertEqual(try parse("* 1 FETCH (BODY[] \"he\\\"l\\\\lo\")\r\n"), [
            .fetchBegin(SequenceNumber(1)),
            .fetchBodyBegin(section: "", origin: nil, size: 7),
            body("he\"l\\lo"),
            .fetchBodyEnd,
            .fetchEnd,
        ])
        XCTAssertEqual(try parse("* 1 FETCH (BODY[1] \"\")\r\n"), [
            .fetchBegin(SequenceNumber(1)),
            .fetchBodyBegin(section: "1", origin: nil, size: 0),
            .fetchBodyEnd,
            .fetchEnd,
        ])
    }

    func testSectionsAndSeveralBodies() throws {
        XCTAssertEqual(try parse("* 1 FETCH (body[HEADER.FIELDS (SUBJECT FROM)] {3}\r\nabc BODY[TEXT] {2}\r\nxy uid 5)\r\n"), [
            .fetchBegin(SequenceNumber(1)),
            .fetchBodyBegin(section: "HEADER.FIELDS (SUBJECT FROM)", origin: nil, size: 3),
            body("abc"),
            .fetchBodyEnd,
            .fetchBodyBegin(section: "TEXT", origin: nil, size: 2),
            body("xy"),
            .fetchBodyEnd,
            .fetchAttribute(.uid(UID(5))),
            .fetchEnd,
        ])
    }

    func testUnknownItemsAreSkipped() throws {
        let input = """
            * 1 FETCH (X-GM-LABELS (\\Inbox "a b" foo) \
            ENVELOPE ("Wed, 17 Jul 1996 02:23:25 -0700" {7}\r
            Subj)ct (("Terry" NIL "gray" "cac.washington.edu")) NIL NIL "<B27397-0100000@cac.washington.edu>") \
            BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 3 1)("TEXT" "HTML" NIL NIL NIL "7BIT" 3 1) "ALTERNATIVE") \
            BODY ("TEXT" "PLAIN" NIL NIL NIL "7BIT" 3 1) \
            BINARY[1] ~{3}\r
            a)c \
            RFC822.HEADER {0}\r
             \
            X-EMPTY () X-NIL NIL X-QUOTED "a\\"b)" X-NUM 12345 \
            UID 9)\r

            """
        XCTAssertEqual(try parse(input), [
            .fetchBegin(SequenceNumber(1)),
            .fetchAttribute(.other(name: "X-GM-LABELS")),
            .fetchAttribute(.other(name: "ENVELOPE")),
            .fetchAttribute(.other(name: "BODYSTRUCTURE")),
            .fetchAttribute(.other(name: "BODY")),
            .fetchAttribute(.other(name: "BINARY[1]")),
            .fetchAttribute(.other(name: "RFC822.HEADER")),
            .fetchAttribute(.other(name: "X-EMPTY")),
            .fetchAttribute(.other(name: "X-NIL")),
            .fetchAttribute(.other(name: "X-QUOTED")),
            .fetchAttribute(.other(name: "X-NUM")),
            .fetchAttribute(.uid(UID(9))),
            .fetchEnd,
        ])
    }

    func testBodyChunksRespectMaxBodyChunk() throws {
        var options = IMAPResponseParser.Options()
        options.maxBodyChunk = 4
        XCTAssertEqual(try parse("* 1 FETCH (BODY[] {10}\r\n0123456789)\r\n", options: options), [
            .fetchBegin(SequenceNumber(1)),
            .fetchBodyBegin(section: "", origin: nil, size: 10),
            body("0123"), body("4567"), body("89"),
            .fetchBodyEnd,
            .fetchEnd,
        ])
        XCTAssertEqual(try parse("* 1 FETCH (BODY[] \"0123456789\")\r\n", options: options), [
            .fetchBegin(SequenceNumber(1)),
            .fetchBodyBegin(section: "", origin: nil, size: 10),
            body("0123"), body("4567"), body("89"),
            .fetchBodyEnd,
            .fetchEnd,
        ])
    }

    func testBodyBytesAreEmittedAsTheyArrive() throws {
        var parser = IMAPResponseParser()
        parser.append(bytes("* 1 FETCH (BODY[] {10}\r\n012"))
        XCTAssertEqual(try parser.next(), .fetchBegin(SequenceNumber(1)))
        XCTAssertEqual(try parser.next(), .fetchBodyBegin(section: "", origin: nil, size: 10))
        XCTAssertEqual(try parser.next(), body("012"))
        XCTAssertNil(try parser.next())
        parser.append(bytes("3456789"))
        XCTAssertEqual(try parser.next(), body("3456789"))
        XCTAssertEqual(try parser.next(), .fetchBodyEnd)
        XCTAssertNil(try parser.next())
        parser.append(bytes(")\r"))
        XCTAssertNil(try parser.next())
        XCTAssertEqual(parser.bufferedByteCount, 2)
        parser.append(bytes("\n"))
        XCTAssertEqual(try parser.next(), .fetchEnd)
        XCTAssertNil(try parser.next())
    }

    // MARK: Errors

    func testMalformedUID() throws {
        var parser = IMAPResponseParser()
        parser.append(bytes("* 1 FETCH (UID x)\r\n"))
        XCTAssertEqual(try parser.next(), .fetchBegin(SequenceNumber(1)))
        XCTAssertThrowsError(try parser.next()) { error in
            XCTAssertTrue(isMalformed(error as? IMAPParseError), "\(error)")
        }
    }

    func testMalformedFetch() {
        for input in [
            "* 1 FETCH (UID 0)\r\n",
            "* 1 FETCH (UID 4294967296)\r\n",
            "* 1 FETCH (UID 7x)\r\n",
            "* 1 FETCH (UID 7)x\r\n",
            "* 1 FETCH (UID 7\r\n",
            "* 1 FETCH (UID 7  UID 8)\r\n",
            "* 1 FETCH UID 7\r\n",
            "* 0 FETCH (UID 7)\r\n",
            "* 1 FETCH (BODY[] FOO)\r\n",
            "* 1 FETCH (BODY[] {x}\r\n)\r\n",
            "* 1 FETCH (BODY[] {3}x\r\nabc)\r\n",
            "* 1 FETCH (BODY[\r\n",
            "* 1 FETCH (ENVELOPE )\r\n",
            "* 1 FETCH (ENVELOPE (\"a)\r\n",
            "* 1 FETCH (ENVELOPE ({3}x\r\n",
            "* 1 FETCH (FLAGS (\\Seen\r\n",
            "* 1 FETCH ()x\r\n",
            "* 1 FETCH (\r\n",
        ] {
            XCTAssertTrue(isMalformed(parseError(input)), input)
        }
    }

    func testLimitsInsideFetch() throws {
        var options = IMAPResponseParser.Options()
        options.maxLineLength = 100
        options.maxLiteralSize = 1000
        // The line section after a body literal.
        XCTAssertEqual(parseError("* 1 FETCH (BODY[] {1}\r\na X-A " + String(repeating: "x", count: 200), options: options), .lineTooLong)
        XCTAssertEqual(parseError("* 1 FETCH (BODY[] {1}\r\na X-A (" + String(repeating: "x ", count: 100), options: options), .lineTooLong)
        XCTAssertEqual(parseError("* 1 FETCH (BODY[] {1}\r\na FLAGS (" + String(repeating: "x ", count: 100), options: options), .lineTooLong)
        // Skipped literals are limited, body literals are not.
        XCTAssertEqual(parseError("* 1 FETCH (ENVELOPE ({1001}\r\n", options: options), .literalTooLarge)
        XCTAssertEqual(parseError("* 1 FETCH (ENVELOPE ({99999999999999999999999}\r\n", options: options), .literalTooLarge)
        let big = String(repeating: "y", count: 5000)
        XCTAssertEqual(coalesced(try parse("* 1 FETCH (BODY[] {5000}\r\n\(big))\r\n", options: options)), [
            .fetchBegin(SequenceNumber(1)),
            .fetchBodyBegin(section: "", origin: nil, size: 5000),
            body(big),
            .fetchBodyEnd,
            .fetchEnd,
        ])
        // Many skipped literals in one value: each is within the limit, the line limit restarts after each.
        let manyLiterals = String(repeating: "{900}\r\n" + String(repeating: "z", count: 900) + " ", count: 10)
        XCTAssertEqual(try parse("* 1 FETCH (X-BIG (\(manyLiterals)NIL))\r\n", options: options), [
            .fetchBegin(SequenceNumber(1)),
            .fetchAttribute(.other(name: "X-BIG")),
            .fetchEnd,
        ])
    }
}
