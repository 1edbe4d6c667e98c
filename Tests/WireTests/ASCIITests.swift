import Wire
import XCTest

final class AppendDigitsTests: XCTestCase {
    private func digits(_ value: UInt64, radix: UInt64 = 10, width: Int = 0) -> String {
        var out: [UInt8] = Array("x".utf8)
        ASCII.appendDigits(value, radix: radix, width: width, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    func testDecimalAndHexMatchTheStandardLibrary() {
        for value: UInt64 in [0, 1, 9, 10, 255, 4096, 1_732_780_000, UInt64(UInt32.max), UInt64.max] {
            XCTAssertEqual(digits(value), "x" + String(value))
            XCTAssertEqual(digits(value, radix: 16), "x" + String(value, radix: 16))
        }
    }

    func testZeroPaddingToWidth() {
        XCTAssertEqual(digits(0x2a, radix: 16, width: 8), "x0000002a")
        XCTAssertEqual(digits(7, width: 3), "x007")
        XCTAssertEqual(digits(12345, width: 3), "x12345", "a width never cuts digits")
        XCTAssertEqual(digits(5, width: 64), "x" + String(repeating: "0", count: 63) + "5")
    }
}
