import XCTest

import Config

final class ConfigProblemTests: XCTestCase {
    func testProblemDescription() {
        XCTAssertEqual(ConfigProblem(path: "listeners[1].tls", message: "expected one of none, starttls, implicit, got \"ssl\"").description,
                       "listeners[1].tls: expected one of none, starttls, implicit, got \"ssl\"")
        XCTAssertEqual(ConfigProblem(path: "timeouts.idle", message: "invalid duration \"ten\"", line: 12).description,
                       "timeouts.idle: invalid duration \"ten\" (line 12)")
        XCTAssertEqual(ConfigProblem(path: "", message: "YAML syntax error: x", line: 3).description, "YAML syntax error: x (line 3)")
    }

    func testErrorDescriptionPrefixesEachProblemWithTheFile() {
        let error = ConfigError(file: "popgate.yaml", problems: [
            ConfigProblem(path: "retention.unknown_key", message: "unknown key", line: 4),
            ConfigProblem(path: "backend", message: "required key is missing"),
        ])
        XCTAssertEqual(error.description, "popgate.yaml: retention.unknown_key: unknown key (line 4)\npopgate.yaml: backend: required key is missing")
    }
}
