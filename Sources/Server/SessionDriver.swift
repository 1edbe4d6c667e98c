import Config
import FrontDoor
import Gateway
import Glibc
import IMAP
import Logging
import POP3
import Routing
import TLS
import Transport

/// Drives one `GatewaySession`: feeds it events and performs its actions with exactly one `run(_:)`.
/// It decides nothing about the protocol.
///
/// Confined to one event loop: every callback and every method runs on `loop.queue`.
final class SessionDriver: @unchecked Sendable {
    let id: String
    let loop: EventLoop
    private var machine: GatewaySession
    private let client: Channel
    private var backend: Channel?
    /// When each machine timer is due; the dispatch timers below only wake us up to look.
    private var deadlines: [SessionTimer: ContinuousClock.Instant] = [:]
    /// At most one armed dispatch timer per machine timer. Rescheduling to a later deadline (every
    /// command re-arms the idle timer, every backend read the backend timer) only moves the deadline:
    /// creating and cancelling a dispatch source per event cost more CPU than the data path.
    private var armed: [SessionTimer: (timer: Transport.Timer, at: ContinuousClock.Instant)] = [:]
    private let environment: ServerEnvironment
    private let listener: PopGateConfig.Listener
    private var logger: Logger
    private let startedAt: ContinuousClock.Instant
    private var ended = false
    private var drainTimer: Transport.Timer?
    private let onEnd: (SessionDriver) -> Void
    /// The per-client table key (nil for a peer without an IP address).
    let clientKey: ClientKey?
    /// The client's queue went above its high watermark and the machine was told so.
    private var clientThrottled = false
    /// Bumped by every connect and every close of the backend: a connect that completes for an attempt
    /// the machine already gave up on must not become the current backend link.
    private var backendAttempt = 0
    /// The server the current backend connection goes to (the route's).
    private var backendTarget: BackendTarget?
    /// The client as the session sees it: the TCP peer, or the one a PROXY header named.
    private var endpoints: ClientEndpoints
    /// When the current backend connect began: a successful login's latency is measured from it.
    private var backendConnectStartedAt: ContinuousClock.Instant?
    /// The protocol trace (`log.level: trace` when the session started, docs/operations.md); nil
    /// otherwise, when it costs one nil check per read and per backend write.
    private var trace: ProtocolTrace?

    struct ProtocolTrace {
        var client = POP3ProtocolTrace()
        var backend = IMAPProtocolTrace()
    }

    init(id: String, connection: Connection, listener: PopGateConfig.Listener, environment: ServerEnvironment, clientKey: ClientKey?, endpoints: ClientEndpoints? = nil, logger: Logger, onEnd: @escaping (SessionDriver) -> Void) {
        self.id = id
        self.loop = connection.loop
        self.client = Channel(connection: connection)
        self.listener = listener
        self.environment = environment
        self.clientKey = clientKey
        self.onEnd = onEnd
        self.startedAt = .now
        let endpoints = endpoints ?? ClientEndpoints(connection: connection)
        self.endpoints = endpoints
        var logger = logger
        logger[metadataKey: LogKey.session] = .string(id)
        logger[metadataKey: LogKey.client] = .string(endpoints.client?.description ?? "unknown")
        if let proxy = endpoints.proxy { logger[metadataKey: LogKey.proxy] = .string(proxy.description) }
        logger[metadataKey: LogKey.listener] = .string(listener.name)
        self.logger = logger
        // Decided once: a trace must see a connection from its first byte (or it could take a
        // literal's content for lines).
        if logger.logLevel <= .trace { trace = ProtocolTrace() }
        let limits = environment.config.clientLimits
        connection.highWatermark = limits.outputBuffer
        connection.lowWatermark = limits.outputBuffer / 4
        // Room for what one step can add above the watermark: a generated chunk or a relayed read,
        // dot-stuffed (at most doubled), in TLS records.
        connection.maxQueuedBytes = limits.outputBuffer + 4 * environment.config.gateway.limits.outputChunkSize + 256 * 1024
        connection.flushTimeout = limits.flushTimeout
        let local = endpoints.local
        // On an implicit-TLS listener the machine starts (greets) only after the handshake.
        self.machine = GatewaySession(
            settings: environment.config.gateway,
            listener: ListenerContext(
                tlsActive: listener.tls == .implicit,
                startTLSAvailable: listener.tls == .starttls,
                plaintextAuthAllowed: listener.allowPlaintextAuth
            ),
            client: ClientContext(
                address: endpoints.client?.host,
                port: endpoints.client?.port,
                localAddress: local?.host,
                localPort: local?.port,
                sessionID: id
            )
        )
    }

    func start() {
        client.onData = { [unowned self] bytes in
            if self.trace != nil { self.traceClient(bytes) }
            self.handle(.clientDataReceived(bytes))
        }
        client.onClosed = { [unowned self] _ in self.handle(.clientClosed) }
        client.onInputEnded = { [unowned self] in self.handle(.clientInputEnded) }
        client.start()
        logger.debug("connected")
        perform(machine.accepted())
        if listener.tls == .implicit {
            guard let context = environment.serverTLS else {
                logger.error("implicit TLS listener without a TLS context")
                finish()
                return
            }
            // RFC 8314: the greeting comes only after the handshake; the idle timer guards a silent client.
            run(.scheduleTimer(.idle, after: environment.config.gateway.idleTimeout))
            client.onHandshake = { [unowned self] error in
                if let error {
                    self.logger.info("client TLS handshake failed", metadata: [LogKey.error: "\(error)"])
                    self.environment.stats.metrics.clientTLSHandshakeFailed(listener: self.listener.name)
                    self.handle(.clientClosed)
                } else {
                    self.logger[metadataKey: LogKey.tls] = .string(self.client.protocolVersion ?? "TLS")
                    self.perform(self.machine.start())
                }
            }
            client.startTLS(context: context, serverName: nil)
        } else {
            perform(machine.start())
        }
        // What followed a PROXY header: a ClientHello for the handshake just started, or pipelined commands.
        let early = endpoints.pendingInput
        endpoints.pendingInput = []
        client.receiveEarlyInput(early)
    }

    func handle(_ event: SessionEvent) {
        guard !ended else { return }
        perform(machine.handle(event))
    }

    private func perform(_ actions: [SessionAction]) {
        for action in actions { run(action) }
    }

    /// The one place where actions become I/O.
    private func run(_ action: SessionAction) {
        switch action {
        case .sendToClient(let bytes):
            client.write(bytes)
            if client.connection.isAboveHighWatermark && !clientThrottled && !ended {
                // Back-pressure (docs/front-door.md): the machine stops reading both sides until the
                // client has taken its queue down to the low watermark.
                clientThrottled = true
                // Weak: a flushing close can drain the buffer after the session has ended.
                client.connection.onWritable = { [weak self] in
                    guard let self else { return }
                    self.client.connection.onWritable = nil
                    self.clientThrottled = false
                    self.handle(.clientOutputThrottled(false))
                }
                handle(.clientOutputThrottled(true))
            }
        case .requestClientWritable:
            // When throttled, `onWritable` reports the drain; otherwise a later loop turn, so other
            // connections on this loop get their turn between chunks.
            if !clientThrottled {
                loop.execute { [weak self] in self?.handle(.clientWritable) }
            }
        case .releaseIdleMemory:
            client.releaseIdleMemory()
            backend?.releaseIdleMemory()
        case .pauseBackendInput:
            backend?.connection.pauseReading()
        case .resumeBackendInput:
            backend?.connection.resumeReading()
        case .lookUpAuthPenalty:
            let delay = clientKey.map { environment.clients.penalty(for: $0) } ?? .zero
            if delay > .zero { environment.stats.metrics.authPenaltyApplied() }
            handle(.authPenaltyLookedUp(delay))
        case .lookUpUserLimits(let user, let claim):
            handle(.userLimitsLookedUp(environment.clients.userAdmission(user, claim: claim)))
        case .releaseUser(let user):
            environment.clients.releaseUser(user)
        case .recordAuthFailure:
            if let clientKey { environment.clients.loginFailed(clientKey) }
            logAuthenticationFailure()
        case .recordAuthSuccess:
            if let clientKey { environment.clients.loginSucceeded(clientKey) }
        case .lookUpUIDLHistory(let user):
            handle(.uidlHistoryLookedUp(environment.uidlHistory.recall(user)))
        case .rememberUIDLHistory(let user, let sample):
            environment.uidlHistory.remember(user, sample)
        case .startClientTLS:
            guard let context = environment.serverTLS else {
                handle(.clientClosed)
                return
            }
            trace?.client.reset()
            client.onHandshake = { [unowned self] error in
                if let error {
                    self.logger.info("client TLS handshake failed", metadata: [LogKey.error: "\(error)"])
                    self.environment.stats.metrics.clientTLSHandshakeFailed(listener: self.listener.name)
                    self.handle(.clientClosed)
                } else {
                    self.logger[metadataKey: LogKey.tls] = .string(self.client.protocolVersion ?? "TLS")
                    self.handle(.clientTLSEstablished)
                }
            }
            client.startTLS(context: context, serverName: nil)
        case .closeClient:
            client.close()
        case .pauseClientInput:
            client.connection.pauseReading()
        case .resumeClientInput:
            client.connection.resumeReading()
        case .resolveRoute(let request):
            resolveRoute(request)
        case .connectBackend(let target):
            connectBackend(target)
        case .sendToBackend(let bytes):
            if trace != nil, backend != nil { traceBackend(sent: bytes) }
            backend?.write(bytes)
        case .startBackendTLS:
            guard let backend else { return }
            backend.onHandshake = { [unowned self] error in
                if let error {
                    self.handle(.backendTLSFailed(reason: "\(error)"))
                } else {
                    self.handle(.backendTLSEstablished)
                }
            }
            startBackendTLS(on: backend, target: backendTarget)
        case .closeBackend:
            backendAttempt += 1
            backend?.close()
            backend = nil
        case .scheduleTimer(let timer, let after):
            let deadline = ContinuousClock.now + after
            deadlines[timer] = deadline
            if let current = armed[timer], current.at <= deadline { return }
            armed[timer]?.timer.cancel()
            arm(timer, at: deadline)
        case .cancelTimer(let timer):
            // The armed dispatch timer, if any, finds no deadline when it wakes.
            deadlines[timer] = nil
        case .log(let record):
            var metadata: Logger.Metadata = [:]
            for (key, value) in record.fields { metadata[key] = .string(value) }
            logger.log(level: record.level.loggerLevel, "\(record.message)", metadata: metadata)
        case .count(let counter):
            environment.stats.record(counter)
            if counter == .loginSucceeded, let started = backendConnectStartedAt {
                environment.stats.metrics.backendLoggedIn(after: .now - started)
                backendConnectStartedAt = nil
            }
        case .sessionEnded(let summary):
            logSummary(summary)
            finish()
        }
    }

    private func arm(_ timer: SessionTimer, at deadline: ContinuousClock.Instant) {
        let source = loop.schedule(after: deadline - ContinuousClock.now) { [weak self] in
            self?.timerWokeUp(timer)
        }
        armed[timer] = (source, deadline)
    }

    private func timerWokeUp(_ timer: SessionTimer) {
        armed[timer] = nil
        guard let deadline = deadlines[timer] else { return }
        if ContinuousClock.now < deadline {
            arm(timer, at: deadline)
            return
        }
        deadlines[timer] = nil
        handle(.timerFired(timer))
    }

    /// The static table answers at once; the answer still arrives as an event, as a routing service's
    /// does, so the machine sees one shape.
    private func resolveRoute(_ request: RouteRequest) {
        let config = environment.config
        if let settings = config.authHTTP {
            environment.authHTTP.resolve(request, settings: settings) { [weak self] result in
                guard let self else { return }
                let decision = Self.recentWindow(Self.decision(result, config: config), request)
                self.loop.execute { self.handle(.routeResolved(decision)) }
            }
            return
        }
        if let route = config.routes.route(for: request.user) {
            handle(.routeResolved(Self.recentWindow(.route(route), request)))
        } else {
            handle(.routeResolved(.noRoute))
        }
    }

    /// Recent mode lists what arrived in the last `recentModeDays` days (by the wall clock).
    static let recentModeDays = 30

    static func recentWindow(_ decision: RouteDecision, _ request: RouteRequest) -> RouteDecision {
        guard request.recent, case .route(var route) = decision else { return decision }
        let today = Int(Glibc.time(nil) / 86_400)
        route.recentSince = IMAPDay(daysSince1970: today - recentModeDays)
        return .route(route)
    }

    /// An `auth_http` answer as a route: its server and port with the top-level backend's TLS settings,
    /// its policy (`Auth-Policy`, a PopGate extension) or the default one.
    static func decision(_ result: Result<AuthHTTP.Answer, AuthHTTPFailure>, config: PopGateConfig) -> RouteDecision {
        switch result {
        case .failure(let failure):
            return .unavailable(reason: "auth_http: \(failure)")
        case .success(.invalid(let why)):
            return .unavailable(reason: "auth_http: \(why)")
        case .success(.refused(let text, let wait)):
            return .refused(text: text, wait: wait)
        case .success(.ok(let server, let port, let user, let password, let policyName)):
            var policy = config.defaultPolicy
            if let policyName {
                guard let named = config.policies[policyName] else {
                    return .unavailable(reason: "auth_http: Auth-Policy \(policyName) is not in policies")
                }
                policy = named
            }
            var backend = config.backend
            backend.host = server
            backend.port = port
            return .route(Route(name: "auth_http", backend: backend, policy: policy, user: user, password: password))
        }
    }

    private func connectBackend(_ backendConfig: BackendTarget) {
        if let user = machine.currentUser {
            logger[metadataKey: LogKey.user] = .string(user)
        }
        backendTarget = backendConfig
        logger[metadataKey: LogKey.backend] = .string(backendConfig.address)
        if let route = machine.routeName { logger[metadataKey: LogKey.route] = .string(route) }
        backendConnectStartedAt = .now
        // A new link: its trace starts at its first byte.
        if trace != nil { trace?.backend = IMAPProtocolTrace() }
        backendAttempt += 1
        let attempt = backendAttempt
        Connection.connect(host: backendConfig.host, port: backendConfig.port, loop: loop, timeout: environment.config.gateway.backendTimeout) { [weak self] result in
            guard let self else { return }
            // An attempt the machine gave up on (timeout, the client left) is not this session's link.
            let current = attempt == self.backendAttempt && !self.ended
            switch result {
            case .failure(let error):
                if current { self.handle(.backendConnectFailed(reason: "\(error)")) }
            case .success(let connection):
                guard current else {
                    connection.close(flush: false)
                    return
                }
                let channel = Channel(connection: connection)
                self.backend = channel
                channel.onData = { [unowned self] bytes in
                    if self.trace != nil { self.traceBackend(received: bytes) }
                    self.handle(.backendDataReceived(bytes))
                }
                channel.onClosed = { [unowned self] reason in
                    self.backend = nil
                    self.handle(.backendClosed(reason: reason))
                }
                channel.start()
                if backendConfig.tls == .implicit {
                    channel.onHandshake = { [unowned self] error in
                        if let error {
                            self.handle(.backendConnectFailed(reason: "TLS: \(error)"))
                        } else {
                            self.handle(.backendConnected(encrypted: true))
                        }
                    }
                    self.startBackendTLS(on: channel, target: backendConfig)
                } else {
                    self.handle(.backendConnected(encrypted: false))
                }
            }
        }
    }

    private func startBackendTLS(on channel: Channel, target: BackendTarget?) {
        guard let target, let context = environment.backendTLSContext(for: target) else {
            handle(.backendTLSFailed(reason: "no backend TLS context"))
            return
        }
        channel.startTLS(context: context, serverName: target.effectiveServerName)
    }

    /// The one line per session an operator greps for. The message carries everything (journalctl shows
    /// only MESSAGE by default); the same values go in fields for filtering.
    private func logSummary(_ summary: SessionSummary) {
        let duration = ContinuousClock.now - startedAt
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        if let user = summary.user { logger[metadataKey: LogKey.user] = .string(user) }
        let tls = client.protocolVersion ?? "none"
        var metadata: Logger.Metadata = [
            LogKey.ending: .string(summary.ending.rawValue),
            LogKey.listed: .stringConvertible(summary.listed),
            LogKey.retrieved: .stringConvertible(summary.retrieved),
            LogKey.retrievedBytes: .stringConvertible(summary.retrievedBytes),
            LogKey.top: .stringConvertible(summary.topCount),
            LogKey.deleted: .stringConvertible(summary.deleted),
            LogKey.retention: .string(summary.retention.rawValue),
            LogKey.duration: .string(format3(seconds)),
            LogKey.tls: .string(tls),
        ]
        if let hash = summary.uidlHash, let change = summary.uidlChange {
            metadata[LogKey.uidlHash] = .string(hash)
            metadata[LogKey.uidlChange] = .string(change.rawValue)
        }
        let client = endpoints.client?.description ?? "unknown"
        let message = "session ended: user=\(summary.user ?? "-") client=\(client) listener=\(listener.name) tls=\(tls) "
            + "ending=\(summary.ending.rawValue) listed=\(summary.listed) retrieved=\(summary.retrieved)/\(summary.retrievedBytes)B "
            + "top=\(summary.topCount) deleted=\(summary.deleted) retention=\(summary.retention.rawValue) duration=\(format3(seconds))s"
            + (summary.uidlHash.map { hash in " uidl_hash=\(hash) uidl_change=\(summary.uidlChange?.rawValue ?? "-")" } ?? "")
        logger.info("\(message)", metadata: metadata)
        environment.stats.metrics.sessionEnded(summary, listener: listener.name, duration: duration)
    }

    // MARK: Protocol trace

    private func traceClient(_ bytes: [UInt8]) {
        guard let lines = trace?.client.received(bytes) else { return }
        for line in lines { logger.trace("pop3 C: \(line)") }
    }

    private func traceBackend(sent bytes: [UInt8]) {
        guard let lines = trace?.backend.sent(bytes) else { return }
        for line in lines { logger.trace("imap C: \(line)") }
    }

    private func traceBackend(received bytes: [UInt8]) {
        guard let lines = trace?.backend.received(bytes) else { return }
        for line in lines { logger.trace("imap S: \(line)") }
    }

    /// One line per failed login (wrong credentials), in the fixed format fail2ban's filter
    /// (deploy/fail2ban/filter.d/popgate.conf) matches: `authentication failed: client=<address> user=<name>`.
    /// The address comes first, before anything the client chose; an IPv4 client of a dual-stack socket is
    /// written as IPv4. The same address is the field `client_ip` (journal: POPGATE_CLIENT_IP).
    private func logAuthenticationFailure() {
        let address = Self.plainAddress(client.connection.peerAddress?.host ?? "unknown")
        logger.notice("authentication failed: client=\(address) user=\(machine.currentUser ?? "-")",
                      metadata: [LogKey.clientIP: .string(address)])
    }

    /// `::ffff:a.b.c.d` (RFC 4291 IPv4-mapped) as `a.b.c.d`; anything else unchanged.
    static func plainAddress(_ host: String) -> String {
        let mapped = "::ffff:"
        guard host.lowercased().hasPrefix(mapped) else { return host }
        let rest = host.dropFirst(mapped.count)
        return rest.contains(".") ? String(rest) : host
    }

    private func finish() {
        guard !ended else { return }
        ended = true
        if let clientKey { environment.clients.connectionClosed(clientKey) }
        for (timer, _) in armed.values { timer.cancel() }
        armed = [:]
        deadlines = [:]
        drainTimer?.cancel()
        drainTimer = nil
        client.close()
        backend?.close()
        backend = nil
        onEnd(self)
    }

    /// Starts the drain for a daemon stop: the next command (other than QUIT) is refused, and at
    /// `drain` the session ends whatever it is doing, applying nothing.
    func shutdown(drain: Duration) {
        handle(.shutdownRequested)
        guard !ended else { return }
        drainTimer = loop.schedule(after: drain) { [weak self] in self?.handle(.drainExpired) }
    }
}

/// Seconds with three decimals, without Foundation.
func format3(_ value: Double) -> String {
    let millis = Int((value * 1000).rounded())
    let fraction = millis % 1000
    return "\(millis / 1000)." + String(repeating: "0", count: fraction < 10 ? 2 : (fraction < 100 ? 1 : 0)) + "\(fraction)"
}

extension LogRecord.Level {
    var loggerLevel: Logger.Level {
        switch self {
        case .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        }
    }
}
