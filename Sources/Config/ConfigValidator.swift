import Gateway
import Yams

/// Walks the composed YAML tree section by section, collecting every problem.
/// Produces a config only when there is none.
struct ConfigValidator {
    /// A path in the file that `ConfigLoader.load` must find readable.
    struct FileReference: Equatable {
        var keyPath: String
        var value: String
        var line: Int?
    }

    struct Outcome {
        var config: PopGateConfig?
        var problems: [ConfigProblem]
        var warnings: [ConfigProblem]
        var files: [FileReference]
    }

    static let rootKeys = ["listeners", "tls", "backend", "mailbox", "uidl_format", "retention", "timeouts", "auth", "limits", "log"]
    static let listenerKeys = ["name", "address", "tls", "allow_plaintext_auth"]
    static let tlsKeys = ["certificate", "key"]
    static let backendKeys = ["address", "tls", "ca_file", "server_name", "verify_certificate", "forward_client"]
    /// `retention.move_to: auto`, the default: the folder is found at login.
    static let autoMoveTo = "auto"
    static let retentionKeys = ["on_retrieve", "on_delete", "move_to", "flag_keyword"]
    static let timeoutKeys = ["idle", "backend", "drain", "login", "flush"]
    static let authKeys = ["failure_delay", "failure_delay_max", "penalty_expiry"]
    static let limitKeys = ["connections", "connections_per_ip", "tracked_ips", "max_auth_failures", "max_messages", "output_buffer", "sessions_per_user", "login_interval"]
    static let logKeys = ["level", "target"]

    /// RFC 1939 §3: "at least 10 minutes".
    static let recommendedMinimumIdle = Duration.seconds(600)

    private var diagnostics = Diagnostics()
    /// `timeouts.drain`, read with the other timeouts.
    private var drain: Duration? = PopGateConfig.defaultDrain
    /// Read with the sections they are written in, assembled in `read(root:)`.
    private var clientLimits: PopGateConfig.ClientLimits? = PopGateConfig.ClientLimits()
    private var loginTimeout: Duration? = GatewaySettings().loginTimeout
    private var forwardClient: Bool? = true
    private var sessionLimits: GatewaySettings.Limits? = GatewaySettings.Limits()
    private var files: [FileReference] = []

    static func validate(root: Node) -> Outcome {
        var validator = ConfigValidator()
        let config = validator.read(root: root)
        let problems = validator.diagnostics.problems
        return Outcome(
            config: problems.isEmpty ? config : nil,
            problems: problems,
            warnings: validator.diagnostics.warnings,
            files: validator.files
        )
    }

    // MARK: Root

    private mutating func read(root: Node) -> PopGateConfig? {
        guard case .mapping = root else {
            diagnostics.problem("", "expected a mapping of settings at the top level, got \(root.shortDescription)", line: root.line)
            return nil
        }
        guard let section = Section(root, path: "", line: nil, keys: Self.rootKeys, into: &diagnostics) else { return nil }

        let listeners = readListeners(section)
        let tls = readServerTLS(section, listeners: listeners ?? [])
        let backend = readBackend(section)
        readLimits(section)
        let gateway = readGatewaySettings(section, backend: backend)
        let (logLevel, logTarget) = readLog(section)

        guard let listeners, let tls, let backend, var gateway, let logLevel, let logTarget, let drain,
              let clientLimits, let loginTimeout, let forwardClient, let sessionLimits else { return nil }
        gateway.loginTimeout = loginTimeout
        gateway.forwardClient = forwardClient
        gateway.limits = sessionLimits
        return PopGateConfig(listeners: listeners, tls: tls.value, backend: backend, gateway: gateway, logLevel: logLevel, logTarget: logTarget, drainTimeout: drain, clientLimits: clientLimits)
    }

    // MARK: listeners

    private mutating func readListeners(_ root: Section) -> [PopGateConfig.Listener]? {
        guard let node = root.required("listeners", into: &diagnostics) else { return nil }
        guard case .sequence(let items) = node else {
            diagnostics.problem("listeners", "expected a list of listeners, got \(node.shortDescription)", line: node.line)
            return nil
        }
        guard !items.isEmpty else {
            diagnostics.problem("listeners", "at least one listener is required", line: node.line)
            return nil
        }
        var listeners: [PopGateConfig.Listener] = []
        var failed = false
        var indexByName: [String: Int] = [:]
        var indexByAddress: [ValueParsers.Address: Int] = [:]
        for (index, item) in items.enumerated() {
            let path = "listeners[\(index)]"
            guard let section = Section(item, path: path, line: item.line, keys: Self.listenerKeys, into: &diagnostics) else {
                failed = true
                continue
            }
            var name: String?
            if let node = section.required("name", into: &diagnostics), let text = diagnostics.string(node, section.childPath("name")) {
                if !ValueParsers.isValidListenerName(text) {
                    diagnostics.problem(section.childPath("name"), "invalid listener name \"\(text)\": use only letters, digits, \"_\", \".\" and \"-\"", line: node.line)
                } else if let other = indexByName[text] {
                    diagnostics.problem(section.childPath("name"), "duplicate listener name \"\(text)\" (also listeners[\(other)])", line: node.line)
                } else {
                    indexByName[text] = index
                    name = text
                }
            }
            var address: ValueParsers.Address?
            if let node = section.required("address", into: &diagnostics) {
                address = diagnostics.address(node, section.childPath("address"), allowPortZero: true)
                if let parsed = address, parsed.port != 0 {
                    if let other = indexByAddress[parsed] {
                        diagnostics.problem(section.childPath("address"), "the same address as listeners[\(other)]", line: node.line)
                        address = nil
                    } else {
                        indexByAddress[parsed] = index
                    }
                }
            }
            let tls = optional(section, "tls", default: PopGateConfig.ListenerTLS.starttls) { d, node, path in
                d.choice(node, path, PopGateConfig.ListenerTLS.self)
            }
            let allowPlaintextAuth = optional(section, "allow_plaintext_auth", default: false) { d, node, path in
                d.bool(node, path)
            }
            guard let name, let address, let tls, let allowPlaintextAuth else {
                failed = true
                continue
            }
            if tls == .none {
                if allowPlaintextAuth {
                    diagnostics.warning(path, "tls none with allow_plaintext_auth: clients send passwords in clear text; use only on a trusted network or loopback", line: item.line)
                } else {
                    diagnostics.warning(path, "tls none without allow_plaintext_auth: no client can log in on this listener", line: item.line)
                }
            }
            listeners.append(PopGateConfig.Listener(name: name, host: address.host, port: address.port, tls: tls, allowPlaintextAuth: allowPlaintextAuth))
        }
        return failed ? nil : listeners
    }

    // MARK: tls

    /// `.some(nil)` is a valid "no TLS section"; `nil` is a problem.
    private mutating func readServerTLS(_ root: Section, listeners: [PopGateConfig.Listener]) -> Wrapped<PopGateConfig.ServerTLS?>? {
        let user = listeners.first { $0.tls != .none }
        let node = root["tls"]
        guard let node, !node.isNull else {
            if let user {
                diagnostics.problem("tls", "required because listener \"\(user.name)\" has tls \(user.tls.rawValue)", line: root.line(ofKey: "tls"))
                return nil
            }
            return Wrapped(nil)
        }
        guard let section = Section(node, path: "tls", line: root.line(ofKey: "tls"), keys: Self.tlsKeys, into: &diagnostics) else { return nil }
        let certificate = requiredPath(section, "certificate")
        let key = requiredPath(section, "key")
        if user == nil && !listeners.isEmpty {
            diagnostics.warning("tls", "not used: no listener has tls starttls or implicit", line: root.line(ofKey: "tls"))
        }
        guard let certificate, let key else { return nil }
        return Wrapped(PopGateConfig.ServerTLS(certificate: certificate, key: key))
    }

    // MARK: backend

    private mutating func readBackend(_ root: Section) -> PopGateConfig.Backend? {
        guard let node = root.required("backend", into: &diagnostics) else { return nil }
        guard let section = Section(node, path: "backend", line: root.line(ofKey: "backend"), keys: Self.backendKeys, into: &diagnostics) else { return nil }
        var address: ValueParsers.Address?
        if let node = section.required("address", into: &diagnostics) {
            address = diagnostics.address(node, section.childPath("address"), allowPortZero: false)
        }
        let tls = optional(section, "tls", default: PopGateConfig.BackendTLS.implicit) { d, node, path in
            d.choice(node, path, PopGateConfig.BackendTLS.self)
        }
        let caFile = optional(section, "ca_file", default: String?.none) { d, node, path in
            Self.nonEmptyPath(&d, node, path).map { .some($0) }
        }
        if case .some(.some(let caFile)) = caFile, let node = section["ca_file"] {
            files.append(FileReference(keyPath: section.childPath("ca_file"), value: caFile, line: node.line))
        }
        let serverName = optional(section, "server_name", default: String?.none) { d, node, path in
            guard let text = d.string(node, path) else { return nil }
            guard !text.isEmpty, text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F }) else {
                d.problem(path, "invalid server name \"\(text)\": must be non-empty, without spaces or control characters", line: node.line)
                return nil
            }
            return .some(text)
        }
        let verify = optional(section, "verify_certificate", default: true) { d, node, path in
            d.bool(node, path)
        }
        forwardClient = optional(section, "forward_client", default: true) { d, node, path in
            d.bool(node, path)
        }
        if tls == PopGateConfig.BackendTLS.none {
            diagnostics.warning(section.childPath("tls"), "none: passwords cross to the backend in clear text; use only on a trusted network or loopback", line: section["tls"]?.line)
        } else if verify == false {
            diagnostics.warning(section.childPath("verify_certificate"), "false: the backend's certificate is not checked; use only for testing", line: section["verify_certificate"]?.line)
        }
        guard let address, let tls, let caFile, let serverName, let verify else { return nil }
        return PopGateConfig.Backend(host: address.host, port: address.port, tls: tls, caFile: caFile, serverName: serverName, verifyCertificate: verify)
    }

    // MARK: mailbox, uidl_format, retention, timeouts, auth

    private mutating func readGatewaySettings(_ root: Section, backend: PopGateConfig.Backend?) -> GatewaySettings? {
        let defaults = GatewaySettings()
        let mailbox = optional(root, "mailbox", default: defaults.mailbox) { d, node, path in
            Self.mailboxName(&d, node, path)
        }
        let uidlFormat = optional(root, "uidl_format", default: defaults.uidlFormat) { d, node, path in
            guard let text = d.string(node, path) else { return nil }
            do {
                return try UIDLFormat(parsing: text)
            } catch {
                d.problem(path, "invalid UIDL format \"\(text)\": \(error)", line: node.line)
                return nil
            }
        }
        let retention = readRetention(root, mailbox: mailbox)
        let (idle, backendTimeout) = readTimeouts(root)
        let failureDelay = readAuth(root)

        guard let mailbox, let uidlFormat, let retention, let idle, let backendTimeout, let failureDelay, let backend else { return nil }
        return GatewaySettings(
            mailbox: mailbox,
            uidlFormat: uidlFormat,
            retention: retention,
            idleTimeout: idle,
            backendTimeout: backendTimeout,
            authFailureDelay: failureDelay,
            backendPlaintextAllowed: backend.tls == .none,
            backendStartTLS: backend.tls == .starttls
        )
    }

    private mutating func readRetention(_ root: Section, mailbox: String?) -> RetentionPolicy? {
        let node = root["retention"]
        guard let section = Section(node, path: "retention", line: root.line(ofKey: "retention"), keys: Self.retentionKeys, into: &diagnostics) else { return nil }
        let defaults = RetentionPolicy()
        let onRetrieve = optional(section, "on_retrieve", default: defaults.onRetrieve) { d, node, path in
            d.choice(node, path, RetentionPolicy.OnRetrieve.self)
        }
        let onDelete = optional(section, "on_delete", default: defaults.onDelete) { d, node, path in
            d.choice(node, path, RetentionPolicy.OnDelete.self)
        }
        // `auto` (the default) is nil: the backend's \Trash, found at login.
        var moveTo = optional(section, "move_to", default: Self.autoMoveTo) { d, node, path in
            Self.mailboxName(&d, node, path)
        }
        // `expunge` falls back to a move when the backend lacks UIDPLUS, so move_to matters there too.
        if onDelete == .move || onDelete == .expunge, let target = moveTo, target != Self.autoMoveTo, let mailbox, GatewaySession.sameMailbox(target, mailbox) {
            let why = onDelete == .move ? "or deleted messages would never leave it" : "on_delete expunge moves there when the backend lacks UIDPLUS"
            diagnostics.problem(section.childPath("move_to"), "must differ from mailbox \"\(mailbox)\", \(why)", line: section.line(ofKey: "move_to") ?? section.line)
            moveTo = nil
        }
        let flagKeyword = optional(section, "flag_keyword", default: defaults.flagKeyword) { d, node, path in
            guard let text = d.string(node, path) else { return nil }
            if let message = ValueParsers.imapAtomProblem(text) {
                d.problem(path, message, line: node.line)
                return nil
            }
            return text
        }
        guard let onRetrieve, let onDelete, let moveTo, let flagKeyword else { return nil }
        return RetentionPolicy(onRetrieve: onRetrieve, onDelete: onDelete, moveTo: moveTo == Self.autoMoveTo ? nil : moveTo, flagKeyword: flagKeyword)
    }

    private mutating func readTimeouts(_ root: Section) -> (idle: Duration?, backend: Duration?) {
        let node = root["timeouts"]
        guard let section = Section(node, path: "timeouts", line: root.line(ofKey: "timeouts"), keys: Self.timeoutKeys, into: &diagnostics) else { return (nil, nil) }
        let defaults = GatewaySettings()
        let idle = optional(section, "idle", default: defaults.idleTimeout) { d, node, path in
            d.duration(node, path, allowZero: false)
        }
        if let idle, idle < Self.recommendedMinimumIdle {
            diagnostics.warning(section.childPath("idle"), "\(ValueParsers.format(idle)) is below the 10m RFC 1939 §3 asks for; clients that pause between commands may be cut off", line: section["idle"]?.line)
        }
        let backend = optional(section, "backend", default: defaults.backendTimeout) { d, node, path in
            d.duration(node, path, allowZero: false)
        }
        drain = optional(section, "drain", default: PopGateConfig.defaultDrain) { d, node, path in
            d.duration(node, path, allowZero: true)
        }
        loginTimeout = optional(section, "login", default: defaults.loginTimeout) { d, node, path in
            d.duration(node, path, allowZero: false)
        }
        let flush = optional(section, "flush", default: PopGateConfig.ClientLimits().flushTimeout) { d, node, path in
            d.duration(node, path, allowZero: false)
        }
        if let flush { clientLimits?.flushTimeout = flush } else { clientLimits = nil }
        return (idle, backend)
    }

    private mutating func readAuth(_ root: Section) -> Duration? {
        let node = root["auth"]
        guard let section = Section(node, path: "auth", line: root.line(ofKey: "auth"), keys: Self.authKeys, into: &diagnostics) else { return nil }
        let delay = optional(section, "failure_delay", default: GatewaySettings().authFailureDelay) { d, node, path in
            d.duration(node, path, allowZero: true)
        }
        let defaults = PopGateConfig.ClientLimits()
        let delayMax = optional(section, "failure_delay_max", default: defaults.failureDelayMax) { d, node, path in
            d.duration(node, path, allowZero: true)
        }
        let expiry = optional(section, "penalty_expiry", default: defaults.penaltyExpiry) { d, node, path in
            d.duration(node, path, allowZero: false)
        }
        if let delay, let delayMax, delayMax < delay {
            diagnostics.problem(section.childPath("failure_delay_max"), "\(ValueParsers.format(delayMax)) is below failure_delay (\(ValueParsers.format(delay))); the penalty starts at failure_delay", line: section["failure_delay_max"]?.line ?? section.line)
            clientLimits = nil
        } else if let delayMax, let expiry {
            clientLimits?.failureDelayMax = delayMax
            clientLimits?.penaltyExpiry = expiry
        } else {
            clientLimits = nil
        }
        return delay
    }

    // MARK: limits

    private mutating func readLimits(_ root: Section) {
        let node = root["limits"]
        guard let section = Section(node, path: "limits", line: root.line(ofKey: "limits"), keys: Self.limitKeys, into: &diagnostics) else {
            clientLimits = nil
            sessionLimits = nil
            return
        }
        let defaults = PopGateConfig.ClientLimits()
        let sessionDefaults = GatewaySettings.Limits()
        func count(_ key: String, _ defaultValue: Int, _ range: ClosedRange<Int>) -> Int? {
            optional(section, key, default: defaultValue) { d, node, path in d.integer(node, path, in: range) }
        }
        let connections = count("connections", defaults.connections, 1...10_000_000)
        let perIP = count("connections_per_ip", defaults.connectionsPerIP, 1...10_000_000)
        let tracked = count("tracked_ips", defaults.trackedIPs, 1...100_000_000)
        let authFailures = count("max_auth_failures", sessionDefaults.maxAuthFailures, 1...100)
        let messages = count("max_messages", sessionDefaults.maxMessages, 1...100_000_000)
        // Below 16 KiB a single status line burst would throttle; above 64 MiB it is no longer a bound.
        let output = count("output_buffer", defaults.outputBuffer, 16 * 1024...64 * 1024 * 1024)
        let perUser = count("sessions_per_user", sessionDefaults.sessionsPerUser, 0...1_000_000)
        let loginInterval = optional(section, "login_interval", default: sessionDefaults.loginInterval) { d, node, path in
            d.duration(node, path, allowZero: true)
        }
        if let connections, let perIP, perIP > connections {
            diagnostics.warning(section.childPath("connections_per_ip"), "\(perIP) is above connections (\(connections)): the total limit is reached first", line: section["connections_per_ip"]?.line)
        }
        guard let connections, let perIP, let tracked, let authFailures, let messages, let output, let perUser, let loginInterval else {
            clientLimits = nil
            sessionLimits = nil
            return
        }
        clientLimits?.connections = connections
        clientLimits?.connectionsPerIP = perIP
        clientLimits?.trackedIPs = tracked
        clientLimits?.outputBuffer = output
        sessionLimits?.maxAuthFailures = authFailures
        sessionLimits?.maxMessages = messages
        sessionLimits?.sessionsPerUser = perUser
        sessionLimits?.loginInterval = loginInterval
    }

    // MARK: log

    private mutating func readLog(_ root: Section) -> (level: String?, target: PopGateConfig.LogTarget?) {
        let node = root["log"]
        guard let section = Section(node, path: "log", line: root.line(ofKey: "log"), keys: Self.logKeys, into: &diagnostics) else { return (nil, nil) }
        let level = optional(section, "level", default: "info") { d, node, path in
            d.oneOf(node, path, PopGateConfig.logLevels)
        }
        let target = optional(section, "target", default: PopGateConfig.LogTarget.auto.rawValue) { d, node, path in
            d.oneOf(node, path, PopGateConfig.LogTarget.allCases.map(\.rawValue))
        }
        return (level, target.flatMap(PopGateConfig.LogTarget.init(rawValue:)))
    }

    // MARK: Helpers

    /// Distinguishes "absent, use the default" from "present but invalid" (nil).
    struct Wrapped<Value> {
        var value: Value
        init(_ value: Value) { self.value = value }
    }

    /// The default when the key is absent; otherwise the parsed value, or nil
    /// after `parse` reported why not. A present `key:` with no value is a problem,
    /// not the default: it usually means a value was forgotten.
    private mutating func optional<Value>(
        _ section: Section,
        _ key: String,
        default defaultValue: Value,
        _ parse: (inout Diagnostics, Node, String) -> Value?
    ) -> Value? {
        guard let node = section[key] else { return defaultValue }
        let path = section.childPath(key)
        if node.isNull {
            diagnostics.problem(path, "missing value (remove the key to use the default)", line: node.line)
            return nil
        }
        return parse(&diagnostics, node, path)
    }

    private mutating func requiredPath(_ section: Section, _ key: String) -> String? {
        guard let node = section.required(key, into: &diagnostics) else { return nil }
        let path = section.childPath(key)
        guard let value = Self.nonEmptyPath(&diagnostics, node, path) else { return nil }
        files.append(FileReference(keyPath: path, value: value, line: node.line))
        return value
    }

    private static func nonEmptyPath(_ d: inout Diagnostics, _ node: Node, _ path: String) -> String? {
        guard let text = d.string(node, path) else { return nil }
        guard !text.isEmpty else {
            d.problem(path, "must not be empty", line: node.line)
            return nil
        }
        return text
    }

    private static func mailboxName(_ d: inout Diagnostics, _ node: Node, _ path: String) -> String? {
        guard let text = d.string(node, path) else { return nil }
        if let message = ValueParsers.mailboxProblem(text) {
            d.problem(path, message, line: node.line)
            return nil
        }
        return text
    }
}
