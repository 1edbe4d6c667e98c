import Config
import Foundation
import XCTest

/// The key lists in the code, the manual page popgate.yaml(5) and conf/popgate.yaml agree: a key
/// the validator accepts but the manual does not document fails here.
final class ConfigSchemaTests: XCTestCase {
    private static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    private func read(_ relativePath: String) throws -> String {
        try String(contentsOf: Self.repository.appendingPathComponent(relativePath), encoding: .utf8)
    }

    /// The key paths the manual documents: each key is a `.TP` paragraph tag `.B <key path>`.
    private func documentedKeyPaths() throws -> [String] {
        let lines = try read("docs/man/popgate.yaml.5").split(separator: "\n", omittingEmptySubsequences: false)
        var keys: [String] = []
        for (index, line) in lines.enumerated() where line == ".TP" && index + 1 < lines.count {
            let tag = lines[index + 1]
            if tag.hasPrefix(".B ") { keys.append(String(tag.dropFirst(3))) }
        }
        return keys
    }

    func testEveryAcceptedKeyIsDocumentedInTheManualPage() throws {
        let documented = Set(try documentedKeyPaths())
        let missing = ConfigSchema.keyPaths.filter { !documented.contains($0) }
        XCTAssertEqual(missing, [], "accepted by Sources/Config/ConfigValidator.swift but not documented in docs/man/popgate.yaml.5 (add a .TP/.B entry)")
    }

    func testTheManualPageDocumentsNoUnknownKey() throws {
        let known = Set(ConfigSchema.keyPaths)
        let documented = try documentedKeyPaths()
        XCTAssertEqual(documented.filter { !known.contains($0) }, [], "documented in docs/man/popgate.yaml.5 but not accepted")
        XCTAssertEqual(documented.count, Set(documented).count, "a key documented twice")
    }

    /// A key list added to the validator without an entry in ConfigSchema.sections would let its
    /// keys escape the check above: every `static let ...Keys` array's keys must be in the schema.
    func testEveryKeyListOfTheValidatorIsInTheSchema() throws {
        let source = try read("Sources/Config/ConfigValidator.swift")
        let declaration = try NSRegularExpression(pattern: #"static\s+let\s+(\w+Keys)\s*(?::[^=]*)?=\s*\[([^\]]*)\]"#)
        let literal = try NSRegularExpression(pattern: #""([^"]*)""#)
        let matches = declaration.matches(in: source, range: NSRange(source.startIndex..., in: source))
        XCTAssertGreaterThanOrEqual(matches.count, 9, "the key lists were not found in ConfigValidator.swift")
        let schemaKeys = Set(ConfigSchema.sections.flatMap(\.keys))
        for match in matches {
            let name = String(source[Range(match.range(at: 1), in: source)!])
            let body = String(source[Range(match.range(at: 2), in: source)!])
            let keys = literal.matches(in: body, range: NSRange(body.startIndex..., in: body)).map {
                String(body[Range($0.range(at: 1), in: body)!])
            }
            XCTAssertFalse(keys.isEmpty, name)
            for key in keys {
                XCTAssertTrue(schemaKeys.contains(key), "ConfigValidator.\(name) has \"\(key)\", which ConfigSchema.sections does not list")
            }
        }
    }

    func testKeyPathsNameTheirSection() {
        XCTAssertTrue(ConfigSchema.keyPaths.contains("listeners[].allow_plaintext_auth"))
        XCTAssertTrue(ConfigSchema.keyPaths.contains("backend.forward_client"))
        XCTAssertTrue(ConfigSchema.keyPaths.contains("uidl_format"))
        XCTAssertTrue(ConfigSchema.keyPaths.contains("policies.<name>.visible"))
        XCTAssertTrue(ConfigSchema.keyPaths.contains("routes[].domain"))
        // Every section other than the top level is a key of the top level (a list's entries `[]`, a
        // mapping's named entries `.<name>`).
        let roots = Set(ConfigSchema.sections[0].keys)
        for section in ConfigSchema.sections.dropFirst() {
            let root = section.path.replacingOccurrences(of: "[]", with: "").replacingOccurrences(of: ".<name>", with: "")
            XCTAssertTrue(roots.contains(root), section.path)
        }
    }

    /// The example configuration the package installs as /etc/popgate/popgate.yaml is valid.
    func testTheExampleConfigurationIsValid() throws {
        let yaml = try read("conf/popgate.yaml")
        XCTAssertNoThrow(try ConfigLoader.parse(yaml: yaml, file: "conf/popgate.yaml"))
    }
}
