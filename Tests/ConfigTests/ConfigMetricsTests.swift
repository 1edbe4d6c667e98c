import XCTest

@testable import Config

final class ConfigMetricsTests: XCTestCase {
    private let base = """
        listeners:
          - name: pop3
            address: 127.0.0.1:1110
            tls: none
            allow_plaintext_auth: true
        backend:
          address: 127.0.0.1:143
          tls: none

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

    func testAbsentMeansNoMetrics() throws {
        XCTAssertNil(try ConfigLoader.parse(yaml: base).config.metrics)
    }

    func testAddressIsRead() throws {
        XCTAssertEqual(try ConfigLoader.parse(yaml: base + "metrics:\n  address: 127.0.0.1:9110\n").config.metrics,
                       PopGateConfig.Metrics(host: "127.0.0.1", port: 9110))
        XCTAssertEqual(try ConfigLoader.parse(yaml: base + "metrics: {address: \"[::1]:9110\"}\n").config.metrics,
                       PopGateConfig.Metrics(host: "::1", port: 9110))
        XCTAssertEqual(try ConfigLoader.parse(yaml: base + "metrics:\n  address: localhost:0\n").config.metrics,
                       PopGateConfig.Metrics(host: "localhost", port: 0))
    }

    func testProblemsNameTheirKeys() {
        XCTAssertEqual(problems(base + "metrics:\n  port: 9110\n"), [
            "metrics.address: required key is missing (line 9)",
            "metrics.port: unknown key (line 10)",
        ])
        XCTAssertEqual(problems(base + "metrics:\n  address: 127.0.0.1\n").count, 1)
        XCTAssertTrue(problems(base + "metrics:\n  address: 127.0.0.1\n")[0].contains("metrics.address"))
        XCTAssertTrue(problems(base + "metrics: 9110\n")[0].contains("metrics: expected a mapping"))
        XCTAssertTrue(problems(base + "metrics:\n")[0].contains("metrics: missing value"))
        XCTAssertEqual(problems(base + "metrics:\n  address: 127.0.0.1:1110\n"), ["metrics.address: the same address as listeners[0] (line 10)"])
    }

    func testAListenerMayNotBeNamedMetrics() {
        let yaml = base.replacingOccurrences(of: "name: pop3", with: "name: metrics") + "metrics:\n  address: 127.0.0.1:9110\n"
        XCTAssertEqual(problems(yaml).count, 1)
        XCTAssertTrue(problems(yaml)[0].contains("listeners[0].name: the name \"metrics\" is the metrics listener's"), problems(yaml)[0])
        // Without a metrics section the name is free.
        XCTAssertNoThrow(try ConfigLoader.parse(yaml: base.replacingOccurrences(of: "name: pop3", with: "name: metrics")))
    }
}
