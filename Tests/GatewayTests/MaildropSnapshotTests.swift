import Gateway
import IMAP
import XCTest

final class MaildropSnapshotTests: XCTestCase {
    private func summary(_ uid: UInt32, _ size: UInt64, _ flags: [String] = []) -> FetchedSummary {
        FetchedSummary(uid: UID(uid), size: size, flags: flags)
    }

    private func uids(_ drop: Maildrop) -> [UInt32] { drop.entries.map(\.uid.rawValue) }

    func testInUIDOrderIsTakenAsIs() {
        let drop = Maildrop.snapshot([summary(3, 30), summary(7, 70), summary(9, 90)], uidValidity: UIDValidity(5), hidden: Maildrop.Hidden())
        XCTAssertEqual(uids(drop), [3, 7, 9])
        XCTAssertEqual(drop.entries.map(\.size), [30, 70, 90])
    }

    /// A backend that answers out of order or repeats a UID: sorted by UID, each UID once (the first).
    func testOutOfOrderAndRepeatedUIDsAreSortedAndDeduplicated() {
        let drop = Maildrop.snapshot([summary(9, 90), summary(3, 30), summary(9, 91), summary(7, 70), summary(3, 31)],
                                     uidValidity: UIDValidity(5), hidden: Maildrop.Hidden())
        XCTAssertEqual(uids(drop), [3, 7, 9])
        XCTAssertEqual(drop.entries.map(\.size), [30, 70, 90])
    }

    func testDeletedAndTheKeywordHideInAnyCase() {
        let fetched = [summary(1, 1, ["\\DELETED"]), summary(2, 2, ["\\Seen"]), summary(3, 3, ["$pop3deleted"]),
                       summary(4, 4, ["$POP3Deleted2"]), summary(5, 5, ["\\deleted", "\\Seen"])]
        XCTAssertEqual(uids(Maildrop.snapshot(fetched, uidValidity: UIDValidity(5), hidden: Maildrop.Hidden(keywords: ["$POP3Deleted"]))), [2, 4])
        XCTAssertEqual(uids(Maildrop.snapshot(fetched, uidValidity: UIDValidity(5), hidden: Maildrop.Hidden())), [2, 3, 4],
                       "without a retention keyword only \\Deleted hides")
    }
}
