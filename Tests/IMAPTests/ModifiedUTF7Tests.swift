import IMAP
import XCTest

final class ModifiedUTF7Tests: XCTestCase {
    func testASCIIUnchanged() {
        XCTAssertEqual(ModifiedUTF7.encode("INBOX"), "INBOX")
        XCTAssertEqual(ModifiedUTF7.encode("Sent Items/2024 ~x"), "Sent Items/2024 ~x")
        XCTAssertEqual(ModifiedUTF7.encode(""), "")
    }

    func testAmpersand() {
        XCTAssertEqual(ModifiedUTF7.encode("&"), "&-")
        XCTAssertEqual(ModifiedUTF7.encode("Tom & Jerry"), "Tom &- Jerry")
    }

    func testNonASCII() {
        XCTAssertEqual(ModifiedUTF7.encode("Entwürfe"), "Entw&APw-rfe")
        XCTAssertEqual(ModifiedUTF7.encode("Gelöschte Elemente"), "Gel&APY-schte Elemente")
        // RFC 3501 §5.1.3 example; "/" of base64 becomes ",".
        XCTAssertEqual(ModifiedUTF7.encode("~peter/mail/台北/日本語"), "~peter/mail/&U,BTFw-/&ZeVnLIqe-")
    }

    func testSurrogatePairAndControlCharacters() {
        XCTAssertEqual(ModifiedUTF7.encode("📧"), "&2D3c5w-")
        XCTAssertEqual(ModifiedUTF7.encode("a\u{1}b"), "a&AAE-b")
        XCTAssertEqual(ModifiedUTF7.encode("é&é"), "&AOk-&-&AOk-")
    }
}
