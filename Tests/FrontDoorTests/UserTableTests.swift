import FrontDoor
import XCTest

final class UserTableTests: XCTestCase {
    let t0 = ContinuousClock.now

    func testSessionsPerUserCountsClaimsAndReleases() {
        var table = UserTable(limits: .init(sessionsPerUser: 2))
        XCTAssertEqual(table.check("alice", now: t0), .admitted)
        XCTAssertEqual(table.openSessions(of: "alice"), 0, "a check counts nothing")
        XCTAssertEqual(table.claim("alice", now: t0), .admitted)
        XCTAssertEqual(table.claim("alice", now: t0), .admitted)
        XCTAssertEqual(table.check("alice", now: t0), .inUse(open: 2))
        XCTAssertEqual(table.claim("alice", now: t0), .inUse(open: 2), "a refused claim is not counted")
        XCTAssertEqual(table.check("bob", now: t0), .admitted, "per user")
        table.release("alice")
        XCTAssertEqual(table.claim("alice", now: t0), .admitted)
        table.release("alice")
        table.release("alice")
        XCTAssertEqual(table.countedUsers, 0, "entries go at zero")
        table.release("alice")
        XCTAssertEqual(table.openSessions(of: "alice"), 0, "never below zero")
    }

    func testUserNamesFoldOnlyASCIILetters() {
        XCTAssertEqual(UserTable.key("Alice@Example.COM"), "alice@example.com")
        XCTAssertEqual(UserTable.key("ÄRGER"), "Ärger", "non-ASCII compared as given")
        var table = UserTable(limits: .init(sessionsPerUser: 1))
        XCTAssertEqual(table.claim("Alice", now: t0), .admitted)
        XCTAssertEqual(table.check("ALICE", now: t0), .inUse(open: 1))
        XCTAssertEqual(table.check("Älice", now: t0), .admitted)
    }

    func testZeroIsNoLimit() {
        var table = UserTable(limits: .init(sessionsPerUser: 0))
        XCTAssertFalse(table.limits.isActive)
        for _ in 0..<1000 { XCTAssertEqual(table.claim("alice", now: t0), .admitted) }
        XCTAssertEqual(table.trackedCount, 0, "no login times without an interval")
    }

    func testLoginIntervalCountsFromTheLastSuccessfulLogin() {
        var table = UserTable(limits: .init(sessionsPerUser: 0, loginInterval: .seconds(300)))
        XCTAssertEqual(table.check("alice", now: t0), .admitted)
        XCTAssertEqual(table.check("alice", now: t0), .admitted, "a check (or a failed login) sets no time")
        XCTAssertEqual(table.claim("alice", now: t0), .admitted)
        XCTAssertEqual(table.check("alice", now: t0 + .seconds(100)), .loginDelay(wait: .seconds(200)))
        XCTAssertEqual(table.claim("ALICE", now: t0 + .seconds(299)), .loginDelay(wait: .seconds(1)))
        XCTAssertEqual(table.check("bob", now: t0 + .seconds(1)), .admitted)
        XCTAssertEqual(table.claim("alice", now: t0 + .seconds(300)), .admitted)
        XCTAssertEqual(table.check("alice", now: t0 + .seconds(301)), .loginDelay(wait: .seconds(299)))
        XCTAssertEqual(table.trackedCount, 1, "an expired time is dropped")
    }

    func testLoginTimesAreCappedOldestFirst() {
        var table = UserTable(limits: .init(sessionsPerUser: 0, loginInterval: .seconds(60), trackedUsers: 100))
        for i in 0..<10_000 {
            XCTAssertEqual(table.claim("user\(i)", now: t0 + .milliseconds(i)), .admitted)
            XCTAssertLessThanOrEqual(table.trackedCount, 100)
        }
        XCTAssertEqual(table.trackedCount, 100)
        XCTAssertEqual(table.check("user9999", now: t0 + .seconds(10)), .loginDelay(wait: .seconds(60) - (.seconds(10) - .milliseconds(9999))))
        XCTAssertEqual(table.check("user0", now: t0 + .seconds(10)), .admitted, "the oldest was forgotten at the cap")
        // Once every interval is over the table empties.
        _ = table.check("x", now: t0 + .seconds(3600))
        XCTAssertEqual(table.trackedCount, 0)
    }

    func testReloadKeepsCountsAndShrinksTheTimes() {
        var table = UserTable(limits: .init(sessionsPerUser: 3, loginInterval: .seconds(60)))
        for i in 0..<50 { _ = table.claim("u\(i)", now: t0) }
        table.update(limits: .init(sessionsPerUser: 1, loginInterval: .seconds(60), trackedUsers: 10))
        XCTAssertEqual(table.trackedCount, 10)
        XCTAssertEqual(table.openSessions(of: "u0"), 1, "open sessions stay counted")
        XCTAssertEqual(table.check("u0", now: t0 + .seconds(61)), .inUse(open: 1), "and a lower limit applies to new logins")
    }
}
