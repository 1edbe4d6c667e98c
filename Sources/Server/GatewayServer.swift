import Config
import Dispatch
import FrontDoor
import Foundation
import Glibc
import Gateway
import Logging
import POP3
import ProxyProtocol
import TLS
import Transport
import Wire

/// What every session needs from the daemon: the validated config and the loaded TLS material.
struct ServerEnvironment: Sendable {
    let config: PopGateConfig
    let stats: ServerStats
    /// Per-client state that outlives sessions (connection counts, auth penalties): one for the daemon.
    let clients: ClientRegistry
    /// The `auth_http` client, one for the daemon (its pending count and cache outlive reloads).
    let authHTTP: AuthHTTPClient
    /// The UIDL samples of the users' last sessions (uidl_change in the summary line): one for the daemon.
    let uidlHistory: UIDLHistoryRegistry
    let serverTLS: TLSContext?
    /// One client context per distinct (ca_file, verify_certificate) among the backends that use TLS.
    let backendTLS: [BackendTLSKey: TLSContext]

    init(config: PopGateConfig, stats: ServerStats, clients: ClientRegistry, authHTTP: AuthHTTPClient, uidlHistory: UIDLHistoryRegistry) throws {
        self.config = config
        self.stats = stats
        self.clients = clients
        self.authHTTP = authHTTP
        self.uidlHistory = uidlHistory
        if let tls = config.tls {
            serverTLS = try TLSContext.server(certificateChainFile: tls.certificate, privateKeyFile: tls.key)
        } else {
            serverTLS = nil
        }
        var contexts: [BackendTLSKey: TLSContext] = [:]
        let backends = [config.backend] + config.routes.entries.map(\.route.backend)
        for backend in backends where backend.tls != .none {
            let key = BackendTLSKey(backend)
            if contexts[key] == nil {
                contexts[key] = try TLSContext.client(caFile: backend.caFile, verifyPeer: backend.verifyCertificate)
            }
        }
        backendTLS = contexts
    }

    /// The TLS context for connections to `backend`; nil when none was built for its settings.
    func backendTLSContext(for backend: BackendTarget) -> TLSContext? {
        backendTLS[BackendTLSKey(backend)]
    }
}

/// What a backend TLS client context depends on.
struct BackendTLSKey: Hashable, Sendable {
    var caFile: String?
    var verify: Bool

    init(_ backend: BackendTarget) {
        caFile = backend.caFile
        verify = backend.verifyCertificate
    }
}

/// The version `popgate_build_info` reports.
public enum PopGateVersion {
    public static let current = "0.1.0"
}

public enum ServerError: Error, CustomStringConvertible {
    case tls(String)
    case listener(name: String, address: String, reason: String)

    public var description: String {
        switch self {
        case .tls(let message): "TLS setup failed: \(message)"
        case .listener(let name, let address, let reason): "listener \(name) (\(address)): \(reason)"
        }
    }
}

/// The daemon: listeners, event loops and the set of open sessions.
public final class GatewayServer: @unchecked Sendable {
    private let group: EventLoopGroup
    private let acceptQueue = DispatchQueue(label: "popgate.accept")
    private let logger: Logger
    private let lock = NSLock()
    // Guarded by `lock`.
    private var environment: ServerEnvironment
    private var listeners: [(PopGateConfig.Listener, Listener)] = []
    private var metricsEndpoint: MetricsEndpoint?
    private var sessions: [ObjectIdentifier: SessionDriver] = [:]
    private var sessionCounter: UInt64 = 0
    private var stopping = false
    public let stats = ServerStats()
    private let clients: ClientRegistry
    /// On its own event loop: a slow routing service never holds up a session loop.
    private let authHTTP = AuthHTTPClient(loop: EventLoopGroup(loopCount: 1).loops[0])
    private let uidlHistory = UIDLHistoryRegistry()
    /// What `GET /metrics` serves; nil: no metrics listener even if `metrics:` is configured.
    private let exposition: (@Sendable () -> [UInt8])?

    /// - Parameter exposition: the metrics text for `GET /metrics` (`PrometheusExport.exposition`);
    ///   the listener of `config.metrics` is started only with it.
    public init(config: PopGateConfig, logger: Logger, loopCount: Int = ProcessInfo.processInfo.activeProcessorCount,
                exposition: (@Sendable () -> [UInt8])? = nil) throws {
        clients = ClientRegistry(limits: ClientTable.Limits(config))
        self.exposition = exposition
        clients.update(userLimits: UserTable.Limits(config))
        do {
            environment = try ServerEnvironment(config: config, stats: stats, clients: clients, authHTTP: authHTTP, uidlHistory: uidlHistory)
        } catch {
            throw ServerError.tls("\(error)")
        }
        self.logger = logger
        self.group = EventLoopGroup(loopCount: max(1, loopCount))
    }

    /// Starts accepting on every configured listener.
    ///
    /// - Parameter activatedSockets: listening sockets passed by systemd, by FileDescriptorName, or nil when
    ///   not socket-activated. Each name must match a listener in the config; a configured listener that
    ///   was not passed is bound as usual. Any mismatch or bind failure is a start-up error.
    public func start(activatedSockets: [String: [Int32]]? = nil) throws {
        let config = lock.withLock { environment.config }
        var passed = activatedSockets ?? [:]
        var configured = Set(config.listeners.map(\.name))
        let serveMetrics = config.metrics != nil && exposition != nil
        if serveMetrics { configured.insert(PopGateConfig.metricsSocketName) }
        if let unknown = passed.keys.sorted().first(where: { !configured.contains($0) }) {
            let missing = unknown == PopGateConfig.metricsSocketName ? "no metrics section" : "no listener with that name"
            throw ServerError.listener(name: unknown, address: "systemd socket", reason: "passed by systemd (FileDescriptorName=\(unknown)) but the config has \(missing)")
        }
        var bound: [(PopGateConfig.Listener, Listener)] = []
        var metricsListener: Listener?
        func fail(_ error: ServerError) -> ServerError {
            for (_, listener) in bound { listener.stop() }
            metricsListener?.stop()
            return error
        }
        if serveMetrics, let metrics = config.metrics {
            metricsListener = try Self.metricsListener(metrics, passed: passed.removeValue(forKey: PopGateConfig.metricsSocketName))
        }
        for listenerConfig in config.listeners {
            if let fds = passed.removeValue(forKey: listenerConfig.name) {
                for fd in fds {
                    do {
                        bound.append((listenerConfig, try Listener(adoptingListeningSocket: fd)))
                    } catch {
                        throw fail(.listener(name: listenerConfig.name, address: "systemd fd \(fd)", reason: "\(error)"))
                    }
                }
                continue
            }
            do {
                let listener = try Listener.bind(host: listenerConfig.host, port: listenerConfig.port)
                bound.append((listenerConfig, listener))
            } catch {
                throw fail(.listener(name: listenerConfig.name, address: "\(listenerConfig.host):\(listenerConfig.port)", reason: "\(error)"))
            }
        }
        let endpoint = metricsListener.flatMap { listener in
            exposition.map { MetricsEndpoint(listener: listener, group: group, logger: logger, render: $0) }
        }
        lock.withLock {
            listeners = bound
            metricsEndpoint = endpoint
        }
        if let endpoint {
            stats.metrics.registerInitialSeries(listeners: config.listeners.map(\.name), version: PopGateVersion.current)
            endpoint.start(acceptQueue: acceptQueue)
            logger.info("listening", metadata: [
                LogKey.listener: .string(PopGateConfig.metricsSocketName),
                LogKey.address: .string(endpoint.localAddress.description),
                LogKey.activated: .stringConvertible(activatedSockets?[PopGateConfig.metricsSocketName] != nil),
            ])
        }
        for (listenerConfig, listener) in bound {
            let name = listenerConfig.name
            listener.start(acceptQueue: acceptQueue) { [weak self] fd, peer in
                self?.accepted(fd: fd, peer: peer, listenerName: name)
            }
            logger.info("listening", metadata: [
                LogKey.listener: .string(listenerConfig.name),
                LogKey.address: .string(listener.localAddress.description),
                LogKey.tls: .string(listenerConfig.tls.rawValue),
                LogKey.activated: .stringConvertible(activatedSockets?[listenerConfig.name] != nil),
            ])
        }
    }

    /// The metrics listener: systemd's socket named `metrics` (one), or `metrics.address` bound here.
    private static func metricsListener(_ metrics: PopGateConfig.Metrics, passed fds: [Int32]?) throws -> Listener {
        let name = PopGateConfig.metricsSocketName
        if let fds {
            guard fds.count == 1, let fd = fds.first else {
                throw ServerError.listener(name: name, address: "systemd socket", reason: "systemd passed \(fds.count) sockets named \(name); the metrics listener takes one")
            }
            do {
                return try Listener(adoptingListeningSocket: fd)
            } catch {
                throw ServerError.listener(name: name, address: "systemd fd \(fd)", reason: "\(error)")
            }
        }
        do {
            return try Listener.bind(host: metrics.host, port: metrics.port, backlog: 64)
        } catch {
            throw ServerError.listener(name: name, address: "\(metrics.host):\(metrics.port)", reason: "\(error)")
        }
    }

    /// Applies a new configuration and re-reads the certificate and key files. New sessions use it;
    /// open sessions keep what they started with. Throws (and keeps the old one) when the TLS material
    /// does not load. Listener addresses cannot change without a restart (the sockets may be systemd's).
    public func reload(config: PopGateConfig) throws {
        let new: ServerEnvironment
        do {
            new = try ServerEnvironment(config: config, stats: stats, clients: clients, authHTTP: authHTTP, uidlHistory: uidlHistory)
        } catch {
            throw ServerError.tls("\(error)")
        }
        let old = lock.withLock {
            let old = environment.config
            environment = new
            return old
        }
        clients.update(limits: ClientTable.Limits(config))
        clients.update(userLimits: UserTable.Limits(config))
        if old.listeners != config.listeners {
            logger.warning("listener changes take effect only after a restart")
        }
        if old.metrics != config.metrics {
            logger.warning("metrics changes take effect only after a restart")
        }
    }

    /// Runs `body` once every event loop has run a turn: a stuck loop means no call (the watchdog's basis).
    public func afterEveryLoopTurned(_ body: @escaping @Sendable () -> Void) {
        let loops = group.loops
        @Sendable func visit(_ index: Int) {
            guard index < loops.count else {
                body()
                return
            }
            loops[index].execute { visit(index + 1) }
        }
        visit(0)
    }

    /// Where each listener is bound (the real port when the config said 0).
    public var boundAddresses: [String: String] {
        lock.withLock {
            var addresses = Dictionary(uniqueKeysWithValues: listeners.map { ($0.0.name, $0.1.localAddress.description) })
            if let metricsEndpoint { addresses[PopGateConfig.metricsSocketName] = metricsEndpoint.localAddress.description }
            return addresses
        }
    }

    private func accepted(fd: Int32, peer: SocketAddress, listenerName: String) {
        let (proxied, trustedProxies) = lock.withLock {
            (self.environment.config.listeners.first { $0.name == listenerName }?.proxyProtocol ?? false, self.environment.config.proxyTrustedNetworks)
        }
        if proxied {
            acceptedFromProxy(fd: fd, peer: peer, listenerName: listenerName, trustedProxies: trustedProxies)
            return
        }
        // Limits are checked here, on the accept queue, before any per-connection work: a refused client
        // costs one accept, at most one short write and one close (accept never spins on it).
        let clientKey = ClientKey(host: peer.host)
        if let clientKey, case .refused(let limit, let log) = clients.connectionOpened(clientKey) {
            let tls = lock.withLock { self.environment.config.listeners.first { $0.name == listenerName }?.tls }
            refuse(fd: fd, plaintext: tls != .implicit)
            stats.metrics.connectionRefused(limit: limit == .total ? "total" : "per-ip")
            if log {
                logger.warning("connection refused: too many connections", metadata: [
                    LogKey.client: .string(clientKey.description),
                    LogKey.listener: .string(listenerName),
                    LogKey.limit: .string(limit == .total ? "total" : "per-ip"),
                ])
            }
            return
        }
        let loop = group.next()
        let (environment, id, refused, listenerConfig): (ServerEnvironment, String, Bool, PopGateConfig.Listener?) = lock.withLock {
            sessionCounter += 1
            // Looked up per connection so a reload's listener settings (TLS, plaintext auth) apply to new sessions.
            let listener = self.environment.config.listeners.first { $0.name == listenerName }
                ?? listeners.first { $0.0.name == listenerName }?.0
            return (self.environment, Self.sessionID(sessionCounter), stopping, listener)
        }
        guard let listener = listenerConfig else {
            if let clientKey { clients.connectionClosed(clientKey) }
            _ = Glibc.close(fd)
            return
        }
        loop.execute { [self] in
            let connection = Connection(fd: fd, loop: loop, peerAddress: peer)
            if refused {
                if let clientKey { clients.connectionClosed(clientKey) }
                connection.close(flush: false)
                return
            }
            startSession(id: id, connection: connection, listener: listener, environment: environment, clientKey: clientKey, endpoints: nil)
        }
    }

    /// On the connection's loop: a session for an admitted connection.
    private func startSession(id: String, connection: Connection, listener: PopGateConfig.Listener, environment: ServerEnvironment, clientKey: ClientKey?, endpoints: ClientEndpoints?) {
        let driver = SessionDriver(id: id, connection: connection, listener: listener, environment: environment, clientKey: clientKey, endpoints: endpoints, logger: logger) { [weak self] driver in
            guard let self else { return }
            _ = self.lock.withLock { self.sessions.removeValue(forKey: ObjectIdentifier(driver)) }
            self.stats.metrics.sessionClosed(listener: listener.name)
        }
        lock.withLock { sessions[ObjectIdentifier(driver)] = driver }
        stats.sessionStarted(listener: listener.name)
        driver.start()
    }

    /// How long a `proxy_protocol` listener waits for the PROXY header (or `timeouts.login`, if shorter). The
    /// specification asks for at least 3 s ("to cover a TCP retransmit"); a proxy sends the header at once.
    static let proxyHeaderTimeout = Duration.seconds(5)

    /// A connection on a `proxy_protocol` listener (docs/front-door.md, "Behind a proxy"). Only a peer in
    /// `proxy_trusted_networks` may connect; the total limit applies at once, the per-client limit and
    /// everything else per client (penalty, logs, the backend's ID) once the header names the client, so the
    /// proxy is not charged for all the clients behind it.
    private func acceptedFromProxy(fd: Int32, peer: SocketAddress, listenerName: String, trustedProxies: [IPNetwork]) {
        let peerAddress = peer.ipAddress
        let peerKey = peerAddress.map(ClientKey.init)
        guard let peerAddress, trustedProxies.contains(where: { $0.contains(peerAddress) }) else {
            _ = Glibc.close(fd)
            if peerKey.map({ clients.shouldLogRefusal(of: $0) }) ?? true {
                logger.warning("connection refused: not a trusted proxy", metadata: [
                    LogKey.client: .string(peer.description),
                    LogKey.listener: .string(listenerName),
                ])
            }
            return
        }
        let loop = group.next()
        let (environment, id, refused, listenerConfig): (ServerEnvironment, String, Bool, PopGateConfig.Listener?) = lock.withLock {
            sessionCounter += 1
            let listener = self.environment.config.listeners.first { $0.name == listenerName }
            return (self.environment, Self.sessionID(sessionCounter), stopping, listener)
        }
        guard let listener = listenerConfig, !refused else {
            _ = Glibc.close(fd)
            return
        }
        if case .refused(_, let log) = clients.unidentifiedConnectionOpened(peer: peerKey) {
            refuse(fd: fd, plaintext: listener.tls != .implicit)
            if log {
                logger.warning("connection refused: too many connections", metadata: [
                    LogKey.client: .string(peer.description),
                    LogKey.listener: .string(listenerName),
                    LogKey.limit: "total",
                ])
            }
            return
        }
        loop.execute { [self] in
            let connection = Connection(fd: fd, loop: loop, peerAddress: peer)
            let reader = ProxyHeaderReader(connection: connection)
            let deadline = min(Self.proxyHeaderTimeout, environment.config.gateway.loginTimeout)
            reader.start(deadline: deadline) { [self] outcome in
                switch outcome {
                case .failed(let reason, let silent):
                    clients.unidentifiedConnectionClosed()
                    connection.close(flush: false)
                    let metadata: Logger.Metadata = [
                        LogKey.client: .string(peer.description),
                        LogKey.listener: .string(listenerName),
                        LogKey.error: .string(reason),
                    ]
                    if silent {
                        logger.debug("closed before a PROXY header", metadata: metadata)
                    } else if peerKey.map({ clients.shouldLogRefusal(of: $0) }) ?? true {
                        logger.warning("connection closed: no valid PROXY header", metadata: metadata)
                    }
                case .header(let header, let rest):
                    let endpoints = ClientEndpoints(connection: connection, header: header, rest: rest)
                    let clientKey = endpoints.client?.ipAddress.map(ClientKey.init)
                    if let clientKey, case .refused(let limit, let log) = clients.connectionIdentified(clientKey) {
                        clients.unidentifiedConnectionClosed()
                        // After the header the client is behind the proxy: a plaintext one hears why.
                        if listener.tls != .implicit { connection.write(Self.tooManyConnections) }
                        connection.close(flush: listener.tls != .implicit)
                        if log {
                            logger.warning("connection refused: too many connections", metadata: [
                                LogKey.client: .string(clientKey.description),
                                LogKey.proxy: .string(peer.description),
                                LogKey.listener: .string(listenerName),
                                LogKey.limit: .string(limit == .total ? "total" : "per-ip"),
                            ])
                        }
                        return
                    }
                    if clientKey == nil { clients.unidentifiedConnectionClosed() }
                    if lock.withLock({ stopping }) {
                        if let clientKey { clients.connectionClosed(clientKey) }
                        connection.close(flush: false)
                        return
                    }
                    startSession(id: id, connection: connection, listener: listener, environment: environment, clientKey: clientKey, endpoints: endpoints)
                }
            }
        }
    }

    /// Over a limit: a plaintext listener's client hears why (RFC 2449 `[SYS/TEMP]`: try again later);
    /// an implicit-TLS client gets a plain close, since no TLS session exists to say anything in.
    /// The write is a single non-blocking send: a client that does not read loses the line, not our time.
    private func refuse(fd: Int32, plaintext: Bool) {
        if plaintext {
            Self.tooManyConnections.withUnsafeBytes { raw in
                _ = Glibc.send(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
        }
        _ = Glibc.close(fd)
    }

    private static let tooManyConnections = POP3Response.err("Too many connections", code: .sysTemp)

    /// A short id, unique within this process: the counter in base 36 after a per-start prefix.
    private static let prefix: String = String(UInt32.random(in: 0...UInt32.max) % 46656, radix: 36)
    private static func sessionID(_ counter: UInt64) -> String {
        prefix + "-" + String(counter, radix: 36)
    }

    public var openSessionCount: Int { lock.withLock { sessions.count } }

    /// Stops accepting and starts the drain of every open session: each one's next command other
    /// than QUIT gets `-ERR [SYS/TEMP]`, and after `drain` whatever is left is closed, unapplied.
    public func stop(drain: Duration) {
        let (toStop, drivers, metrics): ([Listener], [SessionDriver], MetricsEndpoint?) = lock.withLock {
            stopping = true
            let l = listeners.map(\.1)
            listeners = []
            defer { metricsEndpoint = nil }
            return (l, Array(sessions.values), metricsEndpoint)
        }
        for listener in toStop { listener.stop() }
        // The metrics port closes with the POP3 ones: a stopping daemon takes no new connections.
        metrics?.stop()
        for driver in drivers {
            driver.loop.execute { driver.shutdown(drain: drain) }
        }
    }
}
