import Config
import XCTest

/// The keys that systemd-style operation adds: `log.target` and `timeouts.drain`.
final class ConfigOperationsTests: XCTestCase {
    private let base = """
        listeners:
          - name: test
            address: 127.0.0.1:0
            tls: none
            allow_plaintext_auth: true
        backend:
          address: 127.0.0.1:143

        """

    func testDefaults() throws {
        let config = try ConfigLoader.parse(yaml: base).config
        XCTAssertEqual(config.logTarget, .auto)
        XCTAssertEqual(config.drainTimeout, .seconds(30))
    }

    func testExplicitValues() throws {
        let config = try ConfigLoader.parse(yaml: base + "log:\n  target: journal\n  level: debug\ntimeouts:\n  drain: 0s\n").config
        XCTAssertEqual(config.logTarget, .journal)
        XCTAssertEqual(config.logLevel, "debug")
        XCTAssertEqual(config.drainTimeout, .zero)
    }

    func testBadValuesNameTheirKeys() {
        XCTAssertThrowsError(try ConfigLoader.parse(yaml: base + "log:\n  target: syslog\ntimeouts:\n  drain: soon\n")) { error in
            let text = (error as? ConfigError)?.problems.map(\.description).joined(separator: "\n") ?? ""
            XCTAssertTrue(text.contains("log.target: expected one of auto, journal, stderr, got \"syslog\""), text)
            XCTAssertTrue(text.contains("timeouts.drain: invalid duration \"soon\""), text)
        }
    }
}
