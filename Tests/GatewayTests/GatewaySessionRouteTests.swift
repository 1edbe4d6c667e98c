import Gateway
import IMAP
import Wire
import XCTest

/// The login asks the router where it goes; the answer decides the backend, the login name, the
/// password, the backend TLS mode and the session's policy.
final class GatewaySessionRouteTests: XCTestCase {
    private func logs(_ actions: [SessionAction]) -> [String] {
        actions.compactMap { if case .log(let record) = $0 { record.message } else { nil } }
    }

    func testTheRouterIsAskedAfterThePenaltyAndTheBackendComesFromItsAnswer() {
        let target = BackendTarget(host: "10.0.0.7", port: 1993, tls: .implicit)
        var t = SessionTranscript(backend: target)
        t.penalty = .seconds(1)
        _ = t.takeClient()
        t.client("USER alice@example.com\r\nPASS secret\r\n")
        XCTAssertTrue(t.routeRequests.isEmpty, "the penalty comes before the router")
        t.send(.timerFired(.authPenalty))
        XCTAssertEqual(t.routeRequests, [RouteRequest(user: "alice@example.com", password: Secret("secret"), attempt: 1)])
        XCTAssertTrue(t.contains(.connectBackend(target)))
    }

    func testStripDomainRewritesTheLoginSentToTheBackend() {
        var t = SessionTranscript()
        t.routeDecision = .route(Route(name: "example.com", backend: SessionTranscript.backend, login: .stripDomain))
        _ = t.takeClient()
        t.reachBackend("USER alice@example.com\r\nPASS secret\r\n")
        XCTAssertEqual(t.takeBackend(), SessionTranscript.loginFlight(user: "alice"))
    }

    func testRoutingServiceRewritesUserAndPassword() {
        var t = SessionTranscript()
        t.routeDecision = .route(Route(name: "auth_http", backend: SessionTranscript.backend, user: "u1234", password: Secret("backendpw")))
        _ = t.takeClient()
        t.reachBackend("USER alice@example.com\r\nPASS secret\r\n")
        XCTAssertEqual(t.takeBackend(), SessionTranscript.loginFlight(user: "u1234", password: "backendpw"))
    }

    /// AUTH PLAIN with an authorization identity equal to the user: it follows the rewrite; another
    /// identity is left as the client gave it.
    func testAuthorizationIdentityFollowsTheRewriteOnlyWhenItWasTheUser() {
        var t = SessionTranscript()
        t.routeDecision = .route(Route(name: "x", backend: SessionTranscript.backend, login: .stripDomain))
        _ = t.takeClient()
        let payload = String(decoding: Base64.encode(Array("alice@example.com\0alice@example.com\0pw".utf8)), as: UTF8.self)
        t.reachBackend("AUTH PLAIN \(payload)\r\n")
        let sent = String(decoding: Base64.encode(Array("alice\0alice\0pw".utf8)), as: UTF8.self)
        XCTAssertTrue(t.takeBackend().hasPrefix("P1 AUTHENTICATE PLAIN \(sent)\r\n"))
    }

    func testRefusalIsAnAuthFailureAfterTheServicesWait() {
        var t = SessionTranscript()
        t.routeDecision = .refused(text: "Invalid login or password", wait: .seconds(3))
        _ = t.takeClient()
        t.client("USER alice\r\nPASS wrong\r\n")
        let actions = t.takeActions()
        XCTAssertFalse(actions.contains { if case .connectBackend = $0 { true } else { false } }, "no backend is asked")
        XCTAssertTrue(actions.contains(.recordAuthFailure))
        XCTAssertTrue(actions.contains(.scheduleTimer(.authFailureDelay, after: .seconds(3))), "\(actions)")
        XCTAssertEqual(t.takeClient(), "+OK Send your password.\r\n")
        t.send(.timerFired(.authFailureDelay))
        XCTAssertEqual(t.takeClient(), "-ERR [AUTH] Invalid login or password\r\n")
    }

    /// nginx's rule: a refusal without `Auth-Wait` ends the connection after the answer.
    func testRefusalWithoutWaitClosesAfterTheFailureDelay() {
        var t = SessionTranscript(settings: GatewaySettings(authFailureDelay: .seconds(2)))
        t.routeDecision = .refused(text: "Account locked", wait: nil)
        _ = t.takeClient()
        t.client("USER alice\r\nPASS x\r\n")
        XCTAssertTrue(t.contains(.scheduleTimer(.authFailureDelay, after: .seconds(2))))
        t.send(.timerFired(.authFailureDelay))
        XCTAssertEqual(t.takeClient(), "+OK Send your password.\r\n-ERR [AUTH] Account locked\r\n")
        XCTAssertTrue(t.contains(.closeClient))
        XCTAssertNotNil(t.ended)
    }

    func testOutageIsTemporaryNeverAuth() {
        var t = SessionTranscript()
        t.routeDecision = .unavailable(reason: "auth_http: connection refused")
        _ = t.takeClient()
        t.client("USER alice\r\nPASS secret\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Send your password.\r\n-ERR [SYS/TEMP] Backend server unavailable, try again later.\r\n")
        XCTAssertFalse(t.contains(.recordAuthFailure))
    }

    func testNoRouteIsAnsweredLikeWrongCredentials() {
        var t = SessionTranscript()
        t.routeDecision = .noRoute
        _ = t.takeClient()
        t.client("USER alice@unknown.example\r\nPASS secret\r\n")
        XCTAssertTrue(t.contains(.recordAuthFailure))
        XCTAssertTrue(logs(t.takeActions()).contains { $0.contains("no route matches") })
        t.send(.timerFired(.authFailureDelay))
        XCTAssertEqual(t.takeClient(), "+OK Send your password.\r\n-ERR [AUTH] Authentication failed.\r\n")
    }

    /// The second login on a connection is routed again (the user may differ) and says it is attempt 2.
    func testEachAttemptIsRoutedWithItsNumber() {
        var t = SessionTranscript()
        t.routeDecision = .refused(text: "No", wait: .seconds(1))
        _ = t.takeClient()
        t.client("USER a\r\nPASS b\r\n")
        t.send(.timerFired(.authFailureDelay))
        t.client("USER c\r\nPASS d\r\n")
        XCTAssertEqual(t.routeRequests.map(\.attempt), [1, 2])
        XCTAssertEqual(t.routeRequests.map(\.user), ["a", "c"])
    }

    func testBackendTLSModeComesFromTheRoute() {
        var plain = SessionTranscript(backend: BackendTarget(host: "h", port: 143, tls: .none))
        _ = plain.takeClient()
        plain.reachBackend(encrypted: false)
        XCTAssertTrue(plain.takeBackend().hasPrefix("P1 AUTHENTICATE PLAIN"), "tls: none allows the password in clear")

        var refused = SessionTranscript(backend: BackendTarget(host: "h", port: 993, tls: .implicit))
        _ = refused.takeClient()
        refused.reachBackend(encrypted: false)
        XCTAssertEqual(refused.takeClient(), "-ERR [SYS/PERM] Backend connection is not secure.\r\n")
    }

    func testSummaryNamesTheRoute() {
        var t = SessionTranscript()
        t.routeDecision = .route(Route(name: "*.example.org", backend: SessionTranscript.backend))
        t.logIn(messages: [])
        t.client("QUIT\r\n")
        t.backend("P4 OK Logout\r\n")
        XCTAssertEqual(t.ended?.route, "*.example.org")
    }
}

/// `visible: unseen | not_popped`.
final class GatewaySessionVisibilityTests: XCTestCase {
    private let messages: [(UInt32, UInt64, String)] = [
        (1, 10, "\\Seen"), (2, 20, "$POP3Retrieved"), (3, 30, ""), (4, 40, "\\Seen $pop3retrieved"), (5, 50, "\\Deleted"),
    ]

    private func listing(_ visible: Visibility) -> (SessionTranscript, String) {
        var t = SessionTranscript(policy: SessionPolicy(visible: visible))
        t.logIn(messages: messages)
        t.client("UIDL\r\n")
        return (t, t.takeClient())
    }

    private func uids(_ uidl: String) -> [String] {
        uidl.split(separator: "\r\n").dropFirst().dropLast().map { String($0.split(separator: " ")[1].prefix(8)) }
    }

    func testAllListsEverythingButDeleted() {
        XCTAssertEqual(uids(listing(.all).1), ["00000001", "00000002", "00000003", "00000004"])
    }

    func testUnseenHidesSeen() {
        XCTAssertEqual(uids(listing(.unseen).1), ["00000002", "00000003"])
    }

    func testNotPoppedHidesRetrievedInAnyCase() {
        XCTAssertEqual(uids(listing(.notPopped).1), ["00000001", "00000003"])
    }

    /// QUIT marks what was retrieved with the keyword (and \Seen under on_retrieve: seen) in one STORE.
    func testQuitMarksRetrievedMessages() {
        var (t, _) = listing(.notPopped)
        t.client("RETR 2\r\n")
        _ = t.takeBackend()
        t.backend("* 3 FETCH (UID 3 BODY[] {3}\r\nabc)\r\nP4 OK Fetch completed.\r\n")
        XCTAssertTrue(t.takeClient().hasPrefix("+OK"))
        t.client("QUIT\r\n")
        XCTAssertEqual(t.takeBackend(), "P5 UID STORE 3 +FLAGS.SILENT (\\Seen $POP3Retrieved)\r\n")
    }

    func testQuitWithOnRetrieveNoneSetsOnlyTheKeyword() {
        var t = SessionTranscript(policy: SessionPolicy(retention: RetentionPolicy(onRetrieve: .none), visible: .notPopped))
        t.logIn(messages: [(7, 3, "")])
        t.client("RETR 1\r\n")
        _ = t.takeBackend()
        t.backend("* 1 FETCH (UID 7 BODY[] {3}\r\nabc)\r\nP4 OK Fetch completed.\r\n")
        _ = t.takeClient()
        t.client("QUIT\r\n")
        XCTAssertEqual(t.takeBackend(), "P5 UID STORE 7 +FLAGS.SILENT ($POP3Retrieved)\r\n")
    }

    /// A backend that would drop the keyword would list the mail again next time: refused at login.
    func testBackendThatCannotStoreTheKeywordIsRefused() {
        var t = SessionTranscript(policy: SessionPolicy(retention: RetentionPolicy(onDelete: .keep), visible: .notPopped))
        _ = t.takeClient()
        t.reachBackend()
        _ = t.takeBackend()
        t.backend("P1 " + SessionTranscript.loggedIn
            + "* OK [PERMANENTFLAGS (\\Deleted \\Seen)] Limited.\r\n* 0 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\nP2 OK [READ-WRITE] done\r\nP3 OK done\r\n")
        XCTAssertEqual(t.takeClient(), "-ERR [SYS/PERM] Backend cannot keep the retrieval mark.\r\n")
    }
}

/// Recent mode: `recent:` before the login lists the messages that arrived since the router's
/// window start, popped or not.
final class GatewaySessionRecentModeTests: XCTestCase {
    func testRecentPrefixIsStrippedAndTheWindowApplies() {
        var t = SessionTranscript(policy: SessionPolicy(visible: .notPopped))
        var route = Route(backend: SessionTranscript.backend, policy: SessionPolicy(visible: .notPopped))
        route.recentSince = IMAPDay(year: 2026, month: 11, day: 1)
        t.routeDecision = .route(route)
        _ = t.takeClient()
        t.reachBackend("USER Recent:alice@example.com\r\nPASS secret\r\n")
        XCTAssertEqual(t.routeRequests.first?.user, "alice@example.com")
        XCTAssertEqual(t.routeRequests.first?.recent, true)
        let payload = String(decoding: Base64.encode(Array("\0alice@example.com\0secret".utf8)), as: UTF8.self)
        XCTAssertEqual(t.takeBackend(), "P1 AUTHENTICATE PLAIN \(payload)\r\nP2 SELECT \"INBOX\"\r\nP3 UID FETCH 1:* (UID RFC822.SIZE FLAGS INTERNALDATE)\r\n")
        t.backend("P1 " + SessionTranscript.loggedIn + SessionTranscript.selected(exists: 4))
        t.backend("""
            * 1 FETCH (UID 1 RFC822.SIZE 10 FLAGS () INTERNALDATE "31-Oct-2026 23:59:59 +0000")\r
            * 2 FETCH (UID 2 RFC822.SIZE 20 FLAGS (\\Seen $POP3Retrieved) INTERNALDATE " 1-Nov-2026 00:00:00 +0100")\r
            * 3 FETCH (UID 3 RFC822.SIZE 30 FLAGS ($POP3Deleted) INTERNALDATE "20-Nov-2026 10:00:00 +0000")\r
            * 4 FETCH (UID 4 RFC822.SIZE 40 FLAGS () INTERNALDATE "30-Nov-2026 10:00:00 -0500")\r
            P3 OK Fetch completed.\r

            """)
        XCTAssertEqual(t.takeClient(), "+OK Logged in.\r\n")
        t.client("LIST\r\n")
        XCTAssertEqual(t.takeClient(), "+OK 2 messages:\r\n1 20\r\n2 40\r\n.\r\n",
                       "the popped message of the window is listed; the older one and the deleted one are not")
        XCTAssertEqual(t.ended, nil)
    }

    func testWithoutPrefixNothingChanges() {
        var t = SessionTranscript()
        _ = t.takeClient()
        t.reachBackend("USER recentalice\r\nPASS secret\r\n")
        XCTAssertEqual(t.routeRequests.first?.recent, false)
        XCTAssertEqual(t.takeBackend(), SessionTranscript.loginFlight(user: "recentalice"))
    }
}

/// The per-user limits count the name the client gave, even when the route rewrites the login.
final class GatewaySessionRouteUserLimitsTests: XCTestCase {
    func testCheckAndClaimCountTheClientsNameNotTheRewrittenOne() {
        var settings = GatewaySettings(authFailureDelay: .seconds(2))
        settings.limits.sessionsPerUser = 2
        var t = SessionTranscript(settings: settings)
        t.routeDecision = .route(Route(name: "example.com", backend: SessionTranscript.backend, login: .stripDomain))
        t.logIn(user: "alice@example.com", messages: [], sentUser: "alice")
        let lookups = t.actions.compactMap { action -> String? in
            if case .lookUpUserLimits(let user, let claim) = action { return "\(user) \(claim)" } else { return nil }
        }
        XCTAssertEqual(lookups, ["alice@example.com false", "alice@example.com true"])
        t.client("QUIT\r\n")
        XCTAssertTrue(t.contains(.releaseUser("alice@example.com")))
    }
}
