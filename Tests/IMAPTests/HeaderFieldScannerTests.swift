import IMAP
import Wire
import XCTest

final class HeaderFieldScannerTests: XCTestCase {
    private func value(_ text: String, pieces: Int = 1, name: String = "X-UIDL") -> String? {
        var scanner = HeaderFieldScanner()
        let bytes = Array(text.utf8)
        let step = max(1, (bytes.count + pieces - 1) / max(1, pieces))
        var index = 0
        while index < bytes.count {
            scanner.feed(bytes[index..<min(bytes.count, index + step)])
            index += step
        }
        return scanner.value(of: name).map { String(decoding: $0, as: UTF8.self) }
    }

    func testFirstFieldValueWhateverTheSplit() {
        for pieces in [1, 2, 5, 1000] {
            XCTAssertEqual(value("X-UIDL: 1b7c2a55f0e4b9d8\r\n\r\n", pieces: pieces), "1b7c2a55f0e4b9d8", "\(pieces)")
        }
        // Name in any case (RFC 5322), spaces and tabs around the value, space before the colon.
        XCTAssertEqual(value("x-uidl:\t <abc@host> \t\r\n\r\n"), "<abc@host>")
        XCTAssertEqual(value("X-Uidl :abc\r\n\r\n"), "abc")
        // Of two fields, the first (as Dovecot's mail_get_first_header).
        XCTAssertEqual(value("X-UIDL: first\r\nX-UIDL: second\r\n\r\n"), "first")
        // An empty value is returned as empty; the caller decides it is unusable.
        XCTAssertEqual(value("X-UIDL:\r\n\r\n"), "")
    }

    func testWhatCannotBeReadWholeIsNil() {
        XCTAssertNil(value("\r\n"), "no field: the empty answer")
        XCTAssertNil(value(""), "nothing at all")
        XCTAssertNil(value("X-UIDL: abc"), "no line end")
        XCTAssertNil(value("X-UIDL: abc\n\n"), "bare LF")
        XCTAssertNil(value("X-UIDL: abc\r\n def\r\n\r\n"), "folded")
        XCTAssertNil(value("X-UIDL: abc\r\n\tdef\r\n\r\n"), "folded with a tab")
        XCTAssertNil(value("Subject: abc\r\n\r\n"), "another field")
        XCTAssertNil(value("X-UIDLX: abc\r\n\r\n"), "a longer name")
        XCTAssertNil(value("X-UIDL abc\r\n\r\n"), "no colon")
    }

    func testKeepsAtMostItsCapacity() {
        let long = String(repeating: "a", count: 10_000)
        var scanner = HeaderFieldScanner()
        scanner.feed(Array("X-UIDL: \(long)\r\n\r\n".utf8))
        XCTAssertNil(scanner.value(of: "X-UIDL"), "the line does not end within the kept bytes")
        XCTAssertEqual(scanner.byteCount, 10_012)
        // A line that ends exactly at the capacity, with the byte after it unknown, may be folded: nil.
        let fits = String(repeating: "b", count: HeaderFieldScanner.capacity - 10)
        XCTAssertEqual(value("X-UIDL: \(fits)\r\n"), fits, "the whole answer, nothing after the line")
        XCTAssertNil(value("X-UIDL: \(fits)\r\n\r\n"), "more came than was kept: the next byte is unknown")
    }

    func testFetchItemIsEncoded() {
        let command = IMAPCommand.uidFetch(UIDSet.all, items: [.uid, .rfc822Size, .flags, .headerFieldsPeek(["X-UIDL"])])
        XCTAssertEqual(IMAPCommandEncoder.encode(command, tag: IMAPTag("P3"), literalPlus: true).map { String(decoding: $0, as: UTF8.self) },
                       ["P3 UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (X-UIDL)])\r\n"])
    }

    func testParserStreamsTheHeaderFieldsAnswer() throws {
        let input = Array("* 1 FETCH (UID 4 RFC822.SIZE 10 FLAGS () BODY[HEADER.FIELDS (X-UIDL)] {14}\r\nX-UIDL: ab\r\n\r\n)\r\n".utf8)
        for feed in [Feed.whole, .byteByByte] {
            let events = try parse(input, feed: feed)
            var scanner = HeaderFieldScanner()
            var section: String?
            for case .fetchBodyBegin(let s, _, _) in events { section = s }
            for case .fetchBodyBytes(let bytes) in events { scanner.feed(bytes) }
            XCTAssertEqual(section, "HEADER.FIELDS (X-UIDL)")
            XCTAssertEqual(scanner.value(of: "X-UIDL").map(Array.init), Array("ab".utf8))
        }
    }
}
