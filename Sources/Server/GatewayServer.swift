import Config
import Dispatch
import Foundation
import Gateway
import Logging
import TLS
import Transport

/// What every session needs from the daemon: the validated config and the loaded TLS material.
struct ServerEnvironment: Sendable {
    let config: PopGateConfig
    let stats: ServerStats
    let serverTLS: TLSContext?
    let backendTLS: TLSContext?

    init(config: PopGateConfig, stats: ServerStats) throws {
        self.config = config
        self.stats = stats
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

    public init(config: PopGateConfig, logger: Logger, loopCount: Int = ProcessInfo.processInfo.activeProcessorCount) throws {
        do {
            environment = try ServerEnvironment(config: config, stats: stats)
        } catch {
            throw ServerError.tls("\(error)")
        }
        self.logger = logger
        self.group = EventLoopGroup(loopCount: max(1, loopCount))
    }

    /// Binds every configured listener and starts accepting. Throws on the first listener that cannot bind.
    public func start() throws {
        let config = lock.withLock { environment.config }
        var bound: [(PopGateConfig.Listener, Listener)] = []
        for listenerConfig in config.listeners {
            do {
                let listener = try Listener.bind(host: listenerConfig.host, port: listenerConfig.port)
                bound.append((listenerConfig, listener))
            } catch {
                for (_, listener) in bound { listener.stop() }
                throw ServerError.listener(name: listenerConfig.name, address: "\(listenerConfig.host):\(listenerConfig.port)", reason: "\(error)")
            }
        }
        lock.withLock { listeners = bound }
        for (listenerConfig, listener) in bound {
            listener.start(acceptQueue: acceptQueue) { [weak self] fd, peer in
                self?.accepted(fd: fd, peer: peer, listener: listenerConfig)
            }
            logger.info("listening", metadata: [
                LogKey.listener: .string(listenerConfig.name),
                LogKey.address: .string(listener.localAddress.description),
                LogKey.tls: .string(listenerConfig.tls.rawValue),
            ])
        }
    }

    /// Where each listener is bound (the real port when the config said 0).
    public var boundAddresses: [String: String] {
        lock.withLock {
            Dictionary(uniqueKeysWithValues: listeners.map { ($0.0.name, $0.1.localAddress.description) })
        }
    }

    private func accepted(fd: Int32, peer: SocketAddress, listener: PopGateConfig.Listener) {
        let loop = group.next()
        let (environment, id, refused): (ServerEnvironment, String, Bool) = lock.withLock {
            sessionCounter += 1
            return (self.environment, Self.sessionID(sessionCounter), stopping)
        }
        loop.execute { [self] in
            let connection = Connection(fd: fd, loop: loop, peerAddress: peer)
            if refused {
                connection.close(flush: false)
                return
            }
            let driver = SessionDriver(id: id, connection: connection, listener: listener, environment: environment, logger: logger) { [weak self] driver in
                guard let self else { return }
                _ = self.lock.withLock { self.sessions.removeValue(forKey: ObjectIdentifier(driver)) }
            }
            lock.withLock { sessions[ObjectIdentifier(driver)] = driver }
            stats.sessionStarted()
            driver.start()
        }
    }

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
