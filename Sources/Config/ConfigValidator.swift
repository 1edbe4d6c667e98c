import Gateway
import Routing
import Wire
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

    static let rootKeys = ["listeners", "tls", "backend", "mailbox", "uidl_format", "uidl_source", "retention", "policy", "policies", "routes", "routes_file", "auth_http",
                           "timeouts", "auth", "limits", "log", "proxy_trusted_networks", "metrics"]
    static let listenerKeys = ["name", "address", "tls", "allow_plaintext_auth", "proxy_protocol"]
    static let tlsKeys = ["certificate", "key"]
    static let backendKeys = ["address", "tls", "ca_file", "server_name", "verify_certificate", "forward_client"]
    /// `retention.move_to: auto`, the default: the folder is found at login.
    static let autoMoveTo = "auto"
    static let retentionKeys = ["on_retrieve", "on_delete", "move_to", "flag_keyword"]
    static let policyKeys = ["retention", "visible", "retrieved_keyword"]
    static let routeKeys = ["domain", "user", "backend", "login", "policy"]
    static let authHTTPKeys = ["url", "timeout", "cache_ttl"]
    /// The keys of a `routes_file`.
    static let routesFileKeys = ["routes"]
    static let timeoutKeys = ["idle", "backend", "drain", "login", "flush"]
    static let authKeys = ["failure_delay", "failure_delay_max", "penalty_expiry"]
    static let limitKeys = ["connections", "connections_per_ip", "tracked_ips", "max_auth_failures", "max_messages", "output_buffer", "sessions_per_user", "login_interval"]
    static let logKeys = ["level", "target"]
    static let metricsKeys = ["address"]

    /// RFC 1939 §3: "at least 10 minutes".
    static let recommendedMinimumIdle = Duration.seconds(600)

    private var diagnostics = Diagnostics()
    /// `timeouts.drain`, read with the other timeouts.
    private var drain: Duration? = PopGateConfig.defaultDrain
    /// Read with the sections they are written in, assembled in `read(root:)`.
    private var clientLimits: PopGateConfig.ClientLimits? = PopGateConfig.ClientLimits()
    private var loginTimeout: Duration? = GatewaySettings().loginTimeout
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
        let backend = section.required("backend", into: &diagnostics).flatMap { readBackend($0, path: "backend", line: section.line(ofKey: "backend")) }
        readLimits(section)
        let gateway = readGatewaySettings(section)
        let retention = readRetention(section["retention"], path: "retention", line: section.line(ofKey: "retention"), mailbox: gateway?.mailbox)
        let policies = readPolicies(section, mailbox: gateway?.mailbox)
        let defaultPolicy = readDefaultPolicy(section, retention: retention, policies: policies)
        let entries = policies.flatMap { readRoutes(section["routes"], path: "routes", line: section.line(ofKey: "routes"), policies: $0, defaultPolicy: defaultPolicy) }
        let routesFile = optional(section, "routes_file", default: String?.none) { d, node, path in
            Self.nonEmptyPath(&d, node, path).map { .some($0) }
        }
        if case .some(.some(let file)) = routesFile, let node = section["routes_file"] {
            files.append(FileReference(keyPath: "routes_file", value: file, line: node.line))
        }
        let authHTTP = readAuthHTTP(section)
        if case .some(.some) = authHTTP, section["routes"] != nil || section["routes_file"] != nil {
            diagnostics.problem("auth_http", "cannot be combined with routes or routes_file: with auth_http the service routes every login", line: section.line(ofKey: "auth_http"))
        }
        let (logLevel, logTarget) = readLog(section)
        let proxyTrustedNetworks = readProxyTrustedNetworks(section, listeners: listeners ?? [])
        let metrics = readMetrics(section, listeners: listeners ?? [])

        guard let authHTTP, let listeners, let tls, let backend, var gateway, let logLevel, let logTarget, let drain,
              let clientLimits, let loginTimeout, let sessionLimits, let policies, let defaultPolicy, let entries, let routesFile,
              let proxyTrustedNetworks, let metrics else { return nil }
        gateway.loginTimeout = loginTimeout
        gateway.limits = sessionLimits
        var config = PopGateConfig(listeners: listeners, tls: tls.value, backend: backend, gateway: gateway, defaultPolicy: defaultPolicy,
                                   policies: policies, routesFile: routesFile, logLevel: logLevel, logTarget: logTarget, drainTimeout: drain, clientLimits: clientLimits)
        config.authHTTP = authHTTP
        config.proxyTrustedNetworks = proxyTrustedNetworks
        config.metrics = metrics.value
        do {
            config.routes = try RouteTable(entries: entries, defaultRoute: config.routes.defaultRoute)
        } catch {
            diagnostics.problem("routes", error.description, line: section.line(ofKey: "routes"))
            return nil
        }
        return config
    }

    /// A `routes_file`: a mapping with one key, `routes`, whose list has the entries of the main file's
    /// `routes:`, naming the main file's policies.
    static func validateRoutesFile(root: Node, policies: [String: SessionPolicy], defaultPolicy: SessionPolicy) -> (entries: [RouteEntry]?, problems: [ConfigProblem], warnings: [ConfigProblem], files: [FileReference]) {
        var validator = ConfigValidator()
        guard let section = Section(root, path: "", line: nil, keys: Self.routesFileKeys, into: &validator.diagnostics) else {
            return (nil, validator.diagnostics.problems, validator.diagnostics.warnings, [])
        }
        guard let node = section.required("routes", into: &validator.diagnostics) else {
            return (nil, validator.diagnostics.problems, validator.diagnostics.warnings, [])
        }
        let entries = validator.readRoutes(node, path: "routes", line: section.line(ofKey: "routes"), policies: policies, defaultPolicy: defaultPolicy)
        if let entries {
            do {
                _ = try RouteTable(entries: entries, defaultRoute: nil)
            } catch {
                validator.diagnostics.problem("routes", error.description, line: node.line)
            }
        }
        let problems = validator.diagnostics.problems
        return (problems.isEmpty ? entries : nil, problems, validator.diagnostics.warnings, validator.files)
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
            let proxyProtocol = optional(section, "proxy_protocol", default: false) { d, node, path in
                d.bool(node, path)
            }
            guard let name, let address, let tls, let allowPlaintextAuth, let proxyProtocol else {
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
            listeners.append(PopGateConfig.Listener(name: name, host: address.host, port: address.port, tls: tls, allowPlaintextAuth: allowPlaintextAuth, proxyProtocol: proxyProtocol))
        }
        return failed ? nil : listeners
    }

    // MARK: proxy_trusted_networks

    /// A list of CIDR networks (or single addresses); required as soon as a listener has `proxy_protocol: true`,
    /// which would otherwise refuse every connection.
    private mutating func readProxyTrustedNetworks(_ root: Section, listeners: [PopGateConfig.Listener]) -> [IPNetwork]? {
        let key = "proxy_trusted_networks"
        let user = listeners.firstIndex { $0.proxyProtocol }
        let node = root[key]
        guard let node, !node.isNull else {
            if let user {
                diagnostics.problem("listeners[\(user)].proxy_protocol", "true needs \(key): the addresses of the proxies allowed to send the PROXY header (e.g. [\"10.0.0.5/32\"])", line: root.line(ofKey: "listeners"))
                return nil
            }
            return []
        }
        guard case .sequence(let items) = node else {
            diagnostics.problem(key, "expected a list of networks such as [\"10.0.0.0/24\", \"2001:db8::/64\"], got \(node.shortDescription)", line: node.line)
            return nil
        }
        var networks: [IPNetwork] = []
        var failed = false
        for (index, item) in items.enumerated() {
            let path = "\(key)[\(index)]"
            guard let text = diagnostics.string(item, path) else {
                failed = true
                continue
            }
            switch ValueParsers.network(text) {
            case .success(let network): networks.append(network)
            case .failure(let error):
                diagnostics.problem(path, error.message, line: item.line)
                failed = true
            }
        }
        if failed { return nil }
        if let user, networks.isEmpty {
            diagnostics.problem("listeners[\(user)].proxy_protocol", "true needs \(key): the list is empty, so every connection would be refused", line: node.line)
            return nil
        }
        if user == nil {
            diagnostics.warning(key, "not used: no listener has proxy_protocol: true", line: node.line)
        }
        return networks
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

    /// `backend` and each `routes[].backend`.
    private mutating func readBackend(_ node: Node, path: String, line: Int?) -> PopGateConfig.Backend? {
        guard let section = Section(node, path: path, line: line, keys: Self.backendKeys, into: &diagnostics) else { return nil }
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
        let forwardClient = optional(section, "forward_client", default: true) { d, node, path in
            d.bool(node, path)
        }
        if tls == PopGateConfig.BackendTLS.none {
            diagnostics.warning(section.childPath("tls"), "none: passwords cross to the backend in clear text; use only on a trusted network or loopback", line: section["tls"]?.line)
        } else if verify == false {
            diagnostics.warning(section.childPath("verify_certificate"), "false: the backend's certificate is not checked; use only for testing", line: section["verify_certificate"]?.line)
        }
        guard let address, let tls, let caFile, let serverName, let verify, let forwardClient else { return nil }
        return PopGateConfig.Backend(host: address.host, port: address.port, tls: tls, caFile: caFile, serverName: serverName, verifyCertificate: verify, forwardClient: forwardClient)
    }

    // MARK: mailbox, uidl_format, retention, timeouts, auth

    private mutating func readGatewaySettings(_ root: Section) -> GatewaySettings? {
        let defaults = GatewaySettings()
        let mailbox = optional(root, "mailbox", default: defaults.mailbox) { d, node, path in
            Self.mailboxName(&d, node, path)
        }
        let uidlFormat = optional(root, "uidl_format", default: defaults.uidlFormat) { d, node, path in
            guard let text = d.string(node, path) else { return nil }
            do {
                return try UIDLFormat(configured: text)
            } catch {
                d.problem(path, "invalid UIDL format \"\(text)\": \(error)", line: node.line)
                return nil
            }
        }
        let uidlSource = optional(root, "uidl_source", default: defaults.uidlSource) { d, node, path in
            d.choice(node, path, UIDLSource.self)
        }
        let (idle, backendTimeout) = readTimeouts(root)
        let failureDelay = readAuth(root)

        guard let mailbox, let uidlFormat, let uidlSource, let idle, let backendTimeout, let failureDelay else { return nil }
        return GatewaySettings(
            mailbox: mailbox,
            uidlFormat: uidlFormat,
            uidlSource: uidlSource,
            idleTimeout: idle,
            backendTimeout: backendTimeout,
            authFailureDelay: failureDelay
        )
    }

    /// The top-level `retention` and each `policies.<name>.retention`.
    private mutating func readRetention(_ node: Node?, path: String, line: Int?, mailbox: String?) -> RetentionPolicy? {
        guard let section = Section(node, path: path, line: line, keys: Self.retentionKeys, into: &diagnostics) else { return nil }
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
            Self.keyword(&d, node, path)
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

    // MARK: policies, routes

    /// `policies:`: a mapping of names to policies; `{}` when absent.
    private mutating func readPolicies(_ root: Section, mailbox: String?) -> [String: SessionPolicy]? {
        guard let node = root["policies"], !node.isNull else { return [:] }
        guard case .mapping(let mapping) = node else {
            diagnostics.problem("policies", "expected a mapping of policy names to policies, got \(node.shortDescription)", line: node.line)
            return nil
        }
        var policies: [String: SessionPolicy] = [:]
        var failed = false
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key, ValueParsers.isValidListenerName(scalar.string), scalar.string != "default" else {
                diagnostics.problem("policies", "invalid policy name \(key.shortDescription): use letters, digits, \"_\", \".\" and \"-\" (and not \"default\")", line: key.line)
                failed = true
                continue
            }
            let name = scalar.string
            let path = "policies.\(name)"
            guard let section = Section(value, path: path, line: key.line, keys: Self.policyKeys, into: &diagnostics) else {
                failed = true
                continue
            }
            let retention = readRetention(section["retention"], path: section.childPath("retention"), line: section.line(ofKey: "retention"), mailbox: mailbox)
            let visible = optional(section, "visible", default: Visibility.all) { d, node, path in
                d.choice(node, path, Visibility.self)
            }
            let retrievedKeyword = optional(section, "retrieved_keyword", default: SessionPolicy.defaultRetrievedKeyword) { d, node, path in
                Self.keyword(&d, node, path)
            }
            guard let retention, let visible, let retrievedKeyword else {
                failed = true
                continue
            }
            if retention.onDelete == .flag && visible == .notPopped && ASCII.equalsIgnoringCase(retention.flagKeyword.utf8, retrievedKeyword.utf8) {
                diagnostics.problem(section.childPath("retrieved_keyword"), "must differ from retention.flag_keyword, or every retrieved message would count as deleted", line: section.line(ofKey: "retrieved_keyword") ?? section.line)
                failed = true
                continue
            }
            policies[name] = SessionPolicy(name: name, retention: retention, visible: visible, retrievedKeyword: retrievedKeyword)
        }
        return failed ? nil : policies
    }

    /// The default route's policy: the top-level `retention`, or the policy `policy:` names.
    private mutating func readDefaultPolicy(_ root: Section, retention: RetentionPolicy?, policies: [String: SessionPolicy]?) -> SessionPolicy? {
        guard let node = root["policy"] else { return retention.map { SessionPolicy(name: "default", retention: $0) } }
        guard let name = diagnostics.string(node, "policy"), let policies else { return nil }
        guard let policy = policies[name] else {
            diagnostics.problem("policy", "no policy named \"\(name)\" in policies", line: node.line)
            return nil
        }
        if root["retention"] != nil {
            diagnostics.problem("retention", "not used when policy names the default policy; put it in policies.\(name).retention", line: root.line(ofKey: "retention"))
            return nil
        }
        return policy
    }

    /// `routes:` (or a routes file's): the ordered list of entries; `[]` when absent.
    mutating func readRoutes(_ node: Node?, path: String, line: Int?, policies: [String: SessionPolicy], defaultPolicy: SessionPolicy?) -> [RouteEntry]? {
        guard let node, !node.isNull else { return [] }
        guard case .sequence(let items) = node else {
            diagnostics.problem(path, "expected a list of routes, got \(node.shortDescription)", line: node.line)
            return nil
        }
        var entries: [RouteEntry] = []
        entries.reserveCapacity(items.count)
        var failed = false
        for (index, item) in items.enumerated() {
            let itemPath = "\(path)[\(index)]"
            guard let section = Section(item, path: itemPath, line: item.line, keys: Self.routeKeys, into: &diagnostics) else {
                failed = true
                continue
            }
            var match: RouteMatch?
            switch (section["domain"], section["user"]) {
            case (let domain?, nil):
                if let text = diagnostics.string(domain, section.childPath("domain")) {
                    match = RouteMatch.domainPattern(text)
                    if match == nil {
                        diagnostics.problem(section.childPath("domain"), "invalid domain \"\(text)\": a domain name (example.com) or a wildcard for its subdomains (\"*.example.org\")", line: domain.line)
                    }
                }
            case (nil, let user?):
                if let text = diagnostics.string(user, section.childPath("user")) {
                    if let problem = routePatternProblem(text) {
                        diagnostics.problem(section.childPath("user"), problem, line: user.line)
                    } else {
                        match = .user(text)
                    }
                }
            case (.some, .some):
                diagnostics.problem(itemPath, "has both domain and user; a route matches one of them", line: item.line)
            case (nil, nil):
                diagnostics.problem(itemPath, "needs domain or user", line: item.line)
            }
            let backend = section.required("backend", into: &diagnostics).flatMap { readBackend($0, path: section.childPath("backend"), line: section.line(ofKey: "backend")) }
            let login = optional(section, "login", default: LoginRewrite.asIs) { d, node, path in
                d.choice(node, path, LoginRewrite.self)
            }
            var policy = defaultPolicy
            if let node = section["policy"] {
                policy = nil
                if let name = diagnostics.string(node, section.childPath("policy")) {
                    policy = policies[name]
                    if policy == nil {
                        diagnostics.problem(section.childPath("policy"), "no policy named \"\(name)\" in policies", line: node.line)
                    }
                }
            }
            guard let match, let backend, let login, let policy else {
                failed = true
                continue
            }
            entries.append(RouteEntry(match: match, route: Route(name: match.description, backend: backend, login: login, policy: policy)))
        }
        return failed ? nil : entries
    }

    /// `auth_http:`; `.some(nil)` when absent.
    private mutating func readAuthHTTP(_ root: Section) -> PopGateConfig.AuthHTTPSettings?? {
        guard let node = root["auth_http"], !node.isNull else { return .some(nil) }
        guard let section = Section(node, path: "auth_http", line: root.line(ofKey: "auth_http"), keys: Self.authHTTPKeys, into: &diagnostics) else { return nil }
        var endpoint: AuthHTTP.Endpoint?
        if let url = section.required("url", into: &diagnostics), let text = diagnostics.string(url, "auth_http.url") {
            endpoint = AuthHTTP.Endpoint(url: text)
            if endpoint == nil {
                diagnostics.problem("auth_http.url", "invalid URL \"\(text)\": expected http://host[:port]/path (plain HTTP: keep the service on loopback or a trusted network)", line: url.line)
            }
        }
        let timeout = optional(section, "timeout", default: Duration.seconds(5)) { d, node, path in
            d.duration(node, path, allowZero: false)
        }
        let cacheTTL = optional(section, "cache_ttl", default: Duration.zero) { d, node, path in
            d.duration(node, path, allowZero: true)
        }
        guard let endpoint, let timeout, let cacheTTL else { return nil }
        return .some(PopGateConfig.AuthHTTPSettings(endpoint: endpoint, timeout: timeout, cacheTTL: cacheTTL))
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

    // MARK: metrics

    /// `metrics.address`, required when the section is there. A listener named `metrics` would clash
    /// with the metrics socket's systemd name.
    private mutating func readMetrics(_ root: Section, listeners: [PopGateConfig.Listener]) -> Wrapped<PopGateConfig.Metrics?>? {
        guard let node = root["metrics"] else { return Wrapped(nil) }
        guard let section = Section(node, path: "metrics", line: root.line(ofKey: "metrics"), keys: Self.metricsKeys, into: &diagnostics) else { return nil }
        guard !node.isNull else {
            diagnostics.problem("metrics", "missing value: give metrics.address, or remove the section for no metrics listener", line: root.line(ofKey: "metrics"))
            return nil
        }
        guard let addressNode = section.required("address", into: &diagnostics),
              let address = diagnostics.address(addressNode, section.childPath("address"), allowPortZero: true) else { return nil }
        if let index = listeners.firstIndex(where: { $0.name == PopGateConfig.metricsSocketName }) {
            diagnostics.problem("listeners[\(index)].name", "the name \"\(PopGateConfig.metricsSocketName)\" is the metrics listener's (its systemd FileDescriptorName); choose another", line: nil)
            return nil
        }
        if address.port != 0, let index = listeners.firstIndex(where: { $0.host == address.host && $0.port == address.port }) {
            diagnostics.problem("metrics.address", "the same address as listeners[\(index)]", line: addressNode.line)
            return nil
        }
        return Wrapped(PopGateConfig.Metrics(host: address.host, port: address.port))
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

    private static func keyword(_ d: inout Diagnostics, _ node: Node, _ path: String) -> String? {
        guard let text = d.string(node, path) else { return nil }
        if let message = ValueParsers.imapAtomProblem(text) {
            d.problem(path, message, line: node.line)
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
