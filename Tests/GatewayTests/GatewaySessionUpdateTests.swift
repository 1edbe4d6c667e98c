import Gateway
import XCTest

final class GatewaySessionUpdateTests: XCTestCase {
    func session(_ policy: RetentionPolicy.OnDelete, onRetrieve: RetentionPolicy.OnRetrieve = .seen) -> SessionTranscript {
        var t = SessionTranscript(policy: SessionPolicy(retention: RetentionPolicy(onRetrieve: onRetrieve, onDelete: policy, moveTo: "Trash")))
        t.logIn(messages: [(1, 5, ""), (2, 5, ""), (3, 5, "")])
        t.client("RETR 1\r\n")
        t.backend("* 1 FETCH (UID 1 BODY[] {4}\r\nhi\r\n)\r\nP4 OK done\r\n")
        t.client("TOP 3 0\r\n")
        t.backend("* 3 FETCH (UID 3 BODY[] {4}\r\nhi\r\n)\r\nP5 OK done\r\n")
        t.client("DELE 2\r\nDELE 1\r\n")
        _ = t.takeClient()
        _ = t.takeBackend()
        return t
    }

    func testFlagPolicy() {
        var t = session(.flag)
        t.client("QUIT\r\n")
        XCTAssertEqual(t.takeBackend(), "P6 UID STORE 1 +FLAGS.SILENT (\\Seen)\r\n")
        t.backend("P6 OK Store completed.\r\n")
        XCTAssertEqual(t.takeBackend(), "P7 UID STORE 1:2 +FLAGS.SILENT ($POP3Deleted \\Seen)\r\n")
        XCTAssertEqual(t.takeClient(), "", "+OK only when applied")
        t.backend("P7 OK Store completed.\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Logging out.\r\n")
        XCTAssertEqual(t.takeBackend(), "Z LOGOUT\r\n")
        XCTAssertEqual(t.ended?.retention, .flagged)
    }

    func testExpungePolicyExpungesExactlyTheDeletedUIDs() {
        var t = session(.expunge, onRetrieve: .none)
        t.client("QUIT\r\n")
        XCTAssertEqual(t.takeBackend(), "P6 UID STORE 1:2 +FLAGS.SILENT (\\Deleted)\r\n")
        t.backend("P6 OK Store completed.\r\n")
        XCTAssertEqual(t.takeBackend(), "P7 UID EXPUNGE 1:2\r\n")
        t.backend("* 1 EXPUNGE\r\n* 1 EXPUNGE\r\nP7 OK Expunge completed.\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Logging out.\r\n")
    }

    func testMovePolicyCreatesTheFolderOnTryCreate() {
        var t = session(.move, onRetrieve: .none)
        t.client("QUIT\r\n")
        XCTAssertEqual(t.takeBackend(), "P6 UID STORE 1:2 +FLAGS.SILENT (\\Seen)\r\n")
        t.backend("P6 OK Store completed.\r\n")
        XCTAssertEqual(t.takeBackend(), "P7 UID MOVE 1:2 \"Trash\"\r\n")
        t.backend("P7 NO [TRYCREATE] Mailbox doesn't exist: Trash\r\n")
        XCTAssertEqual(t.takeBackend(), "P8 CREATE \"Trash\"\r\n")
        t.backend("P8 OK Create completed.\r\n")
        XCTAssertEqual(t.takeBackend(), "P9 UID MOVE 1:2 \"Trash\"\r\n")
        t.backend("* OK [COPYUID 1 1:2 1:2] Moved UIDs.\r\n* 1 EXPUNGE\r\n* 1 EXPUNGE\r\nP9 OK Move completed.\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Logging out.\r\n")
    }

    func testKeepPolicyOnlySetsSeen() {
        var t = session(.keep, onRetrieve: .none)
        t.client("QUIT\r\n")
        XCTAssertEqual(t.takeBackend(), "P6 UID STORE 1:2 +FLAGS.SILENT (\\Seen)\r\n")
        t.backend("P6 OK\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Logging out.\r\n")
    }

    func testFailureDuringQuitIsNotReportedAsDone() {
        var t = session(.expunge, onRetrieve: .none)
        t.client("QUIT\r\n")
        t.backend("P6 OK Store completed.\r\n")
        _ = t.takeBackend()
        t.send(.backendClosed(reason: "reset"))
        XCTAssertEqual(t.takeClient(), "-ERR [SYS/TEMP] Backend connection lost; some deleted messages were not removed.\r\n")
        XCTAssertEqual(t.ended?.retention, .failed)
    }

    func testClientGoneAppliesNothing() {
        var t = session(.expunge)
        t.send(.clientClosed)
        XCTAssertEqual(t.takeBackend(), "Z LOGOUT\r\n")
        XCTAssertEqual(t.ended?.ending, .clientGone)
        XCTAssertEqual(t.ended?.deleted, 2, "the summary counts DELEs even when nothing was applied")
        XCTAssertEqual(t.ended?.retention, RetentionOutcome.none)
    }

    func testWithoutUIDPLUSExpungeFallsBackToMoveAndNeverSendsPlainExpunge() {
        var t = SessionTranscript(policy: SessionPolicy(retention: RetentionPolicy(onRetrieve: .none, onDelete: .expunge, moveTo: "Trash")))
        t.logIn(messages: [(1, 5, "")], loginResponse: "OK [CAPABILITY IMAP4rev1 MOVE] Logged in\r\n")
        XCTAssertTrue(t.actions.contains { if case .log(let r) = $0 { r.message.contains("falls back to move") } else { false } })
        t.client("DELE 1\r\nQUIT\r\n")
        _ = t.takeClient()
        XCTAssertEqual(t.takeBackend(), "P4 UID STORE 1 +FLAGS.SILENT (\\Seen)\r\n")
        t.backend("P4 OK\r\n")
        XCTAssertEqual(t.takeBackend(), "P5 UID MOVE 1 \"Trash\"\r\n")
    }

    func testWithoutUIDPLUSOrMoveLoginFails() {
        var t = SessionTranscript(policy: SessionPolicy(retention: RetentionPolicy(onDelete: .expunge)))
        _ = t.takeClient()
        t.reachBackend()
        _ = t.takeBackend()
        t.backend("P1 OK [CAPABILITY IMAP4rev1] Logged in\r\n")
        XCTAssertEqual(t.takeBackend(), "Z LOGOUT\r\n")
        XCTAssertTrue(t.takeClient().hasPrefix("-ERR [SYS/PERM]"))
    }

    func testDrainRefusesTheNextCommandWithoutApplyingAnything() {
        var t = session(.expunge)
        t.send(.shutdownRequested)
        XCTAssertEqual(t.takeClient(), "", "an idle session waits for its next command")
        t.client("STAT\r\n")
        XCTAssertEqual(t.takeClient(), "-ERR [SYS/TEMP] Server shutting down.\r\n")
        XCTAssertEqual(t.takeBackend(), "Z LOGOUT\r\n")
        XCTAssertEqual(t.ended?.ending, .shutdown)
    }

    func testDrainStillHonoursQuit() {
        var t = session(.keep, onRetrieve: .none)
        t.send(.shutdownRequested)
        t.client("QUIT\r\n")
        XCTAssertEqual(t.takeBackend(), "P6 UID STORE 1:2 +FLAGS.SILENT (\\Seen)\r\n")
        t.backend("P6 OK\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Logging out.\r\n")
    }

    func testDrainExpiryClosesMidCommandWithoutAnswer() {
        var t = session(.expunge)
        t.client("RETR 3\r\n")
        t.backend("* 3 FETCH (UID 3 BODY[] {4}\r\nh")
        t.send(.shutdownRequested)
        _ = t.takeClient()
        t.send(.drainExpired)
        XCTAssertEqual(t.takeClient(), "")
        XCTAssertTrue(t.contains(.closeClient))
        XCTAssertFalse(t.takeBackend().contains("STORE"))
    }

    func testAHalfClosedClientStillGetsItsPipelinedCommandsCarriedOut() {
        // C: RETR 1 / DELE 1 / QUIT, then shutdown(SHUT_WR): the client still reads the answers.
        var t = SessionTranscript(policy: SessionPolicy(retention: RetentionPolicy(onRetrieve: .none, onDelete: .keep)))
        t.logIn(messages: [(1, 4, "")])
        t.client("RETR 1\r\nDELE 1\r\nQUIT\r\n")
        XCTAssertEqual(t.takeBackend(), "P4 UID FETCH 1 (BODY.PEEK[])\r\n")
        t.send(.clientInputEnded)
        XCTAssertNil(t.ended, "the RETR is still waiting for the backend")
        t.backend("* 1 FETCH (UID 1 BODY[] {4}\r\nhi\r\n)\r\nP4 OK done\r\n")
        XCTAssertEqual(t.takeBackend(), "P5 UID STORE 1 +FLAGS.SILENT (\\Seen)\r\n")
        t.backend("P5 OK\r\n")
        XCTAssertEqual(t.takeClient(), "+OK 4 octets\r\nhi\r\n.\r\n+OK Marked to be deleted.\r\n+OK Logging out.\r\n")
        XCTAssertEqual(t.ended?.ending, .quit)
    }

    func testAHalfClosedClientWithoutQuitEndsUnapplied() {
        var t = session(.expunge)
        t.send(.clientInputEnded)
        XCTAssertEqual(t.ended?.ending, .clientGone)
        XCTAssertEqual(t.takeBackend(), "Z LOGOUT\r\n")
    }
}
