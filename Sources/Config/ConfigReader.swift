import Yams

/// Problems and warnings found while walking the YAML tree, in the order found.
struct Diagnostics {
    var problems: [ConfigProblem] = []
    var warnings: [ConfigProblem] = []

    mutating func problem(_ path: String, _ message: String, line: Int?) {
        problems.append(ConfigProblem(path: path, message: message, line: line))
    }

    mutating func warning(_ path: String, _ message: String, line: Int?) {
        warnings.append(ConfigProblem(path: path, message: message, line: line))
    }
}

extension Node {
    var line: Int? { mark?.line }

    /// A plain `~`, `null` or nothing at all (`key:` with no value).
    var isNull: Bool {
        if case .scalar = self { return tag.rawValue == Tag.Name.null.rawValue }
        return false
    }

    /// How the node is named in "expected …, got …" messages.
    var shortDescription: String {
        switch self {
        case .scalar(let scalar): isNull ? "nothing" : "\"\(scalar.string)\""
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }
}

/// One YAML mapping of the file, with its key path, checked against the keys it may have.
///
/// An absent or null section reads as empty, so `retention:` with every key
/// commented out means "all defaults".
struct Section {
    let path: String
    /// Where the section starts (its key in the parent, or the list item), for "missing key" problems.
    let line: Int?
    private var values: [String: Node] = [:]
    private var keyLines: [String: Int] = [:]

    /// Returns nil (after reporting it) when the node is there but is not a mapping.
    init?(_ node: Node?, path: String, line: Int?, keys: [String], into diagnostics: inout Diagnostics) {
        self.path = path
        self.line = line
        guard let node, !node.isNull else { return }
        guard case .mapping(let mapping) = node else {
            diagnostics.problem(path.isEmpty ? "" : path, "expected a mapping, got \(node.shortDescription)", line: node.line)
            return nil
        }
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                diagnostics.problem(path, "keys must be plain names, got \(key.shortDescription)", line: key.line)
                continue
            }
            let name = scalar.string
            guard keys.contains(name) else {
                diagnostics.problem(childPath(name), "unknown key", line: key.line)
                continue
            }
            values[name] = value
            keyLines[name] = key.line
        }
    }

    func childPath(_ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    subscript(key: String) -> Node? {
        values[key]
    }

    /// The line of `key:` itself; a block mapping's own mark is its first key, one line below.
    func line(ofKey key: String) -> Int? {
        keyLines[key] ?? values[key]?.line
    }

    /// The value, or nil after reporting that it is missing.
    func required(_ key: String, into diagnostics: inout Diagnostics) -> Node? {
        if let value = values[key], !value.isNull { return value }
        diagnostics.problem(childPath(key), "required key is missing", line: line(ofKey: key) ?? line)
        return nil
    }
}

/// Typed reads of scalar nodes; each reports its own problem and returns nil on failure.
extension Diagnostics {
    /// Any non-null scalar, as written (so `name: 110` is the string "110").
    mutating func string(_ node: Node, _ path: String) -> String? {
        guard case .scalar(let scalar) = node, !node.isNull else {
            problem(path, "expected a string, got \(node.shortDescription)", line: node.line)
            return nil
        }
        return scalar.string
    }

    /// YAML booleans only (`true`/`false`, and YAML 1.1's `yes`/`no`/`on`/`off`), not quoted strings.
    mutating func bool(_ node: Node, _ path: String) -> Bool? {
        if case .scalar = node, node.tag.rawValue == Tag.Name.bool.rawValue, let value = node.bool { return value }
        problem(path, "expected true or false, got \(node.shortDescription)", line: node.line)
        return nil
    }

    mutating func choice<E: RawRepresentable & CaseIterable>(_ node: Node, _ path: String, _ type: E.Type) -> E? where E.RawValue == String {
        oneOf(node, path, E.allCases.map(\.rawValue)).flatMap(E.init(rawValue:))
    }

    mutating func oneOf(_ node: Node, _ path: String, _ names: [String]) -> String? {
        if case .scalar(let scalar) = node, !node.isNull, names.contains(scalar.string) { return scalar.string }
        problem(path, "expected one of \(names.joined(separator: ", ")), got \(node.shortDescription)", line: node.line)
        return nil
    }

    /// A whole number in `range`, written as a plain YAML integer (`50`, not `"50"` or `5e1`).
    mutating func integer(_ node: Node, _ path: String, in range: ClosedRange<Int>) -> Int? {
        guard case .scalar(let scalar) = node, !node.isNull,
              !scalar.string.isEmpty, scalar.string.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              scalar.string.utf8.count <= 12, let value = Int(scalar.string) else {
            problem(path, "expected a whole number, got \(node.shortDescription)", line: node.line)
            return nil
        }
        guard range.contains(value) else {
            problem(path, "\(value) is out of range (\(range.lowerBound)...\(range.upperBound))", line: node.line)
            return nil
        }
        return value
    }

    /// The longest duration accepted anywhere: keeps timer arithmetic far from overflow.
    static let maximumDuration = Duration.seconds(24 * 3600)

    mutating func duration(_ node: Node, _ path: String, allowZero: Bool) -> Duration? {
        guard let text = string(node, path) else { return nil }
        guard let value = ValueParsers.duration(text) else {
            problem(path, "invalid duration \"\(text)\" (expected a whole number and a unit: 500ms, 30s, 10m, 1h)", line: node.line)
            return nil
        }
        if value == .zero && !allowZero {
            problem(path, "must be greater than 0", line: node.line)
            return nil
        }
        if value > Self.maximumDuration {
            problem(path, "\(text) is too long (at most 24h)", line: node.line)
            return nil
        }
        return value
    }

    mutating func address(_ node: Node, _ path: String, allowPortZero: Bool) -> ValueParsers.Address? {
        guard let text = string(node, path) else { return nil }
        switch ValueParsers.address(text, allowPortZero: allowPortZero) {
        case .success(let address):
            return address
        case .failure(let error):
            problem(path, error.message, line: node.line)
            return nil
        }
    }
}
