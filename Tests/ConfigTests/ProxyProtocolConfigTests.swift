import Wire
import XCTest

@testable import Config

/// `listeners[].proxy_protocol` and `proxy_trusted_networks`.
final class ProxyProtocolConfigTests: XCTestCase {
    private let listener = """
        listeners:
          - name: behind-haproxy
            address: 127.0.0.1:0
            tls: none
            allow_plaintext_auth: true
            proxy_protocol: true
          - name: direct
            address: 127.0.0.1:1
            tls: none
            allow_plaintext_auth: true
        backend:
          address: 127.0.0.1:143
        """

    private func descriptions(_ yaml: String) -> [String] {
        do {
            let loaded = try ConfigLoader.parse(yaml: yaml)
            XCTFail("expected problems, got \(loaded.config)")
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    func testParsed() throws {
        let loaded = try ConfigLoader.parse(yaml: listener + """

            proxy_trusted_networks: ["10.0.0.0/8", "192.0.2.7", "2001:db8::/64", "::1"]
            """)
        XCTAssertEqual(loaded.config.listeners.map(\.proxyProtocol), [true, false])
        XCTAssertEqual(loaded.config.proxyTrustedNetworks.map(\.description), ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/64", "::1/128"])
        XCTAssertEqual(loaded.warnings.filter { $0.description.contains("proxy") }, [])
    }

    func testOffByDefault() throws {
        let loaded = try ConfigLoader.parse(yaml: """
            listeners: [{name: p, address: "127.0.0.1:0", tls: none, allow_plaintext_auth: true}]
            backend: {address: "127.0.0.1:143"}
            """)
        XCTAssertEqual(loaded.config.listeners.map(\.proxyProtocol), [false])
        XCTAssertEqual(loaded.config.proxyTrustedNetworks, [])
    }

    func testProxyListenerNeedsTrustedNetworks() {
        XCTAssertEqual(descriptions(listener), [
            "listeners[0].proxy_protocol: true needs proxy_trusted_networks: the addresses of the proxies allowed to send the PROXY header (e.g. [\"10.0.0.5/32\"]) (line 1)",
        ])
        XCTAssertEqual(descriptions(listener + "\nproxy_trusted_networks: []"), [
            "listeners[0].proxy_protocol: true needs proxy_trusted_networks: the list is empty, so every connection would be refused (line 13)",
        ])
    }

    func testBadNetworks() {
        XCTAssertEqual(descriptions(listener + """

            proxy_trusted_networks: ["10.0.0.1/8", "fe80::1%eth0", "10.0.0.0/33", "proxy.example.net", 5]
            """), [
            "proxy_trusted_networks[0]: invalid network \"10.0.0.1/8\": bits are set after the /8 prefix (the network is 10.0.0.0/8) (line 13)",
            "proxy_trusted_networks[1]: invalid network \"fe80::1%eth0\": zone identifiers (\"%\" and an interface) are not supported (line 13)",
            "proxy_trusted_networks[2]: invalid network \"10.0.0.0/33\": the prefix length after \"/\" must be a number 0...32 (line 13)",
            "proxy_trusted_networks[3]: invalid network \"proxy.example.net\": unexpected character \"p\" in an IPv4 address (line 13)",
            "proxy_trusted_networks[4]: invalid network \"5\": an IPv4 address is four numbers separated by dots, e.g. 192.0.2.1 (line 13)",
        ])
        XCTAssertEqual(descriptions(listener + "\nproxy_trusted_networks: 10.0.0.0/8"), [
            "proxy_trusted_networks: expected a list of networks such as [\"10.0.0.0/24\", \"2001:db8::/64\"], got \"10.0.0.0/8\" (line 13)",
        ])
        XCTAssertEqual(descriptions(listener.replacingOccurrences(of: "proxy_protocol: true", with: "proxy_protocol: maybe") + "\nproxy_trusted_networks: [\"::1\"]").count, 1)
    }

    func testUnusedNetworksWarn() throws {
        let loaded = try ConfigLoader.parse(yaml: """
            listeners: [{name: p, address: "127.0.0.1:0", tls: none, allow_plaintext_auth: true}]
            backend: {address: "127.0.0.1:143"}
            proxy_trusted_networks: ["127.0.0.1"]
            """)
        XCTAssertEqual(loaded.warnings.map(\.description).filter { $0.contains("proxy") }, ["proxy_trusted_networks: not used: no listener has proxy_protocol: true (line 3)"])
    }
}
