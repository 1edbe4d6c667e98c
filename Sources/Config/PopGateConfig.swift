import Gateway
import Routing
import Wire

/// The whole `popgate.yaml`, validated. Built by `ConfigLoader`; tests of
/// other modules may build it directly.
///
/// Paths (`tls.certificate`, `tls.key`, `backend.ca_file`) are as written in
/// the file after `ConfigLoader.parse`; `ConfigLoader.load` makes relative
/// ones relative to the directory of the configuration file.
public struct PopGateConfig: Sendable, Equatable {
    /// How a listener speaks TLS to POP3 clients.
    public enum ListenerTLS: String, Sendable, CaseIterable {
        /// Plain POP3 only (no STLS offered).
        case none
        /// Plain POP3 with STLS (RFC 2595 §4).
        case starttls
        /// TLS from the first byte (POP3S, RFC 8314 §3.3).
        case implicit
    }

    /// How the gateway speaks TLS to the IMAP backend (`none`, `starttls`, `implicit`).
    public typealias BackendTLS = BackendTarget.TLSMode

    /// One socket POP3 clients connect to.
    public struct Listener: Sendable, Equatable {
        /// Unique; matches a systemd `FileDescriptorName` under socket activation.
        public var name: String
        /// As written, without IPv6 brackets: `0.0.0.0`, `::`, `localhost`.
        public var host: String
        /// 0 means "any free port" (tests).
        public var port: UInt16
        public var tls: ListenerTLS
        /// USER/PASS/AUTH accepted before TLS is active on this listener.
        public var allowPlaintextAuth: Bool
        /// `proxy_protocol`: every connection starts with a PROXY protocol header (v1 or v2) from a peer in
        /// `proxyTrustedNetworks`, and the client is the address in it (docs/front-door.md).
        public var proxyProtocol: Bool

        public init(name: String, host: String, port: UInt16, tls: ListenerTLS = .starttls, allowPlaintextAuth: Bool = false, proxyProtocol: Bool = false) {
            self.name = name
            self.host = host
            self.port = port
            self.tls = tls
            self.allowPlaintextAuth = allowPlaintextAuth
            self.proxyProtocol = proxyProtocol
        }
    }

    /// The certificate the listeners present to POP3 clients (PEM files).
    public struct ServerTLS: Sendable, Equatable {
        public var certificate: String
        public var key: String

        public init(certificate: String, key: String) {
            self.certificate = certificate
            self.key = key
        }
    }

    /// An IMAP server users are logged in to (`backend`, `routes[].backend`).
    public typealias Backend = BackendTarget

    /// Log level names accepted by `log.level`, lowest first (swift-log's `Logger.Level` raw values).
    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    public var listeners: [Listener]
    /// Present when the file has a `tls` section (required when a listener uses TLS).
    public var tls: ServerTLS?
    /// The default route's server: where logins go that no entry of `routes` takes.
    public var backend: Backend
    /// mailbox, uidl_format, timeouts.*, auth.failure_delay, the per-session limits.
    public var gateway: GatewaySettings
    /// The policy of the default route: the top-level `retention` (and `policy:` when it names one of
    /// `policies`).
    public var defaultPolicy: SessionPolicy
    /// `policies:` by name.
    public var policies: [String: SessionPolicy]
    /// `routes:` followed by the entries of `routes_file:`, with the default route (top-level `backend`
    /// and `defaultPolicy`).
    public var routes: RouteTable
    /// `routes_file:` as written (resolved against the configuration's directory by `ConfigLoader.load`),
    /// re-read with the rest of the configuration on every reload.
    public var routesFile: String?
    /// `auth_http:`: every login asks this routing service where it goes (instead of `routes`).
    public var authHTTP: AuthHTTPSettings?

    /// `auth_http.*`.
    public struct AuthHTTPSettings: Sendable, Equatable {
        public var endpoint: AuthHTTP.Endpoint
        /// The whole exchange (connect, request, answer); past it the login gets `[SYS/TEMP]`.
        public var timeout: Duration
        /// How long an OK answer is reused for the same user and password (0: never).
        public var cacheTTL: Duration

        public init(endpoint: AuthHTTP.Endpoint, timeout: Duration = .seconds(5), cacheTTL: Duration = .zero) {
            self.endpoint = endpoint
            self.timeout = timeout
            self.cacheTTL = cacheTTL
        }
    }
    /// One of `logLevels`.
    public var logLevel: String
    /// Where log lines go (`log.target`).
    public var logTarget: LogTarget
    /// `timeouts.drain`: how long open sessions get after SIGTERM/SIGINT.
    public var drainTimeout: Duration
    /// What the daemon enforces per client and in total, outside any one session.
    public var clientLimits: ClientLimits
    /// `proxy_trusted_networks`: the peers allowed to connect to a `proxy_protocol` listener (the proxies).
    public var proxyTrustedNetworks: [IPNetwork] = []

    /// `limits.*`, `timeouts.flush` and the per-address side of `auth.*`: the daemon's protection of
    /// itself and its backend from any one client (docs/front-door.md).
    public struct ClientLimits: Sendable, Equatable {
        /// `limits.connections`: open client connections, all listeners together.
        public var connections: Int
        /// `limits.connections_per_ip`: per IPv4 address or IPv6 /64.
        public var connectionsPerIP: Int
        /// `limits.tracked_ips`: addresses remembered for penalties and refusal logging (LRU).
        public var trackedIPs: Int
        /// `limits.output_buffer`: a client's queued output above this stops reading it (bytes).
        public var outputBuffer: Int
        /// `timeouts.flush`: how long a closing connection may take to send its last bytes.
        public var flushTimeout: Duration
        /// `auth.failure_delay_max`: the cap of the per-address penalty, which starts at
        /// `auth.failure_delay` and doubles with each failure.
        public var failureDelayMax: Duration
        /// `auth.penalty_expiry`: an address's failures are forgotten after this long without a new one.
        public var penaltyExpiry: Duration

        public init(connections: Int = 10_000, connectionsPerIP: Int = 50, trackedIPs: Int = 100_000, outputBuffer: Int = 256 * 1024,
                    flushTimeout: Duration = .seconds(10), failureDelayMax: Duration = .seconds(15), penaltyExpiry: Duration = .seconds(3600)) {
            self.connections = connections
            self.connectionsPerIP = connectionsPerIP
            self.trackedIPs = trackedIPs
            self.outputBuffer = outputBuffer
            self.flushTimeout = flushTimeout
            self.failureDelayMax = failureDelayMax
            self.penaltyExpiry = penaltyExpiry
        }
    }

    public enum LogTarget: String, Sendable, Equatable, CaseIterable {
        /// The journal when stderr is connected to it (`JOURNAL_STREAM`), logfmt on stderr otherwise.
        case auto
        case journal
        case stderr
    }

    /// Where logins go that no entry of `routes` takes.
    public static func defaultRoute(backend: Backend, policy: SessionPolicy) -> Route {
        Route(name: "default", backend: backend, policy: policy)
    }

    public static let defaultDrain = Duration.seconds(30)

    /// `metrics:`: where Prometheus scrapes `GET /metrics` (plain HTTP). Absent: no metrics listener.
    public struct Metrics: Sendable, Equatable {
        /// Without IPv6 brackets.
        public var host: String
        /// 0 means "any free port" (tests).
        public var port: UInt16

        public init(host: String, port: UInt16) {
            self.host = host
            self.port = port
        }
    }

    /// The FileDescriptorName of a socket-activated metrics listener.
    public static let metricsSocketName = "metrics"

    /// `metrics:`; nil when the section is absent.
    public var metrics: Metrics?

    public init(listeners: [Listener], tls: ServerTLS?, backend: Backend, gateway: GatewaySettings = GatewaySettings(), defaultPolicy: SessionPolicy = SessionPolicy(),
                policies: [String: SessionPolicy] = [:], routesFile: String? = nil,
                logLevel: String = "info", logTarget: LogTarget = .auto, drainTimeout: Duration = PopGateConfig.defaultDrain, clientLimits: ClientLimits = ClientLimits()) {
        self.listeners = listeners
        self.tls = tls
        self.backend = backend
        self.gateway = gateway
        self.defaultPolicy = defaultPolicy
        self.policies = policies
        self.routes = RouteTable(defaultRoute: Self.defaultRoute(backend: backend, policy: defaultPolicy))
        self.routesFile = routesFile
        self.logLevel = logLevel
        self.logTarget = logTarget
        self.drainTimeout = drainTimeout
        self.clientLimits = clientLimits
    }
}
