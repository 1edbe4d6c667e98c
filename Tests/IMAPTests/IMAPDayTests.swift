import IMAP
import XCTest

final class IMAPDayTests: XCTestCase {
    func testKnownDays() {
        XCTAssertEqual(IMAPDay(year: 1970, month: 1, day: 1)?.daysSince1970, 0)
        XCTAssertEqual(IMAPDay(year: 2000, month: 3, day: 1)?.daysSince1970, 11_017)
        XCTAssertEqual(IMAPDay(year: 2026, month: 12, day: 1)?.daysSince1970, 20_788)
        XCTAssertEqual(IMAPDay(year: 1969, month: 12, day: 31)?.daysSince1970, -1)
        XCTAssertNil(IMAPDay(year: 2026, month: 2, day: 29))
        XCTAssertNotNil(IMAPDay(year: 2024, month: 2, day: 29))
        XCTAssertNil(IMAPDay(year: 1900, month: 2, day: 29))
        XCTAssertNil(IMAPDay(year: 2026, month: 13, day: 1))
    }

    /// Every day of 1960...2100 survives the round trip through its IMAP form.
    func testRoundTrip() {
        for days in -3653...47_482 {
            let day = IMAPDay(daysSince1970: days)
            XCTAssertEqual(IMAPDay(imapDate: Array(day.imapDate.utf8)), day, day.imapDate)
        }
    }

    func testParsing() {
        XCTAssertEqual(IMAPDay(imapDate: Array("17-Jul-1996 02:44:25 -0700".utf8)), IMAPDay(year: 1996, month: 7, day: 17))
        XCTAssertEqual(IMAPDay(imapDate: Array(" 7-jul-1996 02:44:25 -0700".utf8)), IMAPDay(year: 1996, month: 7, day: 7))
        for bad in ["", "17-Jul", "17-Juli-1996", "xx-Jul-1996", "17-Jul-96", "123-Jul-1996", "31-Apr-2020"] {
            XCTAssertNil(IMAPDay(imapDate: Array(bad.utf8)), bad)
        }
    }
}

final class InternalDateParsingTests: XCTestCase {
    func testMalformedInternalDateIsAParseError() {
        var parser = IMAPResponseParser()
        parser.append(Array("* 1 FETCH (UID 3 INTERNALDATE \"99-Foo-1996 02:44:25 -0700\")\r\n".utf8))
        var failed = false
        do {
            while let _ = try parser.next() {}
        } catch {
            failed = true
        }
        XCTAssertTrue(failed)
    }
}
