import Config
import FrontDoor
import Gateway
import Logging
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

    init(id: String, connection: Connection, listener: PopGateConfig.Listener, environment: ServerEnvironment, clientKey: ClientKey?, logger: Logger, onEnd: @escaping (SessionDriver) -> Void) {
        self.id = id
        self.loop = connection.loop
        self.client = Channel(connection: connection)
        self.listener = listener
        self.environment = environment
        self.clientKey = clientKey
        self.onEnd = onEnd
        self.startedAt = .now
        var logger = logger
        logger[metadataKey: LogKey.session] = .string(id)
        logger[metadataKey: LogKey.client] = .string(connection.peerAddress?.description ?? "unknown")
        logger[metadataKey: LogKey.listener] = .string(listener.name)
        self.logger = logger
        let limits = environment.config.clientLimits
        connection.highWatermark = limits.outputBuffer
        connection.lowWatermark = limits.outputBuffer / 4
        // Room for what one step can add above the watermark: a generated chunk or a relayed read,
        // dot-stuffed (at most doubled), in TLS records.
        connection.maxQueuedBytes = limits.outputBuffer + 4 * environment.config.gateway.limits.outputChunkSize + 256 * 1024
        connection.flushTimeout = limits.flushTimeout
        let local = connection.localAddress
        // On an implicit-TLS listener the machine starts (greets) only after the handshake.
        self.machine = GatewaySession(
            settings: environment.config.gateway,
            listener: ListenerContext(
                tlsActive: listener.tls == .implicit,
                startTLSAvailable: listener.tls == .starttls,
                plaintextAuthAllowed: listener.allowPlaintextAuth
            ),
            client: ClientContext(
                address: connection.peerAddress?.host,
                port: connection.peerAddress?.port,
                localAddress: local?.host,
                localPort: local?.port,
                sessionID: id
            )
        )
    }

    func start() {
        client.onData = { [unowned self] bytes in self.handle(.clientDataReceived(bytes)) }
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
            handle(.authPenaltyLookedUp(delay))
        case .recordAuthFailure:
            if let clientKey { environment.clients.loginFailed(clientKey) }
            logAuthenticationFailure()
        case .recordAuthSuccess:
            if let clientKey { environment.clients.loginSucceeded(clientKey) }
        case .startClientTLS:
            guard let context = environment.serverTLS else {
                handle(.clientClosed)
                return
            }
            client.onHandshake = { [unowned self] error in
                if let error {
                    self.logger.info("client TLS handshake failed", metadata: [LogKey.error: "\(error)"])
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
        case .connectBackend:
            connectBackend()
        case .sendToBackend(let bytes):
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
            startBackendTLS(on: backend)
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

    private func connectBackend() {
        let backendConfig = environment.config.backend
        if let user = machine.currentUser {
            logger[metadataKey: LogKey.user] = .string(user)
        }
        logger[metadataKey: LogKey.backend] = .string("\(backendConfig.host):\(backendConfig.port)")
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
                channel.onData = { [unowned self] bytes in self.handle(.backendDataReceived(bytes)) }
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
                    self.startBackendTLS(on: channel)
                } else {
                    self.handle(.backendConnected(encrypted: false))
                }
            }
        }
    }

    private func startBackendTLS(on channel: Channel) {
        guard let context = environment.backendTLS else {
            handle(.backendTLSFailed(reason: "no backend TLS context"))
            return
        }
        let backendConfig = environment.config.backend
        channel.startTLS(context: context, serverName: backendConfig.serverName ?? backendConfig.host)
    }

    /// The one line per session an operator greps for. The message carries everything (journalctl shows
    /// only MESSAGE by default); the same values go in fields for filtering.
    private func logSummary(_ summary: SessionSummary) {
        let duration = ContinuousClock.now - startedAt
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        if let user = summary.user { logger[metadataKey: LogKey.user] = .string(user) }
        let tls = client.protocolVersion ?? "none"
        let metadata: Logger.Metadata = [
            LogKey.ending: .string(summary.ending.rawValue),
            LogKey.listed: .stringConvertible(summary.listed),
            LogKey.retrieved: .stringConvertible(summary.retrieved),
            LogKey.retrievedBytes: .stringConvertible(summary.retrievedBytes),
            LogKey.top: .stringConvertible(summary.topCount),
            LogKey.deleted: .stringConvertible(summary.deleted),
            LogKey.retention: .string(summary.retention),
            LogKey.duration: .string(format3(seconds)),
            LogKey.tls: .string(tls),
        ]
        let client = client.connection.peerAddress?.description ?? "unknown"
        let message = "session ended: user=\(summary.user ?? "-") client=\(client) listener=\(listener.name) tls=\(tls) "
            + "ending=\(summary.ending.rawValue) listed=\(summary.listed) retrieved=\(summary.retrieved)/\(summary.retrievedBytes)B "
            + "top=\(summary.topCount) deleted=\(summary.deleted) retention=\(summary.retention) duration=\(format3(seconds))s"
        logger.info("\(message)", metadata: metadata)
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
