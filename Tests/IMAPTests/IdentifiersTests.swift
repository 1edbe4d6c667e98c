import IMAP
import XCTest

final class IdentifiersTests: XCTestCase {
    func testDescriptionsAndOrdering() {
        XCTAssertEqual(UID(42).description, "42")
        XCTAssertEqual(UIDValidity(1732780000).description, "1732780000")
        XCTAssertEqual(SequenceNumber(7).description, "7")
        XCTAssertEqual(IMAPTag("A1").description, "A1")
        XCTAssertLessThan(UID(2), UID(10))
        XCTAssertLessThan(SequenceNumber(1), SequenceNumber(2))
        XCTAssertEqual([UID(3), UID(1), UID(2)].sorted(), [UID(1), UID(2), UID(3)])
    }
}
