import Gateway
import IMAP
import POP3
import Wire
import XCTest

/// What a hostile client or backend can and cannot make the machine do: bounded output, deadlines,
/// the per-address penalty, the forwarded client address, and the fixes found by reading the code.
final class GatewaySessionFrontDoorTests: XCTestCase {
    // MARK: Output a client never reads

    /// 64 KiB of pipelined CAPA from a client that never reads: the machine generates at most one chunk
    /// (plus the answer that crossed it) and then waits to be told the client took it.
    func testPipelinedCommandsWithoutReadingGenerateOneChunkAtATime() {
        var t = SessionTranscript()
        t.clientReads = false
        _ = t.takeClient()
        t.client(String(repeating: "CAPA\r\n", count: 10_000))
        let first = t.takeClient()
        let chunk = GatewaySettings.Limits().outputChunkSize
        XCTAssertGreaterThanOrEqual(first.utf8.count, chunk)
        XCTAssertLessThan(first.utf8.count, chunk + 512, "one chunk and at most one answer more")
        XCTAssertEqual(t.pendingWritableRequests, 1)
        // The client reads: the next chunk, and so on until all 10,000 are answered.
        var total = first.components(separatedBy: "+OK Capability list follows\r\n").count - 1
        while t.pendingWritableRequests > 0 {
            t.clientTookOutput()
            total += t.takeClient().components(separatedBy: "+OK Capability list follows\r\n").count - 1
        }
        XCTAssertEqual(total, 10_000)
    }

    /// The driver reports a full client queue: the machine stops reading both sides, and resumes both
    /// when the queue has drained.
    func testThrottledClientOutputPausesClientAndBackendReading() {
        var t = SessionTranscript()
        t.logIn(messages: [(1, 5, "")])
        _ = t.takeActions()
        t.send(.clientOutputThrottled(true))
        XCTAssertEqual(t.takeActions(), [.pauseClientInput, .pauseBackendInput])
        t.send(.clientOutputThrottled(false))
        let actions = t.takeActions()
        XCTAssertTrue(actions.contains(.resumeClientInput))
        XCTAssertTrue(actions.contains(.resumeBackendInput))
    }

    /// UIDL of 20,000 messages is generated in chunks as the client takes them; a pipelined command
    /// behind it is answered after the terminating line, and the bytes equal the one-piece answer.
    func testLargeUIDLIsGeneratedInChunksAndStaysInOrder() {
        let messages = (1...20_000).map { (UInt32($0), UInt64(100 + $0), "") }
        var t = SessionTranscript()
        t.logIn(messages: messages)
        t.clientReads = false
        t.client("UIDL\r\nNOOP\r\n")
        var received = t.takeClient()
        XCTAssertLessThan(received.utf8.count, 2 * GatewaySettings.Limits().outputChunkSize)
        XCTAssertFalse(received.hasSuffix(".\r\n+OK\r\n"))
        var rounds = 0
        while t.pendingWritableRequests > 0 {
            t.clientTookOutput()
            received += t.takeClient()
            rounds += 1
        }
        XCTAssertGreaterThan(rounds, 3)
        var expected = "+OK\r\n"
        for (number, message) in messages.enumerated() {
            expected += "\(number + 1) " + String(format8Hex(message.0)) + "67481fe0\r\n"
        }
        expected += ".\r\n+OK\r\n"
        XCTAssertTrue(received == expected, "UIDL differs (\(received.utf8.count) vs \(expected.utf8.count) bytes)")
    }

    /// Hundreds of pipelined LIST/UIDL in one packet are answered in order without one stack frame per
    /// command (this crashed the daemon with SIGSEGV before the listing stopped calling back into the
    /// command loop).
    func testHundredsOfPipelinedListingsAreAnsweredWithoutRecursion() {
        let messages = (1...2_000).map { (UInt32($0), UInt64(100), "") }
        var t = SessionTranscript()
        t.logIn(messages: messages)
        t.client(String(repeating: "UIDL\r\nLIST\r\n", count: 1_000) + "NOOP\r\n")
        let received = t.takeClient()
        XCTAssertEqual(received.components(separatedBy: "+OK 2000 messages:\r\n").count - 1, 1_000)
        XCTAssertEqual(received.components(separatedBy: ".\r\n").count - 1, 2_000)
        XCTAssertTrue(received.hasSuffix(".\r\n+OK\r\n"))
    }

    // MARK: Deadlines

    func testLoginDeadlineClosesAClientThatHasNotLoggedIn() {
        var t = SessionTranscript(settings: GatewaySettings(loginTimeout: .seconds(5)))
        XCTAssertEqual(t.session.accepted(), [.scheduleTimer(.login, after: .seconds(5))])
        _ = t.takeClient()
        t.client("USER alice\r\n")
        _ = t.takeClient()
        t.send(.timerFired(.login))
        XCTAssertEqual(t.takeClient(), "-ERR [SYS/TEMP] Login timed out.\r\n")
        XCTAssertEqual(t.ended?.ending, .loginTimeout)
        XCTAssertTrue(t.contains(.closeClient))
    }

    func testLoginDeadlineDuringTheHandshakeClosesQuietlyAndIsCancelledByALogin() {
        var quiet = SessionTranscript(listener: ListenerContext(tlsActive: false, startTLSAvailable: true, plaintextAuthAllowed: false))
        _ = quiet.takeClient()
        quiet.client("STLS\r\n")
        _ = quiet.takeClient()
        quiet.send(.timerFired(.login))
        XCTAssertEqual(quiet.takeClient(), "", "nothing can be said in the middle of a TLS handshake")
        XCTAssertEqual(quiet.ended?.ending, .loginTimeout)

        var t = SessionTranscript()
        t.logIn(messages: [(1, 5, "")])
        XCTAssertTrue(t.contains(.cancelTimer(.login)))
        _ = t.takeActions()
        t.send(.timerFired(.login))
        XCTAssertEqual(t.takeActions(), [], "a logged-in session ignores a late login timer")
    }

    // MARK: The per-address penalty

    /// The penalty is waited out before the backend is contacted; a wrong password is recorded, a
    /// right one clears the address.
    func testAuthPenaltyIsWaitedBeforeConnectingAndOutcomesAreRecorded() {
        var t = SessionTranscript()
        t.penalty = .seconds(4)
        _ = t.takeClient()
        t.client("USER alice\r\nPASS wrong\r\n")
        XCTAssertTrue(t.contains(.lookUpAuthPenalty))
        XCTAssertTrue(t.contains(.scheduleTimer(.authPenalty, after: .seconds(4))))
        XCTAssertFalse(t.connectsBackend, "the backend is not asked during the penalty")
        _ = t.takeActions()
        t.send(.timerFired(.authPenalty))
        XCTAssertTrue(t.connectsBackend)
        t.send(.backendConnected(encrypted: true))
        t.backend(SessionTranscript.greeting)
        _ = t.takeBackend()
        t.backend("P1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
        XCTAssertTrue(t.contains(.recordAuthFailure))
        XCTAssertFalse(t.contains(.recordAuthSuccess))

        var ok = SessionTranscript()
        ok.logIn(messages: [])
        XCTAssertTrue(ok.contains(.recordAuthSuccess))
        XCTAssertFalse(ok.contains(.recordAuthFailure))
    }

    /// A backend that is down is no reason to penalise the client.
    func testBackendFailuresAreNotRecordedAsAuthFailures() {
        var t = SessionTranscript()
        _ = t.takeClient()
        t.client("USER alice\r\nPASS secret\r\n")
        t.send(.backendConnectFailed(reason: "refused"))
        XCTAssertEqual(t.takeClient(), "+OK Send your password.\r\n-ERR [SYS/TEMP] Backend server unavailable, try again later.\r\n")
        XCTAssertFalse(t.contains(.recordAuthFailure))
    }

    // MARK: The client address goes to the backend

    func testIDWithTheClientAddressGoesAheadOfTheCredentialsInOneFlight() {
        let client = ClientContext(address: "203.0.113.7", port: 50812, localAddress: "192.0.2.1", localPort: 995, sessionID: "abc-1")
        var t = SessionTranscript(client: client)
        _ = t.takeClient()
        t.client("USER alice\r\nPASS secret\r\n")
        t.send(.backendConnected(encrypted: true))
        t.backend(SessionTranscript.greeting)
        let payload = String(decoding: Base64.encode(Array("\0alice\0secret".utf8)), as: UTF8.self)
        XCTAssertEqual(t.takeBackend(), """
            P1 ID ("x-originating-ip" "203.0.113.7" "x-originating-port" "50812" "x-connected-ip" "192.0.2.1" "x-connected-port" "995" "x-session-id" "abc-1")\r
            P2 AUTHENTICATE PLAIN \(payload)\r
            P3 SELECT "INBOX"\r
            P4 UID FETCH 1:* (UID RFC822.SIZE FLAGS)\r

            """)
        // Dovecot answers the ID first; whatever it says, the login goes on.
        t.backend("* ID (\"name\" \"Dovecot\")\r\nP1 OK ID completed.\r\n")
        t.backend("P2 " + SessionTranscript.loggedIn)
        t.backend(SessionTranscript.selected(exists: 0, tag: "P3") + "P4 OK Fetch completed.\r\n")
        XCTAssertEqual(t.takeBackend(), "")
        XCTAssertTrue(t.takeClient().hasSuffix("+OK Logged in.\r\n"))
    }

    func testNoIDWhenTurnedOffOrNotAdvertised() {
        let client = ClientContext(address: "203.0.113.7", port: 50812)
        var off = SessionTranscript(client: client, backend: BackendTarget(host: "imap.test", port: 993, forwardClient: false))
        _ = off.takeClient()
        off.client("USER alice\r\nPASS secret\r\n")
        off.send(.backendConnected(encrypted: true))
        off.backend(SessionTranscript.greeting)
        XCTAssertTrue(off.takeBackend().hasPrefix("P1 AUTHENTICATE PLAIN "))

        var plain = SessionTranscript(client: client)
        _ = plain.takeClient()
        plain.client("USER alice\r\nPASS secret\r\n")
        plain.send(.backendConnected(encrypted: true))
        plain.backend("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready.\r\n")
        XCTAssertTrue(plain.takeBackend().hasPrefix("P1 AUTHENTICATE PLAIN "))
    }

    // MARK: A hostile backend

    func testRFC822SizeNear2To64FailsTheLoginInsteadOfTrapping() {
        for size in ["18446744073709551615", "9223372036854775807", "1099511627777"] {
            var t = SessionTranscript()
            snapshotAnswer(&t, "* 1 FETCH (UID 1 RFC822.SIZE \(size) FLAGS ())\r\nP3 OK done\r\n")
            XCTAssertTrue(t.takeClient().hasPrefix("-ERR [SYS/TEMP] "), size)
            XCTAssertNil(t.ended, "the client may try again later")
        }
    }

    func testStatSumSaturatesInsteadOfTrapping() {
        var drop = Maildrop(entries: [.init(uid: UID(1), size: .max - 1), .init(uid: UID(2), size: 5)], uidValidity: UIDValidity(1))
        XCTAssertEqual(drop.visibleSize, .max)
        drop.markDeleted(MessageNumber(2))
        XCTAssertEqual(drop.visibleSize, .max - 1)
    }

    func testMoreFetchResponsesThanMaxMessagesFailTheLogin() {
        var limits = GatewaySettings.Limits()
        limits.maxMessages = 100
        var t = SessionTranscript(settings: GatewaySettings(limits: limits))
        var flood = ""
        for uid in 1...1_000 { flood += "* \(uid) FETCH (UID \(uid) RFC822.SIZE 10 FLAGS ())\r\n" }
        snapshotAnswer(&t, flood, exists: 5)
        XCTAssertEqual(t.takeClient(), "-ERR [SYS/TEMP] Backend server unavailable, try again later.\r\n")
        XCTAssertTrue(t.contains(.closeBackend))
    }

    func testExistsAboveMaxMessagesIsRefusedBeforeTheSnapshot() {
        var limits = GatewaySettings.Limits()
        limits.maxMessages = 10
        var t = SessionTranscript(settings: GatewaySettings(limits: limits))
        _ = t.takeClient()
        t.reachBackend()
        _ = t.takeBackend()
        t.backend("P1 " + SessionTranscript.loggedIn)
        _ = t.takeBackend()
        t.backend("* 11 EXISTS\r\n")
        XCTAssertEqual(t.takeClient(), "-ERR [SYS/PERM] Mailbox too large for POP3.\r\n")
    }

    /// A body under another UID (or another section) is never sent to the client.
    func testRetrIgnoresABodyForAnotherUID() {
        var t = SessionTranscript()
        t.logIn(messages: [(4, 5, ""), (5, 5, "")])
        t.client("RETR 1\r\n")
        _ = t.takeBackend()
        t.backend("* 2 FETCH (UID 5 BODY[] {5}\r\nevil!)\r\n* 1 FETCH (UID 4 BODY[HEADER] {3}\r\nhdr)\r\n")
        XCTAssertEqual(t.takeClient(), "")
        t.backend("* 1 FETCH (UID 4 BODY[] {5}\r\ngood!)\r\nP4 OK done\r\n")
        XCTAssertEqual(t.takeClient(), "+OK 5 octets\r\ngood!\r\n.\r\n")
    }

    func testTopIgnoresABodyForAnotherUIDOrOffset() {
        var limits = GatewaySettings.Limits()
        limits.topChunkSize = 8
        var t = SessionTranscript(settings: GatewaySettings(limits: limits))
        t.logIn(messages: [(4, 20, ""), (5, 20, "")])
        t.client("TOP 1 0\r\n")
        XCTAssertEqual(t.takeBackend(), "P4 UID FETCH 4 (BODY.PEEK[]<0.8>)\r\n")
        t.backend("* 2 FETCH (UID 5 BODY[]<0> {8}\r\nEvil: x\r)\r\n* 1 FETCH (UID 4 BODY[]<8> {8}\r\nEvil: y\r)\r\n")
        XCTAssertEqual(t.takeClient(), "")
        t.backend("* 1 FETCH (UID 4 BODY[]<0> {8}\r\nA: b\r\n\r\n)\r\nP4 OK done\r\n")
        XCTAssertEqual(t.takeClient(), "+OK\r\nA: b\r\n\r\n.\r\n")
    }

    /// A backend that answers every TOP chunk in full, forever, is not followed past the message size.
    func testTopStopsFollowingABackendThatNeverEnds() {
        var limits = GatewaySettings.Limits()
        limits.topChunkSize = 8
        var t = SessionTranscript(settings: GatewaySettings(limits: limits))
        t.logIn(messages: [(4, 16, "")])
        t.client("TOP 1 5\r\n")
        var fetches = 0
        while t.ended == nil, fetches < 100 {
            let sent = t.takeBackend()
            guard let tagEnd = sent.firstIndex(of: " "), sent.contains("UID FETCH") else { break }
            let tag = String(sent[..<tagEnd])
            let offset = fetches * 8
            fetches += 1
            t.backend("* 1 FETCH (UID 4 BODY[]<\(offset)> {8}\r\nxxxxxxxx)\r\n\(tag) OK done\r\n")
        }
        XCTAssertLessThan(fetches, 10)
        XCTAssertTrue(t.takeClient().hasSuffix("\r\n.\r\n"))
    }

    // MARK: Fixes found by reading the code

    /// DELE/LIST of a deleted message is a well-formed command: repeating it never ends the session,
    /// and the deletions are applied at QUIT.
    func testRepeatedDeleOfADeletedMessageDoesNotCountAsAnError() {
        var t = SessionTranscript()
        t.logIn(messages: [(1, 5, "")])
        t.client("DELE 1\r\n")
        _ = t.takeClient()
        for _ in 0..<50 { t.client("DELE 1\r\nLIST 1\r\nRETR 7\r\n") }
        XCTAssertNil(t.ended)
        t.client("QUIT\r\n")
        XCTAssertTrue(t.takeBackend().contains("UID STORE 1 +FLAGS.SILENT ($POP3Deleted \\Seen)"))
    }

    /// The retention plan is fixed at login: a later CAPABILITY without UIDPLUS/MOVE changes nothing.
    func testLaterCapabilitiesDoNotChangeTheRetentionPlan() {
        var t = SessionTranscript(policy: SessionPolicy(retention: RetentionPolicy(onDelete: .expunge)))
        t.logIn(messages: [(1, 5, "")])
        t.backend("* CAPABILITY IMAP4rev1\r\n")
        t.client("DELE 1\r\nQUIT\r\n")
        XCTAssertEqual(t.takeBackend(), "P4 UID STORE 1 +FLAGS.SILENT (\\Deleted)\r\n")
        t.backend("P4 OK done\r\n")
        XCTAssertEqual(t.takeBackend(), "P5 UID EXPUNGE 1\r\n")
        t.backend("P5 OK done\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Marked to be deleted.\r\n+OK Logging out.\r\n")
    }

    /// `expunge` without UIDPLUS falls back to a move; into the maildrop itself it would delete nothing.
    func testExpungeFallbackIntoTheMaildropIsRefusedAtLogin() {
        var t = SessionTranscript(policy: SessionPolicy(retention: RetentionPolicy(onDelete: .expunge, moveTo: "inbox")))
        _ = t.takeClient()
        t.reachBackend()
        _ = t.takeBackend()
        t.backend("P1 OK [CAPABILITY IMAP4rev1 MOVE] Logged in\r\n")
        XCTAssertEqual(t.takeClient(), "-ERR [SYS/PERM] Backend cannot delete safely.\r\n")
    }

    /// After a failed login the link is reset once, through the encoder: LOGOUT, close, nothing pending.
    func testFailedLoginResetsTheBackendLinkCompletely() {
        var t = SessionTranscript(settings: GatewaySettings(authFailureDelay: .zero))
        _ = t.takeClient()
        t.reachBackend()
        _ = t.takeBackend()
        _ = t.takeActions()
        t.backend("P1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
        XCTAssertEqual(t.takeBackend(), "Z LOGOUT\r\n")
        XCTAssertTrue(t.contains(.closeBackend))
        // A stray continuation from the old link must not release anything on the next one.
        t.send(.timerFired(.authFailureDelay))
        t.client("USER alice\r\nPASS secret\r\n")
        t.send(.backendConnected(encrypted: true))
        t.backend("+ \r\n" + SessionTranscript.greeting)
        XCTAssertTrue(t.takeBackend().hasPrefix("P4 AUTHENTICATE PLAIN "), "tags go on from the first link's flight (P1-P3)")
    }

    // MARK: Helpers

    /// Logs in up to the snapshot FETCH and feeds `answer` as the backend's reply to it.
    private func snapshotAnswer(_ t: inout SessionTranscript, _ answer: String, exists: Int = 1) {
        _ = t.takeClient()
        t.reachBackend()
        _ = t.takeBackend()
        t.backend("P1 " + SessionTranscript.loggedIn)
        _ = t.takeBackend()
        t.backend("* \(exists) EXISTS\r\n* OK [UIDVALIDITY 1] UIDs valid\r\nP2 OK [READ-WRITE] Select completed.\r\n")
        XCTAssertEqual(t.takeBackend(), "", "the FETCH went out with the credentials")
        t.backend(answer)
    }

    private func format8Hex(_ value: UInt32) -> String {
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 8 - hex.count)) + hex
    }
}
