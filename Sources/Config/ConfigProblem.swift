/// One thing wrong with (or worth a warning about) a configuration file.
///
/// `path` is the key path in the file (`listeners[1].tls`, `retention.on_delete`;
/// list indexes count from 0), or empty for the file as a whole (unreadable,
/// empty, YAML syntax error).
public struct ConfigProblem: Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var message: String
    /// 1-based line in the file, when known.
    public var line: Int?

    public init(path: String, message: String, line: Int? = nil) {
        self.path = path
        self.message = message
        self.line = line
    }

    /// `listeners[1].tls: expected one of none, starttls, implicit, got "ssl" (line 7)`
    public var description: String {
        var text = path.isEmpty ? message : "\(path): \(message)"
        if let line { text += " (line \(line))" }
        return text
    }
}

/// Every problem found in one configuration file, not just the first.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file as named by the caller (`<string>` for `ConfigLoader.parse` by default).
    public var file: String
    public var problems: [ConfigProblem]

    public init(file: String, problems: [ConfigProblem]) {
        self.file = file
        self.problems = problems
    }

    /// One `FILE: key.path: message` line per problem, as `popgate check-config` prints them.
    public var description: String {
        problems.map { "\(file): \($0)" }.joined(separator: "\n")
    }
}

/// A valid configuration and what is legal but worth telling the operator.
public struct LoadedConfig: Sendable, Equatable {
    public var config: PopGateConfig
    /// E.g. `timeouts.idle` below RFC 1939's 10 minutes, `backend.tls: none`.
    public var warnings: [ConfigProblem]

    public init(config: PopGateConfig, warnings: [ConfigProblem] = []) {
        self.config = config
        self.warnings = warnings
    }
}
