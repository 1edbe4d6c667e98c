import POP3
import XCTest

final class MessageNumberTests: XCTestCase {
    func testMessageNumber() {
        XCTAssertLessThan(MessageNumber(2), MessageNumber(10))
        XCTAssertEqual(MessageNumber(5).description, "5")
        XCTAssertEqual("\(MessageNumber(12))", "12")
        XCTAssertEqual(Set([MessageNumber(1), MessageNumber(1), MessageNumber(2)]).count, 2)
    }
}
