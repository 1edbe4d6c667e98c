import IMAP
import XCTest

/// LIST (RFC 3501 §7.2.2, RFC 6154 special-use attributes) and NAMESPACE (RFC 2342), as Dovecot, Cyrus,
/// Courier and pymap send them: what `retention.move_to: auto` reads.
final class ResponseParserListTests: XCTestCase {
    func testDovecotListWithSpecialUse() throws {
        let transcript = """
            * LIST (\\HasNoChildren) "/" INBOX\r
            * LIST (\\HasNoChildren \\Trash) "/" "Deleted Messages"\r
            * LIST (\\HasNoChildren \\UnMarked \\Sent) "/" Sent\r
            * LIST (\\Noselect \\HasChildren) NIL ""\r
            A5 OK List completed (0.001 + 0.000 secs).\r

            """
        XCTAssertEqual(try parse(transcript), [
            .list(MailboxListing(attributes: ["\\HasNoChildren"], delimiter: "/", name: "INBOX")),
            .list(MailboxListing(attributes: ["\\HasNoChildren", "\\Trash"], delimiter: "/", name: "Deleted Messages")),
            .list(MailboxListing(attributes: ["\\HasNoChildren", "\\UnMarked", "\\Sent"], delimiter: "/", name: "Sent")),
            .list(MailboxListing(attributes: ["\\Noselect", "\\HasChildren"], delimiter: nil, name: "")),
            .tagged(IMAPTag("A5"), IMAPCondition(status: .ok, text: "List completed (0.001 + 0.000 secs).")),
        ])
    }

    func testListEscapesBracketsAndExtendedData() throws {
        XCTAssertEqual(try parse("* LIST () \".\" \"INBOX.a \\\"q\\\" \\\\b\"\r\n"),
                       [.list(MailboxListing(attributes: [], delimiter: ".", name: "INBOX.a \"q\" \\b"))])
        XCTAssertEqual(try parse("* LIST (\\trash) \".\" [Gmail].Bin (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"),
                       [.list(MailboxListing(attributes: ["\\trash"], delimiter: ".", name: "[Gmail].Bin"))])
    }

    func testSpecialUseAttributesAreCaseInsensitive() {
        let listing = MailboxListing(attributes: ["\\HasNoChildren", "\\TRASH"], delimiter: "/", name: "Bin")
        XCTAssertTrue(listing.has("\\Trash"))
        XCTAssertFalse(listing.has("\\Sent"))
    }

    func testListWithLiteralNameIsSkippedWhole() throws {
        // The name comes as a literal: skipped like any unknown response, the stream stays in step.
        XCTAssertEqual(try parse("* LIST () \"/\" {5}\r\nTr\"sh\r\nA1 OK done\r\n", feed: .byteByByte), [
            .other(keyword: "LIST"),
            .tagged(IMAPTag("A1"), IMAPCondition(status: .ok, text: "done")),
        ])
    }

    func testListOutsideTheGrammarIsSkippedNotFatal() throws {
        for line in ["* LIST\r\n", "* LIST (\\Trash \"/\" Bin\r\n", "* LIST () / Bin\r\n", "* LIST () \"/\"\r\n", "* LIST () \"/\" Bin)\r\n"] {
            XCTAssertEqual(try parse(line + "A1 OK x\r\n"), [
                .other(keyword: "LIST"),
                .tagged(IMAPTag("A1"), IMAPCondition(status: .ok, text: "x")),
            ], line)
        }
    }

    func testNamespaceForms() throws {
        // Dovecot's default, Cyrus and Courier (INBOX. prefix), a server with every part and an extension.
        XCTAssertEqual(try parse("* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n"),
                       [.namespace(personal: [Namespace(prefix: "", delimiter: "/")])])
        XCTAssertEqual(try parse("* NAMESPACE ((\"INBOX.\" \".\")) ((\"user.\" \".\")) ((\"\" \".\"))\r\n"),
                       [.namespace(personal: [Namespace(prefix: "INBOX.", delimiter: ".")])])
        XCTAssertEqual(try parse("* NAMESPACE ((\"\" \"/\")(\"#mh/\" \"/\" \"X-PARAM\" (\"FLAG1\" \"FLAG2\"))) nil ((\"#shared/\" NIL))\r\n"),
                       [.namespace(personal: [Namespace(prefix: "", delimiter: "/"), Namespace(prefix: "#mh/", delimiter: "/")])])
        XCTAssertEqual(try parse("* NAMESPACE NIL NIL NIL\r\n"), [.namespace(personal: [])])
    }

    func testNamespaceOutsideTheGrammarIsSkipped() throws {
        for line in ["* NAMESPACE\r\n", "* NAMESPACE ((\"\" \"/\")) NIL\r\n", "* NAMESPACE ((\"\" \"/\") NIL NIL\r\n", "* NAMESPACE () NIL NIL\r\n"] {
            XCTAssertEqual(try parse(line), [.other(keyword: "NAMESPACE")], line)
        }
    }

    func testDripFeedGivesTheSameEvents() throws {
        let transcript = "* NAMESPACE ((\"INBOX.\" \".\")) NIL NIL\r\n* LIST (\\Trash) \".\" INBOX.Trash\r\nA1 OK x\r\n"
        let whole = try parse(transcript)
        XCTAssertEqual(try parse(transcript, feed: .byteByByte), whole)
        XCTAssertEqual(try parse(transcript, feed: .random(seed: 7, maxPiece: 5)), whole)
    }

    func testModifiedUTF7Decoding() {
        XCTAssertEqual(ModifiedUTF7.decode("Gel&APY-schte Elemente"), "Gelöschte Elemente")
        XCTAssertEqual(ModifiedUTF7.decode("Tom &- Jerry"), "Tom & Jerry")
        XCTAssertEqual(ModifiedUTF7.decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-"), "~peter/mail/台北/日本語")
        XCTAssertEqual(ModifiedUTF7.decode("&2D3c5w-"), "📧")
        XCTAssertEqual(ModifiedUTF7.decode("INBOX.Trash"), "INBOX.Trash")
        for name in ["Entwürfe", "a&b", "é&é", "📧 x"] {
            XCTAssertEqual(ModifiedUTF7.decode(ModifiedUTF7.encode(name)), name)
        }
        XCTAssertNil(ModifiedUTF7.decode("a&APw"), "unterminated")
        XCTAssertNil(ModifiedUTF7.decode("&2D0-"), "lone surrogate")
        XCTAssertNil(ModifiedUTF7.decode("&A-"), "not whole UTF-16 units")
        XCTAssertNil(ModifiedUTF7.decode("tab\there"))
    }
}
