import Foundation
import Gateway
import Routing
import Yams

/// Reads `popgate.yaml` (format: `config-format.md`, example: `conf/popgate.yaml`).
///
/// Every problem is collected, not just the first, so one `popgate check-config`
/// run lists all of them:
/// ```
/// /etc/popgate/popgate.yaml: listeners[0].tls: expected one of none, starttls, implicit, got "ssl" (line 4)
/// /etc/popgate/popgate.yaml: retention.unknown_key: unknown key (line 17)
/// ```
public enum ConfigLoader {
    /// Parses and validates; collects ALL problems (not just the first) and throws them together.
    /// Paths in the text are kept as written and not checked.
    public static func parse(yaml: String, file: String = "<string>") throws(ConfigError) -> LoadedConfig {
        let outcome = validate(yaml: yaml)
        guard let config = outcome.config, outcome.problems.isEmpty else {
            throw ConfigError(file: file, problems: ordered(outcome.problems))
        }
        return LoadedConfig(config: config, warnings: ordered(outcome.warnings))
    }

    /// Reads the file; also checks that tls.certificate, tls.key and backend.ca_file exist
    /// and are readable (problem on that key otherwise).
    ///
    /// Relative paths in the file are taken relative to the file's own directory
    /// (a daemon's working directory is rarely where its configuration lives), and
    /// the returned config holds them resolved.
    public static func load(path: String) throws(ConfigError) -> LoadedConfig {
        let text: String
        switch readText(atPath: path) {
        case .success(let contents): text = contents
        case .failure(let problem): throw ConfigError(file: path, problems: [ConfigProblem(path: "", message: "cannot read the file: \(problem.message)")])
        }
        var outcome = validate(yaml: text)
        let directory = (path as NSString).deletingLastPathComponent
        var routesFileEntries: [RouteEntry] = []
        if let config = outcome.config, let file = config.routesFile {
            // The routes file is part of the configuration: its problems fail the load (and a reload,
            // which then keeps the old table), named `routes_file (<path>): routes[3].domain`.
            let resolved = resolve(file, relativeTo: directory)
            let line = outcome.files.first { $0.keyPath == "routes_file" }?.line
            outcome.files.removeAll { $0.keyPath == "routes_file" }
            switch loadRoutesFile(resolved, policies: config.policies, defaultPolicy: config.defaultPolicy) {
            case .success(let entries):
                routesFileEntries = entries
            case .failure(let failure):
                let problems = failure.problems
                outcome.problems += problems.map { problem in
                    let message = problem.line.map { "\(problem.message) (line \($0) of the routes file)" } ?? problem.message
                    return ConfigProblem(path: "routes_file (\(resolved))" + (problem.path.isEmpty ? "" : ": \(problem.path)"), message: message, line: line)
                }
            }
        }
        for reference in outcome.files {
            let resolved = resolve(reference.value, relativeTo: directory)
            if let problem = fileProblem(atPath: resolved) {
                let shown = resolved == reference.value ? "\"\(resolved)\"" : "\"\(reference.value)\" (\(resolved))"
                outcome.problems.append(ConfigProblem(path: reference.keyPath, message: "\(shown): \(problem)", line: reference.line))
            }
        }
        guard var config = outcome.config, outcome.problems.isEmpty else {
            throw ConfigError(file: path, problems: ordered(outcome.problems))
        }
        if let tls = config.tls {
            config.tls = PopGateConfig.ServerTLS(
                certificate: resolve(tls.certificate, relativeTo: directory),
                key: resolve(tls.key, relativeTo: directory)
            )
        }
        config.backend.caFile = config.backend.caFile.map { resolve($0, relativeTo: directory) }
        config.routesFile = config.routesFile.map { resolve($0, relativeTo: directory) }
        var entries = config.routes.entries + routesFileEntries
        for index in entries.indices {
            entries[index].route.backend.caFile = entries[index].route.backend.caFile.map { resolve($0, relativeTo: directory) }
        }
        do {
            config.routes = try RouteTable(entries: entries, defaultRoute: PopGateConfig.defaultRoute(backend: config.backend, policy: config.defaultPolicy))
        } catch {
            throw ConfigError(file: path, problems: [ConfigProblem(path: "routes", message: error.description)])
        }
        return LoadedConfig(config: config, warnings: ordered(outcome.warnings))
    }

    /// Reads and validates a `routes_file`; ca_file paths in it are checked (relative to its directory).
    static func loadRoutesFile(_ path: String, policies: [String: SessionPolicy], defaultPolicy: SessionPolicy) -> Result<[RouteEntry], RoutesFileProblems> {
        let text: String
        switch readText(atPath: path) {
        case .success(let contents): text = contents
        case .failure(let problem): return .failure(RoutesFileProblems([ConfigProblem(path: "", message: "cannot read the file: \(problem.message)")]))
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text, .default, .default, .utf8)
        } catch {
            return .failure(RoutesFileProblems([yamlProblem(error, yaml: text)]))
        }
        guard let root, !root.isNull else { return .success([]) }
        let outcome = ConfigValidator.validateRoutesFile(root: root, policies: policies, defaultPolicy: defaultPolicy)
        var problems = outcome.problems
        let directory = (path as NSString).deletingLastPathComponent
        guard var entries = outcome.entries, problems.isEmpty else { return .failure(RoutesFileProblems(ordered(problems))) }
        for index in entries.indices {
            guard let caFile = entries[index].route.backend.caFile else { continue }
            let resolved = resolve(caFile, relativeTo: directory)
            if let problem = fileProblem(atPath: resolved) {
                problems.append(ConfigProblem(path: "routes[\(index)].backend.ca_file", message: "\"\(resolved)\": \(problem)"))
            }
            entries[index].route.backend.caFile = resolved
        }
        return problems.isEmpty ? .success(entries) : .failure(RoutesFileProblems(problems))
    }

    struct RoutesFileProblems: Error {
        var problems: [ConfigProblem]
        init(_ problems: [ConfigProblem]) { self.problems = problems }
    }

    /// `500ms`, `30s`, `10m`, `1h` (a whole number and one unit) or `0` alone; nil otherwise.
    public static func parseDuration(_ text: String) -> Duration? {
        ValueParsers.duration(text)
    }

    // MARK: - Internals

    static func validate(yaml: String) -> ConfigValidator.Outcome {
        let root: Node?
        do {
            // UTF-8 explicitly: the default consults (and prints about) an environment variable.
            root = try Yams.compose(yaml: yaml, .default, .default, .utf8)
        } catch {
            return ConfigValidator.Outcome(config: nil, problems: [yamlProblem(error, yaml: yaml)], warnings: [], files: [])
        }
        guard let root, !root.isNull else {
            let problem = ConfigProblem(path: "", message: "the configuration is empty; it needs at least \"listeners\" and \"backend\" (see conf/popgate.yaml)")
            return ConfigValidator.Outcome(config: nil, problems: [problem], warnings: [], files: [])
        }
        return ConfigValidator.validate(root: root)
    }

    /// File order; problems without a line (the file as a whole) first.
    private static func ordered(_ problems: [ConfigProblem]) -> [ConfigProblem] {
        problems.enumerated()
            .sorted { ($0.element.line ?? 0, $0.offset) < ($1.element.line ?? 0, $1.offset) }
            .map(\.element)
    }

    private static func yamlProblem(_ error: any Error, yaml: String) -> ConfigProblem {
        guard let error = error as? YamlError else {
            return ConfigProblem(path: "", message: "YAML error: \(error)")
        }
        switch error {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            var message = "YAML syntax error: "
            if let context, problem.hasPrefix("but ") {
                message += "\(context.text) \(problem)"
            } else if let context {
                message += "\(problem) (\(context.text) starting on line \(context.mark.line))"
            } else {
                message += problem
            }
            if looksLikeUnquotedIPv6(line: mark.line, in: yaml) {
                message += "; an IPv6 address must be quoted: address: \"[::]:110\""
            }
            return ConfigProblem(path: "", message: message, line: mark.line)
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { "\"\($0)\"" }.joined(separator: ", ")
            return ConfigProblem(path: "", message: "duplicate key \(keys) in one mapping", line: context.mark.line > 0 ? context.mark.line : nil)
        case .reader(let problem, _, _, _):
            return ConfigProblem(path: "", message: "YAML reader error: \(problem)")
        default:
            return ConfigProblem(path: "", message: "YAML error: \(error)")
        }
    }

    /// `address: [::]:110` is a YAML flow list followed by junk, the commonest
    /// way to trip over YAML here.
    private static func looksLikeUnquotedIPv6(line: Int, in yaml: String) -> Bool {
        guard line >= 1 else { return false }
        let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
        guard line <= lines.count else { return false }
        let text = lines[line - 1]
        guard let open = text.firstIndex(of: "["), text[open...].contains("]:") else { return false }
        return text[..<open].trimmingCharacters(in: .whitespaces).hasSuffix(":")
    }

    private struct FileProblem: Error {
        var message: String
    }

    private static func readText(atPath path: String) -> Result<String, FileProblem> {
        if let problem = fileProblem(atPath: path) { return .failure(FileProblem(message: problem)) }
        guard let data = FileManager.default.contents(atPath: path) else {
            return .failure(FileProblem(message: "read error"))
        }
        guard let text = String(data: data, encoding: .utf8) else {
            return .failure(FileProblem(message: "not UTF-8 text"))
        }
        return .success(text)
    }

    /// Why the file at `path` cannot be read, or nil when it can.
    private static func fileProblem(atPath path: String) -> String? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return "no such file" }
        if isDirectory.boolValue { return "is a directory, not a file" }
        guard FileManager.default.isReadableFile(atPath: path) else { return "not readable (permission denied)" }
        return nil
    }

    private static func resolve(_ path: String, relativeTo directory: String) -> String {
        if path.hasPrefix("/") || directory.isEmpty { return path }
        return directory.hasSuffix("/") ? directory + path : directory + "/" + path
    }
}
