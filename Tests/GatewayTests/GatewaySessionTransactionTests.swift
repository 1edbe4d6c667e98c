import Gateway
import XCTest

final class GatewaySessionTransactionTests: XCTestCase {
    func testSnapshotHidesDeletedAndRetentionKeyword() {
        var t = SessionTranscript()
        t.logIn(messages: [(3, 100, "\\Seen"), (5, 200, "\\Deleted"), (7, 300, "$POP3Deleted \\Seen"), (9, 400, "")])
        t.client("STAT\r\nLIST\r\nUIDL\r\nLIST 2\r\nUIDL 3\r\n")
        XCTAssertEqual(t.takeClient(), """
            +OK 2 500\r
            +OK 2 messages:\r
            1 100\r
            2 400\r
            .\r
            +OK\r
            1 0000000367481fe0\r
            2 0000000967481fe0\r
            .\r
            +OK 2 400\r
            -ERR There's no message 3.\r

            """)
    }

    func testRetrStreamsDotStuffedWithoutWaitingForTheWholeLiteral() {
        var t = SessionTranscript()
        t.logIn(messages: [(4, 22, "")])
        t.client("RETR 1\r\n")
        XCTAssertEqual(t.takeBackend(), "P4 UID FETCH 4 (BODY.PEEK[])\r\n")
        t.backend("* 1 FETCH (UID 4 BODY[] {19}\r\nA: b\r\n\r\n.")
        XCTAssertEqual(t.takeClient(), "+OK 22 octets\r\nA: b\r\n\r\n..", "bytes go out as they arrive")
        t.backend("\r\n.x\r\nlast)\r\nP4 OK Fetch completed.\r\n")
        XCTAssertEqual(t.takeClient(), "\r\n..x\r\nlast\r\n.\r\n")
    }

    /// pymap puts the UID after the body (RFC 3501 leaves the order to the server): the body is relayed
    /// as it comes and confirmed by the UID that follows.
    func testRetrAndTopWithTheUIDAfterTheBody() {
        var t = SessionTranscript()
        t.logIn(messages: [(4, 14, "")])
        t.client("RETR 1\r\n")
        _ = t.takeBackend()
        t.backend("* 1 FETCH (BODY[] {14}\r\nA: b\r\n\r\n.dot\r\n UID 4)\r\nP4 OK FETCH completed.\r\n")
        XCTAssertEqual(t.takeClient(), "+OK 14 octets\r\nA: b\r\n\r\n..dot\r\n.\r\n")
        t.client("TOP 1 0\r\n")
        _ = t.takeBackend()
        t.backend("* 1 FETCH (BODY[] {11}\r\nA: b\r\n\r\nx\r\n UID 4)\r\nP5 OK done\r\n")
        XCTAssertEqual(t.takeClient(), "+OK\r\nA: b\r\n\r\n.\r\n")
        XCTAssertNil(t.ended)
    }

    func testABodyBeforeAnotherMessagesUIDCutsTheAnswerOff() {
        for trailer in [" UID 5)\r\n", ")\r\n"] {
            var t = SessionTranscript()
            t.logIn(messages: [(4, 6, "")])
            t.client("RETR 1\r\n")
            _ = t.takeBackend()
            t.backend("* 1 FETCH (BODY[] {6}\r\nA: b\r\n" + trailer)
            XCTAssertEqual(t.takeClient(), "+OK 6 octets\r\nA: b\r\n", "no terminating dot: the client discards it")
            XCTAssertEqual(t.ended?.ending, .backendError, trailer)
        }
    }

    func testRetrOfAMessageExpungedMeanwhile() {
        var t = SessionTranscript()
        t.logIn(messages: [(4, 22, "")])
        t.client("RETR 1\r\nNOOP\r\n")
        t.backend("* 1 EXPUNGE\r\nP4 OK Fetch completed.\r\n")
        XCTAssertEqual(t.takeClient(), "-ERR Message 1 was removed by another client.\r\n+OK\r\n")
    }

    func testRetrAndTopOfAMessageWhoseExpungeIsNotYetAnnounced() {
        var t = SessionTranscript()
        t.logIn(messages: [(4, 22, "")])
        t.client("RETR 1\r\nTOP 1 0\r\n")
        t.backend("P4 NO [EXPUNGEISSUED] Some of the requested messages no longer exist (0.001 + 0.000 secs).\r\n")
        t.backend("P5 NO [EXPUNGEISSUED] Some of the requested messages no longer exist.\r\n")
        XCTAssertEqual(t.takeClient(), "-ERR Message 1 was removed by another client.\r\n-ERR Message 1 was removed by another client.\r\n")
        XCTAssertNil(t.ended)
    }

    func testPipelinedCommandsAreAnsweredInOrder() {
        var t = SessionTranscript()
        t.logIn(messages: [(1, 5, ""), (2, 5, "")])
        t.client("STAT\r\nRETR 1\r\nSTAT\r\nDELE 2\r\nSTAT\r\n")
        XCTAssertEqual(t.takeClient(), "+OK 2 10\r\n", "the rest waits for RETR")
        t.backend("* 1 FETCH (UID 1 BODY[] {5}\r\nhi\r\n.)\r\nP4 OK done\r\n")
        XCTAssertEqual(t.takeClient(), "+OK 5 octets\r\nhi\r\n..\r\n.\r\n+OK 2 10\r\n+OK Marked to be deleted.\r\n+OK 1 5\r\n")
    }

    func testPipelinedInputIsBoundedWhileACommandWaits() {
        var t = SessionTranscript()
        t.logIn(messages: [(1, 5, "")])
        t.client("RETR 1\r\n")
        let noops = String(repeating: "NOOP\r\n", count: 20_000)  // 120 KB behind the RETR
        t.client(noops)
        XCTAssertTrue(t.contains(.pauseClientInput), "stop reading above limits.maxBufferedInput")
        XCTAssertFalse(t.contains(.resumeClientInput))
        _ = t.takeActions()
        t.backend("* 1 FETCH (UID 1 BODY[] {5}\r\nhi\r\n.)\r\nP4 OK done\r\n")
        XCTAssertTrue(t.contains(.resumeClientInput))
        XCTAssertEqual(t.takeClient().components(separatedBy: "+OK\r\n").count - 1, 20_000, "every NOOP answered")
    }

    func testDeleHidesAndRsetRestores() {
        var t = SessionTranscript()
        t.logIn(messages: [(1, 5, ""), (2, 6, "")])
        t.client("DELE 1\r\nRETR 1\r\nDELE 1\r\nLIST\r\nRSET\r\nLIST 1\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Marked to be deleted.\r\n-ERR Message 1 is deleted.\r\n-ERR Message 1 is deleted.\r\n+OK 1 messages:\r\n2 6\r\n.\r\n+OK\r\n+OK 1 5\r\n")
        XCTAssertEqual(t.takeBackend(), "")
    }

    func testTopFetchesInChunksAndStopsEarly() {
        var settings = GatewaySettings()
        settings.limits.topChunkSize = 8
        var t = SessionTranscript(settings: settings)
        t.logIn(messages: [(1, 1000, "")])
        t.client("TOP 1 1\r\n")
        XCTAssertEqual(t.takeBackend(), "P4 UID FETCH 1 (BODY.PEEK[]<0.8>)\r\n")
        t.backend("* 1 FETCH (UID 1 BODY[]<0> {8}\r\nA: b\r\n\r\n)\r\nP4 OK done\r\n")
        XCTAssertEqual(t.takeBackend(), "P5 UID FETCH 1 (BODY.PEEK[]<8.8>)\r\n")
        t.backend("* 1 FETCH (UID 1 BODY[]<8> {8}\r\n.one\r\ntw)\r\nP5 OK done\r\n")
        XCTAssertEqual(t.takeBackend(), "", "one body line is enough: no third fetch")
        XCTAssertEqual(t.takeClient(), "+OK\r\nA: b\r\n\r\n..one\r\n.\r\n")
    }

    func testAClientThatStopsReadingMidRetrIsClosedAfterTheIdleTimeout() {
        var t = SessionTranscript()
        t.logIn(messages: [(1, 50, ""), (2, 5, "")])
        t.client("DELE 2\r\nRETR 1\r\n")
        t.backend("* 1 FETCH (UID 1 BODY[] {50}\r\npartial")
        t.send(.clientOutputThrottled(true))
        _ = t.takeActions()
        // The backend is quiet because the driver stopped reading it: its timer is not the judge.
        t.send(.timerFired(.backend))
        XCTAssertTrue(t.contains(.scheduleTimer(.backend, after: .seconds(30))))
        XCTAssertNil(t.ended)
        // Progress: the client drained its buffer, so the idle period starts again.
        t.send(.clientOutputThrottled(false))
        XCTAssertTrue(t.contains(.scheduleTimer(.idle, after: .seconds(600))))
        t.send(.clientOutputThrottled(true))
        _ = t.takeBackend()
        t.send(.timerFired(.idle))
        XCTAssertEqual(t.ended?.ending, .timeout)
        XCTAssertEqual(t.takeBackend(), "Z LOGOUT\r\n", "nothing applied")
    }

    func testBackendDropMidRetrClosesTheClientWithoutApplyingAnything() {
        var t = SessionTranscript()
        t.logIn(messages: [(1, 50, ""), (2, 5, "")])
        t.client("DELE 2\r\nRETR 1\r\n")
        t.backend("* 1 FETCH (UID 1 BODY[] {50}\r\npartial")
        _ = t.takeBackend()
        t.send(.backendClosed(reason: nil))
        XCTAssertFalse(t.takeClient().contains("-ERR"), "no -ERR inside a multi-line answer")
        XCTAssertTrue(t.contains(.closeClient))
        XCTAssertEqual(t.takeBackend(), "")
        XCTAssertEqual(t.ended?.ending, .backendError)
    }
}
