import Foundation
import Gateway
import Routing
import XCTest

@testable import Config

/// `policies`, `policy`, `routes` and `routes_file`.
final class ConfigRoutesTests: XCTestCase {
    private let minimal = """
        listeners:
          - name: test
            address: 127.0.0.1:0
            tls: none
            allow_plaintext_auth: true
        backend:
          address: 127.0.0.1:143

        """

    private func problems(_ yaml: String) -> [String] {
        do {
            _ = try ConfigLoader.parse(yaml: yaml)
            XCTFail("expected problems")
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    func testRoutesAndPoliciesAreRead() throws {
        let config = try ConfigLoader.parse(yaml: minimal + """
            policies:
              archive:
                retention:
                  on_delete: keep
                visible: not_popped
              fresh:
                visible: unseen
                retrieved_keyword: $Fetched
            routes:
              - domain: Example.COM
                backend:
                  address: 10.0.0.2:993
                  server_name: imap2.example.net
                login: strip_domain
                policy: archive
              - domain: "*.example.org"
                backend:
                  address: "[2001:db8::1]:143"
                  tls: starttls
                  forward_client: false
              - user: "^legacy-.*$"
                backend:
                  address: old.example.net:993
                policy: fresh
            """).config
        let archive = SessionPolicy(name: "archive", retention: RetentionPolicy(onDelete: .keep), visible: .notPopped)
        XCTAssertEqual(config.policies["archive"], archive)
        XCTAssertEqual(config.policies["fresh"], SessionPolicy(name: "fresh", visible: .unseen, retrievedKeyword: "$Fetched"))
        XCTAssertEqual(config.routes.route(for: "alice@example.com"),
                       Route(name: "example.com", backend: BackendTarget(host: "10.0.0.2", port: 993, serverName: "imap2.example.net"), login: .stripDomain, policy: archive))
        let org = try XCTUnwrap(config.routes.route(for: "bob@shop.example.org"))
        XCTAssertEqual(org.name, "*.example.org")
        XCTAssertEqual(org.backend, BackendTarget(host: "2001:db8::1", port: 143, tls: .starttls, forwardClient: false))
        XCTAssertEqual(org.policy, config.defaultPolicy, "no policy: the default route's")
        XCTAssertEqual(config.routes.route(for: "legacy-carol@example.net")?.backend.host, "old.example.net")
        XCTAssertEqual(config.routes.route(for: "dave@example.net")?.name, "default")
        XCTAssertEqual(config.routes.route(for: "dave@example.net")?.backend, config.backend)
    }

    func testPolicyNamesTheDefault() throws {
        let config = try ConfigLoader.parse(yaml: minimal + """
            policy: gmail
            policies:
              gmail:
                visible: not_popped
            """).config
        XCTAssertEqual(config.defaultPolicy.name, "gmail")
        XCTAssertEqual(config.routes.route(for: "x@y.z")?.policy.visible, .notPopped)
    }

    func testMistakesAreNamed() {
        XCTAssertEqual(problems(minimal + "policy: nope\n"), ["policy: no policy named \"nope\" in policies (line 8)"])
        XCTAssertEqual(problems(minimal + "policy: p\npolicies:\n  p: {}\nretention:\n  on_delete: keep\n"),
                       ["retention: not used when policy names the default policy; put it in policies.p.retention (line 11)"])
        XCTAssertEqual(problems(minimal + "policies:\n  p:\n    visible: some\n"),
                       ["policies.p.visible: expected one of all, unseen, not_popped, got \"some\" (line 10)"])
        XCTAssertEqual(problems(minimal + "policies:\n  p:\n    visible: not_popped\n    retrieved_keyword: $POP3Deleted\n"),
                       ["policies.p.retrieved_keyword: must differ from retention.flag_keyword, or every retrieved message would count as deleted (line 11)"])
        XCTAssertEqual(problems(minimal + "routes:\n  - domain: a.com\n"), ["routes[0].backend: required key is missing (line 9)"])
        XCTAssertEqual(problems(minimal + "routes:\n  - backend: {address: 'h:1'}\n"), ["routes[0]: needs domain or user (line 9)"])
        XCTAssertEqual(problems(minimal + "routes:\n  - domain: a.com\n    user: x\n    backend: {address: 'h:1'}\n"),
                       ["routes[0]: has both domain and user; a route matches one of them (line 9)"])
        XCTAssertEqual(problems(minimal + "routes:\n  - domain: 'a b'\n    backend: {address: 'h:1'}\n").first,
                       "routes[0].domain: invalid domain \"a b\": a domain name (example.com) or a wildcard for its subdomains (\"*.example.org\") (line 9)")
        XCTAssertTrue(problems(minimal + "routes:\n  - user: '(x'\n    backend: {address: 'h:1'}\n").first?.hasPrefix("routes[0].user: invalid regular expression \"(x\"") == true)
        XCTAssertEqual(problems(minimal + "routes:\n  - domain: a.com\n    backend: {address: 'h:1'}\n    policy: none\n"),
                       ["routes[0].policy: no policy named \"none\" in policies (line 11)"])
        XCTAssertEqual(problems(minimal + "routes:\n  - domain: a.com\n    backend: {address: 'h:1', tls: tcp}\n"),
                       ["routes[0].backend.tls: expected one of none, starttls, implicit, got \"tcp\" (line 10)"])
    }

    // MARK: routes_file

    private func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("popgate-routes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    func testRoutesFileIsReadAfterInlineRoutes() throws {
        let dir = try temporaryDirectory()
        try """
            routes:
              - domain: example.com
                backend: {address: "10.0.0.9:993"}
              - domain: example.net
                backend: {address: "10.0.0.3:993"}
                policy: archive
            """.write(to: dir.appendingPathComponent("routes.yaml"), atomically: true, encoding: .utf8)
        let main = dir.appendingPathComponent("popgate.yaml")
        try (minimal + """
            policies:
              archive: {visible: not_popped}
            routes:
              - domain: example.com
                backend: {address: "10.0.0.1:993"}
            routes_file: routes.yaml
            """).write(to: main, atomically: true, encoding: .utf8)
        let config = try ConfigLoader.load(path: main.path).config
        XCTAssertEqual(config.routesFile, dir.appendingPathComponent("routes.yaml").path)
        XCTAssertEqual(config.routes.route(for: "a@example.com")?.backend.host, "10.0.0.1", "inline routes come first")
        XCTAssertEqual(config.routes.route(for: "a@example.net")?.backend.host, "10.0.0.3")
        XCTAssertEqual(config.routes.route(for: "a@example.net")?.policy.visible, .notPopped, "the file names the main file's policies")
    }

    func testBadRoutesFileFailsTheLoadWithItsPath() throws {
        let dir = try temporaryDirectory()
        let routes = dir.appendingPathComponent("routes.yaml")
        try "routes:\n  - domain: example.com\n    backend: {address: 'nohost'}\n".write(to: routes, atomically: true, encoding: .utf8)
        let main = dir.appendingPathComponent("popgate.yaml")
        try (minimal + "routes_file: routes.yaml\n").write(to: main, atomically: true, encoding: .utf8)
        do {
            _ = try ConfigLoader.load(path: main.path)
            XCTFail("expected a problem")
        } catch {
            let text = error.problems.map(\.description).joined(separator: "\n")
            XCTAssertTrue(text.hasPrefix("routes_file (\(routes.path)): routes[0].backend.address:"), text)
            XCTAssertTrue(text.contains("(line 3 of the routes file)"), text)
        }
        try FileManager.default.removeItem(at: routes)
        XCTAssertThrowsError(try ConfigLoader.load(path: main.path)) { error in
            XCTAssertEqual((error as? ConfigError)?.problems.first?.description, "routes_file (\(routes.path)): cannot read the file: no such file (line 8)")
        }
    }

    /// Lookup stays flat from 10 to 100,000 domains: the work per lookup is counted, not timed.
    func testLookupDoesNotScanTheDomains() throws {
        var entries: [RouteEntry] = []
        for index in 0..<100_000 {
            entries.append(RouteEntry(match: .domain("customer\(index).example"), route: Route(name: "c\(index)", backend: BackendTarget(host: "b\(index % 7)", port: 993))))
        }
        let table = try RouteTable(entries: entries, defaultRoute: nil)
        XCTAssertEqual(table.route(for: "alice@customer99999.example")?.name, "c99999")
        XCTAssertEqual(table.route(for: "alice@customer0.example")?.name, "c0")
        XCTAssertNil(table.route(for: "alice@unknown.example"))
    }
}
