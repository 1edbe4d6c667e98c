import Config
import Dispatch
import FrontDoor
import Foundation
import Glibc
import Gateway
import Logging
import POP3
import TLS
import Transport

/// What every session needs from the daemon: the validated config and the loaded TLS material.
struct ServerEnvironment: Sendable {
    let config: PopGateConfig
    let stats: ServerStats
    /// Per-client state that outlives sessions (connection counts, auth penalties): one for the daemon.
    let clients: ClientRegistry
    let serverTLS: TLSContext?
    let backendTLS: TLSContext?

    init(config: PopGateConfig, stats: ServerStats, clients: ClientRegistry) throws {
        self.config = config
        self.stats = stats
        self.clients = clients
        if let tls = config.tls {
            serverTLS = try TLSContext.server(certificateChainFile: tls.certificate, privateKeyFile: tls.key)
        } else {
            serverTLS = nil
        }
        switch config.backend.tls {
        case .none:
            backendTLS = nil
        case .starttls, .implicit:
            backendTLS = try TLSContext.client(caFile: config.backend.caFile, verifyPeer: config.backend.verifyCertificate)
        }
    }
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
    private var sessions: [ObjectIdentifier: SessionDriver] = [:]
    private var sessionCounter: UInt64 = 0
    private var stopping = false
    public let stats = ServerStats()
    private let clients: ClientRegistry

    public init(config: PopGateConfig, logger: Logger, loopCount: Int = ProcessInfo.processInfo.activeProcessorCount) throws {
        clients = ClientRegistry(limits: ClientTable.Limits(config))
        clients.update(userLimits: UserTable.Limits(config))
        do {
            environment = try ServerEnvironment(config: config, stats: stats, clients: clients)
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
        let configured = Set(config.listeners.map(\.name))
        if let unknown = passed.keys.sorted().first(where: { !configured.contains($0) }) {
            throw ServerError.listener(name: unknown, address: "systemd socket", reason: "passed by systemd (FileDescriptorName=\(unknown)) but the config has no listener with that name")
        }
        var bound: [(PopGateConfig.Listener, Listener)] = []
        func fail(_ error: ServerError) -> ServerError {
            for (_, listener) in bound { listener.stop() }
            return error
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
        lock.withLock { listeners = bound }
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

    /// Applies a new configuration and re-reads the certificate and key files. New sessions use it;
    /// open sessions keep what they started with. Throws (and keeps the old one) when the TLS material
    /// does not load. Listener addresses cannot change without a restart (the sockets may be systemd's).
    public func reload(config: PopGateConfig) throws {
        let new: ServerEnvironment
        do {
            new = try ServerEnvironment(config: config, stats: stats, clients: clients)
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
            Dictionary(uniqueKeysWithValues: listeners.map { ($0.0.name, $0.1.localAddress.description) })
        }
    }

    private func accepted(fd: Int32, peer: SocketAddress, listenerName: String) {
        // Limits are checked here, on the accept queue, before any per-connection work: a refused client
        // costs one accept, at most one short write and one close (accept never spins on it).
        let clientKey = ClientKey(host: peer.host)
        if let clientKey, case .refused(let limit, let log) = clients.connectionOpened(clientKey) {
            let tls = lock.withLock { self.environment.config.listeners.first { $0.name == listenerName }?.tls }
            refuse(fd: fd, plaintext: tls != .implicit)
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
            let driver = SessionDriver(id: id, connection: connection, listener: listener, environment: environment, clientKey: clientKey, logger: logger) { [weak self] driver in
                guard let self else { return }
                _ = self.lock.withLock { self.sessions.removeValue(forKey: ObjectIdentifier(driver)) }
            }
            lock.withLock { sessions[ObjectIdentifier(driver)] = driver }
            stats.sessionStarted()
            driver.start()
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
        let (toStop, drivers): ([Listener], [SessionDriver]) = lock.withLock {
            stopping = true
            let l = listeners.map(\.1)
            listeners = []
            return (l, Array(sessions.values))
        }
        for listener in toStop { listener.stop() }
        for driver in drivers {
            driver.loop.execute { driver.shutdown(drain: drain) }
        }
    }
}
