import Gateway
import XCTest

/// `retention.on_delete: flag` needs a backend that stores the retention keyword: SELECT's
/// PERMANENTFLAGS must allow new keywords (`\*`) or list the keyword, or the login fails
/// `[SYS/PERM]` instead of a QUIT that answers +OK while the "deleted" mail stays listed.
final class GatewaySessionPermanentFlagsTests: XCTestCase {
    private func select(permanentFlags: String?) -> String {
        let flagsLine = permanentFlags.map { "* OK [PERMANENTFLAGS (\($0))] Flags permitted.\r\n" } ?? ""
        return "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n" + flagsLine
            + "* 1 EXISTS\r\n* OK [UIDVALIDITY 7] UIDs valid\r\nP2 OK [READ-WRITE] Select completed.\r\n"
    }

    private func logIn(permanentFlags: String?, onDelete: RetentionPolicy.OnDelete = .flag) -> (SessionTranscript, String) {
        var t = SessionTranscript(policy: SessionPolicy(retention: RetentionPolicy(onDelete: onDelete, moveTo: "Trash")))
        _ = t.takeClient()
        t.reachBackend()
        _ = t.takeBackend()
        _ = t.takeActions()
        t.backend("P1 " + SessionTranscript.loggedIn + select(permanentFlags: permanentFlags)
            + "* 1 FETCH (UID 1 RFC822.SIZE 5 FLAGS ())\r\nP3 OK Fetch completed.\r\n")
        return (t, t.takeClient())
    }

    func testKeywordsNotStoredFailTheLogin() {
        var (t, answer) = logIn(permanentFlags: "\\Answered \\Flagged \\Deleted \\Seen \\Draft")
        XCTAssertEqual(answer, "-ERR [SYS/PERM] Backend cannot keep the deletion mark.\r\n")
        XCTAssertEqual(t.takeBackend(), "Z LOGOUT\r\n")
        let logs = t.takeActions().compactMap { action -> String? in
            if case .log(let record) = action { return record.message } else { return nil }
        }
        XCTAssertTrue(logs.contains { $0.hasPrefix("login failed: retention.on_delete flag needs the keyword $POP3Deleted") }, "\(logs)")
    }

    func testNewKeywordsAllowedOrTheKeywordListedOrNoPermanentFlagsLogIn() {
        for flags in ["\\Deleted \\Seen \\*", "\\Deleted \\Seen $pop3deleted", nil] {
            let (_, answer) = logIn(permanentFlags: flags)
            XCTAssertEqual(answer, "+OK Logged in.\r\n", "PERMANENTFLAGS \(flags ?? "absent")")
        }
    }

    func testOtherPoliciesDoNotNeedTheKeyword() {
        for policy in [RetentionPolicy.OnDelete.keep, .expunge, .move] {
            let (_, answer) = logIn(permanentFlags: "\\Deleted \\Seen", onDelete: policy)
            XCTAssertEqual(answer, "+OK Logged in.\r\n", "\(policy)")
        }
    }
}
