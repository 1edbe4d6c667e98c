import Wire
import XCTest

final class ByteSearchTests: XCTestCase {
    private func find(_ byte: UInt8, in bytes: [UInt8], from: Int = 0) -> Int? {
        bytes.withUnsafeBufferPointer { ByteSearch.firstIndex(of: byte, in: $0, from: from) }
    }

    /// Every length up to three words, the byte at every position and from every start, against a plain
    /// loop; other bytes around it include ones that differ from it in a single bit (0x0A vs 0x0B, 0x8A).
    func testAgreesWithALoopAtEveryPositionAndStart() {
        let lf = UInt8(ascii: "\n")
        for length in 0...24 {
            for position in [-1] + Array(0..<length) {
                var bytes = (0..<length).map { UInt8(truncatingIfNeeded: [0x0B, 0x8A, 0x61, 0x09][$0 % 4]) }
                if position >= 0 { bytes[position] = lf; if position + 3 < length { bytes[position + 3] = lf } }
                for from in 0...length {
                    let expected = bytes.indices.first { $0 >= from && bytes[$0] == lf }
                    XCTAssertEqual(find(lf, in: bytes, from: from), expected, "length \(length), position \(position), from \(from)")
                }
            }
        }
    }

    func testEveryByteValueIsFound() {
        for value in 0...255 {
            var bytes = [UInt8](repeating: UInt8(255 - value / 2), count: 19)
            if bytes[0] == UInt8(value) { bytes = [UInt8](repeating: UInt8((value + 1) % 256), count: 19) }
            bytes[13] = UInt8(value)
            XCTAssertEqual(find(UInt8(value), in: bytes), 13, "byte \(value)")
        }
    }

    func testEmptyAndOutOfRangeStart() {
        XCTAssertNil(find(10, in: []))
        XCTAssertNil(find(10, in: [10, 10], from: 2))
        XCTAssertNil(find(10, in: [10, 10], from: 5))
    }

    func testEqualsIgnoringCase() {
        XCTAssertTrue(ASCII.equalsIgnoringCase("\\DELETED".utf8, "\\Deleted".utf8))
        XCTAssertTrue(ASCII.equalsIgnoringCase("$pop3deleted".utf8, "$POP3Deleted".utf8))
        XCTAssertFalse(ASCII.equalsIgnoringCase("$POP3Deleted2".utf8, "$POP3Deleted".utf8))
        XCTAssertFalse(ASCII.equalsIgnoringCase("[".utf8, "{".utf8), "only letters fold")
    }
}
