import Gateway
import Wire
import XCTest

/// Round trips per login: with SASL-IR the credentials, SELECT and the snapshot FETCH leave in one
/// flight, and every way the answers can go wrong ends as it did when each waited for the one before.
final class GatewaySessionLoginFlightTests: XCTestCase {
    /// Dovecot's pre-login greeting on a connection that needs no STARTTLS.
    static let dovecotGreeting = "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot (Debian) ready.\r\n"
    static let fetchCommand = "UID FETCH 1:* (UID RFC822.SIZE FLAGS)\r\n"
    static let payload = String(decoding: Base64.encode(Array("\0alice\0secret".utf8)), as: UTF8.self)

    // MARK: One flight

    /// The count: after the greeting the machine writes once, and never again until the maildrop is
    /// live, however the answers are split.
    func testDovecotLoginIsOneFlight() {
        let client = ClientContext(address: "203.0.113.7", port: 50812, localAddress: "192.0.2.1", localPort: 995, sessionID: "abc-1")
        var t = SessionTranscript(client: client)
        _ = t.takeClient()
        t.client("USER alice\r\nPASS secret\r\n")
        _ = t.takeClient()
        t.send(.backendConnected(encrypted: true))
        _ = t.takeActions()
        t.backend(Self.dovecotGreeting)
        XCTAssertEqual(backendWrites(t.takeActions()), [
            "P1 ID (\"x-originating-ip\" \"203.0.113.7\" \"x-originating-port\" \"50812\" \"x-connected-ip\" \"192.0.2.1\" \"x-connected-port\" \"995\" \"x-session-id\" \"abc-1\")\r\n"
                + "P2 AUTHENTICATE PLAIN \(Self.payload)\r\n"
                + "P3 SELECT \"INBOX\"\r\n"
                + "P4 \(Self.fetchCommand)",
        ], "one write holds all four commands, before any tagged answer")
        _ = t.takeBackend()
        // Dovecot's answers, one response per read: nothing more is sent until the login is done.
        let answers = [
            "* ID (\"name\" \"Dovecot\")\r\n", "P1 OK ID completed.\r\n",
            "P2 " + SessionTranscript.loggedIn,
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n", "* 2 EXISTS\r\n", "* 0 RECENT\r\n",
            "* OK [UIDVALIDITY 1732780000] UIDs valid\r\n", "P3 OK [READ-WRITE] Select completed.\r\n",
            "* 1 FETCH (UID 4 RFC822.SIZE 120 FLAGS (\\Seen))\r\n", "* 2 FETCH (UID 9 RFC822.SIZE 30 FLAGS ())\r\n",
        ]
        for answer in answers {
            t.backend(answer)
            XCTAssertEqual(t.takeBackend(), "", "after \(answer.debugDescription)")
            XCTAssertEqual(t.takeClient(), "", "after \(answer.debugDescription)")
        }
        t.backend("P4 OK Fetch completed.\r\n")
        XCTAssertEqual(t.takeBackend(), "")
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")
        t.client("STAT\r\n")
        XCTAssertEqual(t.takeClient(), "+OK 2 150\r\n")
    }

    /// An untagged response belongs to the command whose tagged answer comes next: an EXISTS or a FETCH
    /// before the login's OK is not SELECT's or the snapshot's, a FETCH before SELECT's OK not the
    /// snapshot's.
    func testUntaggedResponsesBelongToTheCommandAnsweredNext() {
        var limits = GatewaySettings.Limits()
        limits.maxMessages = 10
        var t = SessionTranscript(settings: GatewaySettings(limits: limits))
        _ = t.takeClient()
        t.reachBackend()
        XCTAssertEqual(t.takeBackend(), SessionTranscript.loginFlight())
        t.backend("* 99 EXISTS\r\n* 7 FETCH (UID 70 RFC822.SIZE 7 FLAGS ())\r\nP1 " + SessionTranscript.loggedIn)
        t.backend("* 1 EXISTS\r\n* 8 FETCH (UID 80 RFC822.SIZE 8 FLAGS ())\r\n* OK [UIDVALIDITY 5] UIDs valid\r\nP2 OK [READ-WRITE] Select completed.\r\n")
        t.backend("* 1 FETCH (UID 3 RFC822.SIZE 30 FLAGS ())\r\n* 2 EXISTS\r\nP3 OK Fetch completed.\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")
        t.client("UIDL\r\n")
        XCTAssertEqual(t.takeClient(), "+OK\r\n1 0000000300000005\r\n.\r\n")
    }

    // MARK: Failures with commands in flight

    /// A wrong password: SELECT and FETCH are refused on the unauthenticated connection, and the login
    /// fails exactly as without them. Their answers are dropped with the link; the next login starts clean.
    func testAuthFailureWithSelectAndFetchInFlight() {
        var t = SessionTranscript(settings: GatewaySettings(authFailureDelay: .seconds(2)))
        _ = t.takeClient()
        t.reachBackend("USER alice\r\nPASS wrong\r\n")
        XCTAssertEqual(t.takeBackend(), SessionTranscript.loginFlight(password: "wrong"))
        _ = t.takeActions()
        t.backend("P1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\nP2 BAD Error in IMAP command SELECT: Unknown command.\r\nP3 BAD Error in IMAP command UID: Unknown command.\r\n")
        XCTAssertEqual(t.takeClient(), "", "nothing before the delay")
        XCTAssertEqual(t.takeBackend(), "Z LOGOUT\r\n")
        let actions = t.takeActions()
        XCTAssertEqual(actions.filter { $0 == .recordAuthFailure }.count, 1)
        XCTAssertEqual(actions.filter { $0 == .count(.loginFailed(.credentials)) }.count, 1)
        XCTAssertFalse(actions.contains { if case .count(.backendError) = $0 { true } else { false } }, "the later answers are no backend failure")
        XCTAssertTrue(actions.contains(.closeBackend))
        XCTAssertTrue(actions.contains(.scheduleTimer(.authFailureDelay, after: .seconds(2))))
        XCTAssertEqual(logMessages(actions), ["login failed: backend said no Authentication failed."])
        t.send(.timerFired(.authFailureDelay))
        XCTAssertEqual(t.takeClient(), "-ERR [AUTH] Authentication failed.\r\n")

        // The next attempt on a new link: tags go on, nothing of the first link is waited for.
        t.client("USER alice\r\nPASS secret\r\n")
        _ = t.takeClient()
        t.send(.backendConnected(encrypted: true))
        t.backend(SessionTranscript.greeting)
        XCTAssertEqual(t.takeBackend(), SessionTranscript.loginFlight(first: 4))
        t.backend("P4 " + SessionTranscript.loggedIn + SessionTranscript.selected(exists: 1, tag: "P5")
            + "* 1 FETCH (UID 6 RFC822.SIZE 60 FLAGS ())\r\nP6 OK Fetch completed.\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")
        XCTAssertTrue(t.contains(.recordAuthSuccess))
        t.client("STAT\r\n")
        XCTAssertEqual(t.takeClient(), "+OK 1 60\r\n")
    }

    /// SELECT fails: its failure is reported as before, the FETCH's refusal behind it is not.
    func testSelectFailureWithFetchInFlight() {
        var t = SessionTranscript()
        _ = t.takeClient()
        t.reachBackend()
        _ = t.takeBackend()
        _ = t.takeActions()
        t.backend("P1 " + SessionTranscript.loggedIn + "P2 NO [NONEXISTENT] Mailbox doesn't exist: INBOX\r\nP3 BAD No mailbox selected.\r\n")
        XCTAssertEqual(t.takeClient(), "-ERR [SYS/PERM] Mailbox is not available.\r\n")
        XCTAssertEqual(t.takeBackend(), "Z LOGOUT\r\n")
        let actions = t.takeActions()
        XCTAssertEqual(logMessages(actions), ["login failed: SELECT INBOX: no Mailbox doesn't exist: INBOX"])
        XCTAssertFalse(actions.contains(.recordAuthFailure))
        XCTAssertNil(t.ended, "the client may try again")
    }

    /// SELECT found no messages: the FETCH's answer, OK with nothing or a refusal of `1:*`, is an
    /// empty maildrop. With messages a refusal still fails the login.
    func testEmptyMailboxWhateverTheFetchAnswers() {
        for fetchAnswer in ["P3 OK Fetch completed.\r\n", "P3 BAD Error in IMAP command UID FETCH: Invalid uidset\r\n", "P3 NO Nothing to fetch\r\n"] {
            var t = SessionTranscript()
            _ = t.takeClient()
            t.reachBackend()
            _ = t.takeBackend()
            t.backend("P1 " + SessionTranscript.loggedIn + SessionTranscript.selected(exists: 0) + fetchAnswer)
            XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n", fetchAnswer)
            t.client("STAT\r\n")
            XCTAssertEqual(t.takeClient(), "+OK 0 0\r\n", fetchAnswer)
        }
        var t = SessionTranscript()
        _ = t.takeClient()
        t.reachBackend()
        _ = t.takeBackend()
        t.backend("P1 " + SessionTranscript.loggedIn + SessionTranscript.selected(exists: 1) + "P3 NO Server error\r\n")
        XCTAssertEqual(t.takeClient(), "-ERR [SYS/TEMP] Backend server unavailable, try again later.\r\n")
    }

    /// EXISTS above `limits.max_messages` fails the login at once; the FETCH answers already on their
    /// way are never parsed (the link and its parser are gone) and nothing after them is answered.
    func testExistsAboveMaxMessagesWithTheFetchInFlight() {
        var limits = GatewaySettings.Limits()
        limits.maxMessages = 10
        var t = SessionTranscript(settings: GatewaySettings(limits: limits))
        _ = t.takeClient()
        t.reachBackend()
        _ = t.takeBackend()
        var fetches = ""
        for uid in 1...11 { fetches += "* \(uid) FETCH (UID \(uid) RFC822.SIZE 10 FLAGS ())\r\n" }
        t.backend("P1 " + SessionTranscript.loggedIn + SessionTranscript.selected(exists: 11) + fetches + "P3 OK Fetch completed.\r\n")
        XCTAssertEqual(t.takeClient(), "-ERR [SYS/PERM] Mailbox too large for POP3.\r\n")
        XCTAssertEqual(t.takeBackend(), "Z LOGOUT\r\n")
        XCTAssertEqual(logMessages(t.takeActions()), ["login failed: 11 messages exceed limits.max_messages"])
    }

    // MARK: The retention plan

    /// The login's OK lists capabilities without UIDPLUS or MOVE: `on_delete: expunge` is impossible,
    /// and the login fails although SELECT and FETCH went out and are answered in the same read.
    func testRetentionPlanImpossibleWithSelectAndFetchInFlight() {
        var t = SessionTranscript(policy: SessionPolicy(retention: RetentionPolicy(onDelete: .expunge)))
        _ = t.takeClient()
        t.reachBackend()
        _ = t.takeBackend()
        _ = t.takeActions()
        t.backend("P1 OK [CAPABILITY IMAP4rev1 SASL-IR ID] Logged in\r\n" + SessionTranscript.selected(exists: 1)
            + "* 1 FETCH (UID 1 RFC822.SIZE 5 FLAGS ())\r\nP3 OK Fetch completed.\r\n")
        XCTAssertEqual(t.takeClient(), "-ERR [SYS/PERM] Backend cannot delete safely (no UIDPLUS or MOVE).\r\n")
        XCTAssertEqual(t.takeBackend(), "Z LOGOUT\r\n")
        XCTAssertEqual(logMessages(t.takeActions()), ["login failed: retention.on_delete expunge needs UIDPLUS or MOVE, which the backend lacks"])
    }

    /// The login's OK lists no capabilities: CAPABILITY goes behind SELECT and FETCH, and the maildrop
    /// waits for its answer. Without UIDPLUS or MOVE the login fails after the snapshot came in.
    func testCapabilityAskedBehindTheFlightDecidesThePlan() {
        var t = SessionTranscript(policy: SessionPolicy(retention: RetentionPolicy(onDelete: .expunge)))
        _ = t.takeClient()
        t.reachBackend()
        _ = t.takeBackend()
        t.backend("P1 OK Logged in\r\n")
        XCTAssertEqual(t.takeBackend(), "P4 CAPABILITY\r\n")
        t.backend(SessionTranscript.selected(exists: 1) + "* 1 FETCH (UID 1 RFC822.SIZE 5 FLAGS ())\r\nP3 OK Fetch completed.\r\n")
        XCTAssertEqual(t.takeClient(), "", "the maildrop waits for the post-login capabilities")
        t.backend("* CAPABILITY IMAP4rev1 SASL-IR ID\r\nP4 OK Capability completed.\r\n")
        XCTAssertEqual(t.takeClient(), "-ERR [SYS/PERM] Backend cannot delete safely (no UIDPLUS or MOVE).\r\n")

        var ok = SessionTranscript(policy: SessionPolicy(retention: RetentionPolicy(onDelete: .expunge)))
        _ = ok.takeClient()
        ok.reachBackend()
        _ = ok.takeBackend()
        ok.backend("P1 OK Logged in\r\n")
        XCTAssertEqual(ok.takeBackend(), "P4 CAPABILITY\r\n")
        ok.backend(SessionTranscript.selected(exists: 1) + "* 1 FETCH (UID 1 RFC822.SIZE 5 FLAGS ())\r\nP3 OK Fetch completed.\r\n")
        XCTAssertEqual(ok.takeClient(), "")
        ok.backend("* CAPABILITY IMAP4rev1 UIDPLUS\r\nP4 OK Capability completed.\r\n")
        XCTAssertEqual(ok.takeClient(), "+OK Logged in.\r\n")
        ok.client("DELE 1\r\nQUIT\r\n")
        XCTAssertEqual(ok.takeBackend(), "P5 UID STORE 1 +FLAGS.SILENT (\\Deleted)\r\n")
    }

    /// A plan decided on a link that then broke is not carried into the next login.
    func testAPlanFromABrokenLinkDoesNotCarryOver() {
        var t = SessionTranscript(policy: SessionPolicy(retention: RetentionPolicy(onDelete: .expunge)))
        _ = t.takeClient()
        t.reachBackend()
        _ = t.takeBackend()
        t.backend("P1 " + SessionTranscript.loggedIn)
        t.send(.backendClosed(reason: nil))
        XCTAssertEqual(t.takeClient(), "-ERR [SYS/TEMP] Backend server unavailable, try again later.\r\n")
        t.client("USER alice\r\nPASS secret\r\n")
        _ = t.takeClient()
        t.send(.backendConnected(encrypted: true))
        t.backend(SessionTranscript.greeting)
        XCTAssertEqual(t.takeBackend(), SessionTranscript.loginFlight(first: 4))
        t.backend("P4 OK [CAPABILITY IMAP4rev1] Logged in\r\n" + SessionTranscript.selected(exists: 0, tag: "P5") + "P6 OK Fetch completed.\r\n")
        XCTAssertEqual(t.takeClient(), "-ERR [SYS/PERM] Backend cannot delete safely (no UIDPLUS or MOVE).\r\n")
    }

    // MARK: When the credentials cannot be pipelined

    /// Without SASL-IR the payload waits for the continuation request, so nothing goes behind it; after
    /// the OK, SELECT and FETCH (and CAPABILITY when the OK lists none) go in one flight.
    func testWithoutSASLIRSelectAndFetchWaitForTheLogin() {
        var t = SessionTranscript()
        _ = t.takeClient()
        t.client("USER alice\r\nPASS secret\r\n")
        _ = t.takeClient()
        t.send(.backendConnected(encrypted: true))
        t.backend("* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] ready.\r\n")
        XCTAssertEqual(t.takeBackend(), "P1 AUTHENTICATE PLAIN\r\n")
        t.backend("+ \r\n")
        XCTAssertEqual(t.takeBackend(), "\(Self.payload)\r\n")
        _ = t.takeActions()
        t.backend("P1 " + SessionTranscript.loggedIn)
        XCTAssertEqual(backendWrites(t.takeActions()), ["P2 SELECT \"INBOX\"\r\nP3 \(Self.fetchCommand)"])
        _ = t.takeBackend()
        t.backend(SessionTranscript.selected(exists: 1) + "* 1 FETCH (UID 1 RFC822.SIZE 5 FLAGS ())\r\nP3 OK Fetch completed.\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")

        var noCode = SessionTranscript()
        _ = noCode.takeClient()
        noCode.client("USER alice\r\nPASS secret\r\n")
        _ = noCode.takeClient()
        noCode.send(.backendConnected(encrypted: true))
        noCode.backend("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready.\r\n+ \r\n")
        _ = noCode.takeBackend()
        _ = noCode.takeActions()
        noCode.backend("P1 OK Logged in\r\n")
        XCTAssertEqual(backendWrites(noCode.takeActions()), ["P2 CAPABILITY\r\nP3 SELECT \"INBOX\"\r\nP4 \(Self.fetchCommand)"])
        _ = noCode.takeBackend()
        noCode.backend("* CAPABILITY IMAP4rev1 UIDPLUS MOVE\r\nP2 OK done\r\n" + SessionTranscript.selected(exists: 0, tag: "P3") + "P4 OK done\r\n")
        XCTAssertEqual(noCode.takeClient(), "+OK Logged in.\r\n")
    }

    /// LOGIN (no AUTH=PLAIN) is pipelined only when it needs no synchronising literal: quoted strings,
    /// or literals under LITERAL+. A synchronising literal holds SELECT and FETCH back until the OK.
    func testLoginIsPipelinedOnlyWithoutSynchronisingLiterals() {
        var quoted = SessionTranscript()
        _ = quoted.takeClient()
        quoted.client("USER alice\r\nPASS secret\r\n")
        _ = quoted.takeClient()
        quoted.send(.backendConnected(encrypted: true))
        _ = quoted.takeActions()
        quoted.backend("* OK [CAPABILITY IMAP4rev1] ready.\r\n")
        XCTAssertEqual(backendWrites(quoted.takeActions()), ["P1 LOGIN \"alice\" \"secret\"\r\nP2 SELECT \"INBOX\"\r\nP3 \(Self.fetchCommand)"])

        var literalPlus = SessionTranscript()
        _ = literalPlus.takeClient()
        literalPlus.client("USER alice\r\nPASS pässwd\r\n")
        _ = literalPlus.takeClient()
        literalPlus.send(.backendConnected(encrypted: true))
        _ = literalPlus.takeActions()
        literalPlus.backend("* OK [CAPABILITY IMAP4rev1 LITERAL+] ready.\r\n")
        XCTAssertEqual(backendWrites(literalPlus.takeActions()), ["P1 LOGIN \"alice\" {7+}\r\npässwd\r\nP2 SELECT \"INBOX\"\r\nP3 \(Self.fetchCommand)"])

        var synchronising = SessionTranscript()
        _ = synchronising.takeClient()
        synchronising.client("USER alice\r\nPASS pässwd\r\n")
        _ = synchronising.takeClient()
        synchronising.send(.backendConnected(encrypted: true))
        synchronising.backend("* OK [CAPABILITY IMAP4rev1] ready.\r\n")
        XCTAssertEqual(synchronising.takeBackend(), "P1 LOGIN \"alice\" {7}\r\n")
        synchronising.backend("+ OK\r\n")
        XCTAssertEqual(synchronising.takeBackend(), "pässwd\r\n", "the literal, and nothing behind it")
        synchronising.backend("P1 " + SessionTranscript.loggedIn)
        XCTAssertEqual(synchronising.takeBackend(), "P2 SELECT \"INBOX\"\r\nP3 \(Self.fetchCommand)")
        synchronising.backend(SessionTranscript.selected(exists: 0) + "P3 OK done\r\n")
        XCTAssertEqual(synchronising.takeClient(), "+OK Logged in.\r\n")
    }

    /// STARTTLS to the backend: the capabilities from before TLS are forgotten, CAPABILITY asks again,
    /// and when its answer shows SASL-IR the rest is one flight.
    func testBackendStartTLSPipelinesFromTheCapabilityAnswer() {
        var t = SessionTranscript(backend: BackendTarget(host: "imap.test", port: 143, tls: .starttls))
        _ = t.takeClient()
        t.client("USER alice\r\nPASS secret\r\n")
        _ = t.takeClient()
        t.send(.backendConnected(encrypted: false))
        t.backend(SessionTranscript.greeting)
        XCTAssertEqual(t.takeBackend(), "P1 STARTTLS\r\n")
        t.backend("P1 OK Begin TLS negotiation now.\r\n")
        t.send(.backendTLSEstablished)
        XCTAssertEqual(t.takeBackend(), "P2 CAPABILITY\r\n")
        _ = t.takeActions()
        t.backend("* CAPABILITY IMAP4rev1 SASL-IR LITERAL+ AUTH=PLAIN\r\nP2 OK Pre-login capabilities listed.\r\n")
        XCTAssertEqual(backendWrites(t.takeActions()), ["P3 AUTHENTICATE PLAIN \(Self.payload)\r\nP4 SELECT \"INBOX\"\r\nP5 \(Self.fetchCommand)"])
        _ = t.takeBackend()
        t.backend("P3 " + SessionTranscript.loggedIn + SessionTranscript.selected(exists: 1, tag: "P4")
            + "* 1 FETCH (UID 2 RFC822.SIZE 20 FLAGS ())\r\nP5 OK Fetch completed.\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")

        // Without SASL-IR after TLS: the old sequence.
        var old = SessionTranscript(backend: BackendTarget(host: "imap.test", port: 143, tls: .starttls))
        _ = old.takeClient()
        old.client("USER alice\r\nPASS secret\r\n")
        _ = old.takeClient()
        old.send(.backendConnected(encrypted: false))
        old.backend(SessionTranscript.greeting)
        old.backend("P1 OK Begin TLS negotiation now.\r\n")
        old.send(.backendTLSEstablished)
        _ = old.takeBackend()
        old.backend("* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nP2 OK Pre-login capabilities listed.\r\n")
        XCTAssertEqual(old.takeBackend(), "P3 AUTHENTICATE PLAIN\r\n")
    }

    // MARK: Helpers

    /// The `.sendToBackend` actions as text, one element per write.
    private func backendWrites(_ actions: [SessionAction]) -> [String] {
        actions.compactMap { if case .sendToBackend(let bytes) = $0 { String(decoding: bytes, as: UTF8.self) } else { nil } }
    }

    private func logMessages(_ actions: [SessionAction]) -> [String] {
        actions.compactMap { if case .log(let record) = $0 { record.message } else { nil } }
    }
}
