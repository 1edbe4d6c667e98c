import Gateway
import Wire
import XCTest

/// `limits.sessions_per_user` and `limits.login_interval`: asked of the daemon's per-user table after the
/// auth penalty and before the backend, claimed once the backend said yes, released however the session ends.
final class GatewaySessionUserLimitsTests: XCTestCase {
    func settings(perUser: Int = 10, interval: Duration = .zero) -> GatewaySettings {
        var limits = GatewaySettings.Limits()
        limits.sessionsPerUser = perUser
        limits.loginInterval = interval
        return GatewaySettings(limits: limits)
    }

    func lookups(_ actions: [SessionAction]) -> [SessionAction] {
        actions.filter {
            switch $0 {
            case .lookUpUserLimits, .releaseUser: true
            default: false
            }
        }
    }

    func testInUseIsAnsweredWithoutTheBackend() {
        var t = SessionTranscript(settings: settings())
        t.userAdmission = .inUse
        _ = t.takeClient()
        t.client("USER alice\r\nPASS secret\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Send your password.\r\n-ERR [IN-USE] Too many sessions of this user are open; try again later.\r\n")
        XCTAssertFalse(t.connectsBackend)
        XCTAssertFalse(t.contains(.recordAuthFailure), "not a wrong password: the address is not penalised")
        XCTAssertFalse(t.actions.contains { if case .count(.backendError) = $0 { true } else { false } })
        XCTAssertEqual(lookups(t.takeActions()), [.lookUpUserLimits(user: "alice", claim: false)])
        // The client may try again (another user, or later).
        t.userAdmission = .admitted
        t.client("USER bob\r\nPASS x\r\n")
        XCTAssertTrue(t.connectsBackend)
    }

    func testLoginDelayIsAnsweredWithoutTheBackend() {
        var t = SessionTranscript(settings: settings(interval: .seconds(300)))
        t.userAdmission = .loginDelay
        _ = t.takeClient()
        t.client("USER alice\r\nPASS secret\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Send your password.\r\n-ERR [LOGIN-DELAY] Logged in too recently; try again later.\r\n")
        XCTAssertFalse(t.connectsBackend)
    }

    func testTheCheckComesAfterTheAuthPenalty() {
        var t = SessionTranscript(settings: settings())
        t.penalty = .seconds(4)
        _ = t.takeClient()
        t.client("USER alice\r\nPASS secret\r\n")
        XCTAssertEqual(lookups(t.takeActions()), [], "a penalised address learns nothing before its wait")
        t.send(.timerFired(.authPenalty))
        XCTAssertEqual(lookups(t.actions), [.lookUpUserLimits(user: "alice", claim: false)])
        XCTAssertTrue(t.connectsBackend, "admitted: on to the backend")
    }

    func testAdmittedLoginIsClaimedAndReleasedAtQuit() {
        var t = SessionTranscript(settings: settings())
        t.logIn(messages: [(1, 5, "")])
        XCTAssertEqual(lookups(t.takeActions()), [.lookUpUserLimits(user: "alice", claim: false), .lookUpUserLimits(user: "alice", claim: true)])
        t.client("QUIT\r\n")
        XCTAssertEqual(t.takeClient(), "+OK Logging out.\r\n")
        let actions = t.takeActions()
        XCTAssertEqual(lookups(actions), [.releaseUser("alice")])
        XCTAssertEqual(actions.last.map { if case .sessionEnded = $0 { true } else { false } }, true, "sessionEnded stays last")
    }

    func testEveryEndingReleasesTheClaim() {
        let endings: [(String, SessionEvent)] = [
            ("client gone", .clientClosed), ("idle", .timerFired(.idle)), ("drain", .drainExpired),
            ("backend lost", .backendClosed(reason: nil)),
        ]
        for (name, event) in endings {
            var t = SessionTranscript(settings: settings())
            t.logIn(messages: [(1, 5, "")])
            _ = t.takeActions()
            t.send(event)
            if t.ended == nil { t.client("STAT\r\n") }
            if t.ended == nil { t.send(.clientClosed) }
            XCTAssertEqual(lookups(t.takeActions()), [.releaseUser("alice")], name)
        }
    }

    func testClaimRefusedAfterTheBackendLoginLogsOutAndReleasesNothing() {
        var t = SessionTranscript(settings: settings())
        _ = t.takeClient()
        t.reachBackend()
        _ = t.takeBackend()
        t.userAdmission = .inUse   // another session of alice logged in meanwhile
        t.backend("P1 " + SessionTranscript.loggedIn + SessionTranscript.selected(exists: 0) + "P3 OK Fetch completed.\r\n")
        XCTAssertEqual(t.takeClient(), "-ERR [IN-USE] Too many sessions of this user are open; try again later.\r\n")
        XCTAssertEqual(t.takeBackend(), "Z LOGOUT\r\n")
        XCTAssertEqual(lookups(t.takeActions()), [.lookUpUserLimits(user: "alice", claim: false), .lookUpUserLimits(user: "alice", claim: true)])
        t.send(.clientClosed)
        XCTAssertEqual(lookups(t.takeActions()), [], "a refused claim holds nothing")
    }

    func testTheMailboxUserIsTheAuthorizationIdentity() {
        var t = SessionTranscript(settings: settings())
        _ = t.takeClient()
        let payload = String(decoding: Base64.encode(Array("alice\0admin\0secret".utf8)), as: UTF8.self)
        t.client("AUTH PLAIN \(payload)\r\n")
        XCTAssertEqual(lookups(t.takeActions()), [.lookUpUserLimits(user: "alice", claim: false)])
    }

    func testNoLimitsNoLookups() {
        var t = SessionTranscript(settings: settings(perUser: 0))
        t.logIn(messages: [(1, 5, "")])
        t.client("QUIT\r\n")
        XCTAssertEqual(lookups(t.takeActions()), [])
    }

    func testCapaAdvertisesLoginDelay() {
        var t = SessionTranscript(settings: settings(interval: .seconds(300)))
        _ = t.takeClient()
        t.client("CAPA\r\n")
        XCTAssertTrue(t.takeClient().contains("\r\nLOGIN-DELAY 300\r\n"))
        var u = SessionTranscript(settings: settings(interval: .milliseconds(1500)))
        _ = u.takeClient()
        u.client("CAPA\r\n")
        XCTAssertTrue(u.takeClient().contains("\r\nLOGIN-DELAY 2\r\n"), "whole seconds, rounded up")
        var v = SessionTranscript(settings: settings())
        _ = v.takeClient()
        v.client("CAPA\r\n")
        XCTAssertFalse(v.takeClient().contains("LOGIN-DELAY"))
    }
}
