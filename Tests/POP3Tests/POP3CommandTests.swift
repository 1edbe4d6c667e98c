import POP3
import Wire
import XCTest

final class POP3CommandTests: XCTestCase {
    func testErrorDescriptions() {
        XCTAssertEqual(POP3CommandError.unknownCommand("FOO").description, "Unknown command: FOO")
        XCTAssertEqual(POP3CommandError.unknownCommand("").description, "Empty command")
        XCTAssertEqual(POP3CommandError.missingArgument("TOP needs a message number and a line count").description,
                       "TOP needs a message number and a line count")
        XCTAssertEqual(POP3CommandError.invalidArgument("Invalid message number").description, "Invalid message number")
        XCTAssertEqual(POP3CommandError.invalidCharacters.description, "Invalid characters in command")
    }

    func testKeywords() {
        XCTAssertEqual(POP3Command.top(MessageNumber(1), lines: 1).keyword, "TOP")
        XCTAssertEqual(POP3Command.pass(Secret("x")).keyword, "PASS")
        XCTAssertEqual(POP3Command.auth(mechanism: nil, initialResponse: nil).keyword, "AUTH")
    }
}
