import Gateway
import XCTest

final class UIDLFormatTests: XCTestCase {
    func testDovecotDefault() {
        XCTAssertEqual(UIDLFormat.dovecotDefault.uidl(uid: 1, uidValidity: 1_732_780_000), "0000000167481fe0")
        XCTAssertEqual(UIDLFormat.dovecotDefault.uidl(uid: 0xFFFF_FFFF, uidValidity: 0x10), "ffffffff00000010")
    }

    func testOtherFormats() throws {
        XCTAssertEqual(try UIDLFormat(parsing: "%v.%u").uidl(uid: 42, uidValidity: 7), "7.42")
        XCTAssertEqual(try UIDLFormat(parsing: "%xu-%%").uidl(uid: 255, uidValidity: 7), "ff-%")
    }

    func testErrors() {
        XCTAssertThrowsError(try UIDLFormat(parsing: "%v")) { XCTAssertEqual($0 as? UIDLFormat.ParseError, .noUID) }
        XCTAssertThrowsError(try UIDLFormat(parsing: "%m")) { XCTAssertEqual($0 as? UIDLFormat.ParseError, .unsupportedVariable("m")) }
        XCTAssertThrowsError(try UIDLFormat(parsing: "%u%")) { XCTAssertEqual($0 as? UIDLFormat.ParseError, .danglingPercent) }
        XCTAssertThrowsError(try UIDLFormat(parsing: "a b%u")) { XCTAssertEqual($0 as? UIDLFormat.ParseError, .invalidCharacter) }
        XCTAssertThrowsError(try UIDLFormat(parsing: "%8u")) { XCTAssertEqual($0 as? UIDLFormat.ParseError, .spacePadding) }
    }
}
