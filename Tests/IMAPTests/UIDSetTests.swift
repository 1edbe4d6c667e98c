import IMAP
import XCTest

final class UIDSetTests: XCTestCase {
    private func set(_ values: [UInt32]) -> UIDSet { UIDSet(values.map(UID.init)) }

    func testEmpty() {
        let empty = set([])
        XCTAssertTrue(empty.isEmpty)
        XCTAssertEqual(empty.count, 0)
        XCTAssertEqual(empty.description, "")
    }

    func testSingle() {
        XCTAssertEqual(set([5]).description, "5")
        XCTAssertEqual(set([5]).count, 1)
        XCTAssertFalse(set([5]).isEmpty)
    }

    func testSortedDeduplicatedMerged() {
        let uids = set([10, 3, 1, 2, 2, 7, 9, 3])
        XCTAssertEqual(uids.description, "1:3,7,9:10")
        XCTAssertEqual(uids.count, 6)
        XCTAssertEqual("\(uids)", "1:3,7,9:10")
    }

    func testNoMergeAcrossGaps() {
        XCTAssertEqual(set([3, 5]).description, "3,5")
        XCTAssertEqual(set([1, 2]).description, "1:2")
        XCTAssertEqual(set([4, 5, 6, 8, 9, 11]).description, "4:6,8:9,11")
    }

    func testExtremes() {
        XCTAssertEqual(set([UInt32.max, UInt32.max - 1, UInt32.max]).description, "4294967294:4294967295")
        XCTAssertEqual(set([1, UInt32.max]).description, "1,4294967295")
    }

    func testEqualityIgnoresInputOrder() {
        XCTAssertEqual(set([1, 2, 3]), set([3, 2, 1, 1]))
        XCTAssertNotEqual(set([1, 2, 3]), set([1, 3]))
    }

    func testRangeAndAll() {
        XCTAssertEqual(UIDSet(UID(4)...UID(9)).description, "4:9")
        XCTAssertEqual(UIDSet(UID(4)...UID(9)).count, 6)
        XCTAssertEqual(UIDSet.all.description, "1:*")
        XCTAssertFalse(UIDSet.all.isEmpty)
        XCTAssertNotEqual(UIDSet.all, UIDSet(UID(1)...UID(UInt32.max)))
    }

    func testContains() {
        let uids = set([1, 2, 3, 7, 9, 10])
        for value: UInt32 in [1, 2, 3, 7, 9, 10] { XCTAssertTrue(uids.contains(UID(value)), "\(value)") }
        for value: UInt32 in [0, 4, 6, 8, 11, 1000] { XCTAssertFalse(uids.contains(UID(value)), "\(value)") }
        XCTAssertTrue(UIDSet.all.contains(UID(123456)))
    }

    func testLargeSetIsCompact() {
        let uids = UIDSet((1...100_000).map { UID(UInt32($0)) }.reversed())
        XCTAssertEqual(uids.description, "1:100000")
        XCTAssertEqual(uids.count, 100_000)
    }
}
