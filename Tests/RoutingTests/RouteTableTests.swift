import Gateway
import Routing
import XCTest

final class RouteTableTests: XCTestCase {
    func backend(_ host: String) -> BackendTarget { BackendTarget(host: host, port: 993) }
    func entry(_ match: RouteMatch, _ host: String) -> RouteEntry {
        RouteEntry(match: match, route: Route(name: match.description, backend: backend(host)))
    }

    func testExactDomainWildcardAndDefault() throws {
        let table = try RouteTable(entries: [
            entry(.domain("example.com"), "a"),
            entry(.domainSuffix("example.org"), "b"),
        ], defaultRoute: Route(backend: backend("default")))
        XCTAssertEqual(table.route(for: "alice@example.com")?.backend.host, "a")
        XCTAssertEqual(table.route(for: "Alice@EXAMPLE.Com")?.backend.host, "a", "domains compare case-insensitively")
        XCTAssertEqual(table.route(for: "bob@mail.example.org")?.backend.host, "b")
        XCTAssertEqual(table.route(for: "bob@a.b.example.org")?.backend.host, "b", "a wildcard takes any depth")
        XCTAssertEqual(table.route(for: "bob@example.org")?.backend.host, "default", "a wildcard does not take the domain itself")
        XCTAssertEqual(table.route(for: "carol@other.net")?.backend.host, "default")
        XCTAssertEqual(table.route(for: "carol")?.backend.host, "default", "no domain: the default")
        XCTAssertEqual(table.route(for: "x@y@example.com")?.backend.host, "a", "the domain is after the last @")
    }

    func testNoDefaultGivesNil() throws {
        let table = try RouteTable(entries: [entry(.domain("example.com"), "a")], defaultRoute: nil)
        XCTAssertNil(table.route(for: "alice@example.net"))
    }

    func testFirstListedEntryWinsAcrossKinds() throws {
        let table = try RouteTable(entries: [
            entry(.user("^legacy-.*$"), "legacy"),
            entry(.domain("example.com"), "a"),
            entry(.domainSuffix("com"), "com"),
            entry(.user(".*@example\\.com"), "late"),
        ], defaultRoute: nil)
        XCTAssertEqual(table.route(for: "legacy-bob@example.com")?.backend.host, "legacy", "the user pattern is listed first")
        XCTAssertEqual(table.route(for: "bob@example.com")?.backend.host, "a", "the domain is listed before the later pattern")
        XCTAssertEqual(table.route(for: "bob@shop.com")?.backend.host, "com")
        XCTAssertEqual(table.entry(for: "bob@example.com"), 1)
    }

    func testUserPatternMustMatchTheWholeLogin() throws {
        let table = try RouteTable(entries: [entry(.user("admin"), "admin")], defaultRoute: nil)
        XCTAssertEqual(table.route(for: "admin")?.backend.host, "admin")
        XCTAssertNil(table.route(for: "sysadmin"))
    }

    func testInvalidPatternIsAnError() {
        XCTAssertThrowsError(try RouteTable(entries: [entry(.user("(unclosed"), "x")], defaultRoute: nil))
        XCTAssertNotNil(routePatternProblem("(unclosed"))
        XCTAssertNil(routePatternProblem("^ok$"))
    }

    func testDomainPatterns() {
        XCTAssertEqual(RouteMatch.domainPattern("Example.COM"), .domain("example.com"))
        XCTAssertEqual(RouteMatch.domainPattern("*.example.org"), .domainSuffix("example.org"))
        XCTAssertEqual(RouteMatch.domainPattern("xn--bcher-kva.example"), .domain("xn--bcher-kva.example"))
        for bad in ["", "*.", "*", "a..b", ".a", "a.", "a b", "*.*.x", "exa*mple.com", "a@b"] {
            XCTAssertNil(RouteMatch.domainPattern(bad), bad)
        }
    }

    /// A duplicate domain keeps its first entry, as a first-match list would.
    func testDuplicateDomainKeepsTheFirst() throws {
        let table = try RouteTable(entries: [entry(.domain("example.com"), "first"), entry(.domain("example.com"), "second")], defaultRoute: nil)
        XCTAssertEqual(table.route(for: "a@example.com")?.backend.host, "first")
    }

    func testLoginRewrite() {
        XCTAssertEqual(LoginRewrite.stripDomain.apply(to: "alice@example.com"), "alice")
        XCTAssertEqual(LoginRewrite.stripDomain.apply(to: "a@b@example.com"), "a@b")
        XCTAssertEqual(LoginRewrite.stripDomain.apply(to: "alice"), "alice")
        XCTAssertEqual(LoginRewrite.asIs.apply(to: "alice@example.com"), "alice@example.com")
    }
}
