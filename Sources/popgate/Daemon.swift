import ArgumentParser
import Config
import CoreMetrics
import Dispatch
import Foundation
import Gateway
import Logging
import Server
import Systemd
import Transport

/// The daemon's life: start, signals (SIGHUP reloads, SIGTERM/SIGINT drain and stop), readiness,
/// status and watchdog around the server.
final class Daemon: @unchecked Sendable {
    // Touched only on the main queue.
    private let server: GatewayServer
    private let logger: Logger
    private let configPath: String
    private var drain: Duration
    private var sources: [DispatchSourceSignal] = []
    private var timers: [DispatchSourceTimer] = []
    private var stopping = false

    /// `popgate serve`: load the config, start the server on the sockets systemd passed (or bind
    /// the listeners), then run until a stop signal. Problems before logging is set up go to stderr.
    static func start(configPath: String) throws -> Never {
        let loaded: LoadedConfig
        do {
            loaded = try ConfigLoader.load(path: configPath)
        } catch {
            for problem in error.problems {
                FileHandle.standardError.write(Data("\(error.file): \(problem)\n".utf8))
            }
            throw ExitCode(1)
        }
        let logger = LoggingBootstrap.bootstrap(loaded.config)
        for warning in loaded.warnings {
            logger.warning("config: \(warning)")
        }

        // Writes to a closed socket must return EPIPE, not kill the daemon.
        signal(SIGPIPE, SIG_IGN)
        raiseOpenFilesLimit(for: loaded.config, logger: logger)

        // The metrics backend, bootstrapped once, before anything makes a metric; none without `metrics:`.
        var exposition: (@Sendable () -> [UInt8])?
        if loaded.config.metrics != nil {
            let export = PrometheusExport()
            MetricsSystem.bootstrap(export.factory)
            exposition = { export.exposition() }
        }
        let server: GatewayServer
        do {
            let activated = try SocketActivation.passedSockets().map { sockets in
                Dictionary(grouping: sockets, by: \.name).mapValues { $0.map(\.fd) }
            }
            server = try GatewayServer(config: loaded.config, logger: logger, exposition: exposition)
            try server.start(activatedSockets: activated)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }

        let daemon = Daemon(server: server, logger: logger, configPath: configPath, drain: loaded.config.drainTimeout)
        daemon.run()
    }

    /// Two descriptors per session: the soft limit goes up to what the service manager allows, and a
    /// limit too small for `limits.connections` is said at start, not discovered as EMFILE under load.
    private static func raiseOpenFilesLimit(for config: PopGateConfig, logger: Logger) {
        guard let outcome = OpenFilesLimit.raiseToHardLimit() else {
            logger.warning("cannot read the open files limit (RLIMIT_NOFILE)")
            return
        }
        let needed = OpenFilesLimit.needed(forConnections: config.clientLimits.connections)
        if outcome.after < needed {
            logger.warning("open files limit \(outcome.after) is below the \(needed) that limits.connections (\(config.clientLimits.connections)) needs; raise LimitNOFILE= in the service unit or lower limits.connections",
                           metadata: [LogKey.openFiles: .string(String(outcome.after)), LogKey.hardLimit: .string(String(outcome.hard))])
        } else if outcome.after != outcome.before {
            logger.debug("raised the open files limit", metadata: [LogKey.from: .string(String(outcome.before)), LogKey.to: .string(String(outcome.after))])
        }
    }

    private init(server: GatewayServer, logger: Logger, configPath: String, drain: Duration) {
        self.server = server
        self.logger = logger
        self.configPath = configPath
        self.drain = drain
    }

    private func run() -> Never {
        // The signal sources and timers are made on the main queue, where their handlers later run:
        // on Linux dispatchMain() hands the main queue to another thread, and `sources`/`timers` must
        // not be touched from two threads (ThreadSanitizer saw the main thread's setup race the first
        // handler). The signals are ignored at once, so none arriving meanwhile kills the process.
        for signalNumber in [SIGTERM, SIGINT, SIGHUP, SIGUSR2] { signal(signalNumber, SIG_IGN) }
        DispatchQueue.main.async { [self] in armSignalsAndReadiness() }
        dispatchMain()
    }

    private func armSignalsAndReadiness() {
        handle(SIGTERM) { $0.stop(signal: SIGTERM) }
        handle(SIGINT) { $0.stop(signal: SIGINT) }
        handle(SIGHUP) { $0.reload() }
        // Dispatch arms a signal source asynchronously, and until then the signal is ignored: a
        // `systemctl reload` right after READY=1 could be lost. A SIGUSR2 sent to ourselves until its
        // source fires proves the sources armed before it are live; only then are we ready. It is sent
        // to the process, like any signal from outside (a thread-directed raise() could stay pending on
        // a thread that blocks it).
        handle(SIGUSR2) { daemon in daemon.signalsArmed() }
        repeatEvery(.milliseconds(5)) { daemon in
            if !daemon.announcedReady { kill(getpid(), SIGUSR2) }
        }
    }

    private var announcedReady = false

    private func signalsArmed() {
        guard !announcedReady else { return }
        announcedReady = true
        timers.removeLast().cancel()
        ServiceNotifier.ready(status: statusLine())
        logger.info("ready")
        repeatEvery(.seconds(5)) { daemon in
            if !daemon.stopping { ServiceNotifier.status(daemon.statusLine()) }
        }
        if let interval = ServiceNotifier.watchdogInterval() {
            // Pinged only after every event loop ran a turn: a stuck loop stops the pings.
            repeatEvery(interval / 2) { daemon in
                daemon.server.afterEveryLoopTurned { ServiceNotifier.watchdogPing() }
            }
        }
    }

    private func handle(_ signalNumber: Int32, _ body: @escaping (Daemon) -> Void) {
        signal(signalNumber, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .main)
        source.setEventHandler { [unowned self] in body(self) }
        source.resume()
        sources.append(source)
    }

    private func repeatEvery(_ interval: Duration, _ body: @escaping (Daemon) -> Void) {
        let timer = DispatchSource.makeTimerSource(queue: .main)
        let nanoseconds = Int(interval.components.seconds * 1_000_000_000 + interval.components.attoseconds / 1_000_000_000)
        timer.schedule(deadline: .now() + .nanoseconds(nanoseconds), repeating: .nanoseconds(max(nanoseconds, 1_000_000)))
        timer.setEventHandler { [unowned self] in body(self) }
        timer.resume()
        timers.append(timer)
    }

    private func statusLine() -> String {
        let stats = server.stats.snapshot
        return "\(server.openSessionCount) sessions open; since start: \(stats.sessionsSinceStart) sessions, \(stats.logins) logins, \(stats.failedLogins) failed logins, \(stats.backendErrors) backend errors"
    }

    /// SIGHUP: re-read the config and the TLS files; a bad new config leaves the old one in force.
    private func reload() {
        guard !stopping else { return }
        ServiceNotifier.reloading(monotonicMicroseconds: ServiceNotifier.monotonicMicroseconds())
        defer { ServiceNotifier.ready(status: statusLine()) }
        do {
            let loaded = try ConfigLoader.load(path: configPath)
            for warning in loaded.warnings { logger.warning("config: \(warning)") }
            try server.reload(config: loaded.config)
            drain = loaded.config.drainTimeout
            LogLevelSwitch.shared.level = Logger.Level(rawValue: loaded.config.logLevel) ?? .info
            logger.info("reloaded configuration", metadata: [LogKey.config: .string(configPath)])
            server.stats.configReloaded(ok: true)
        } catch let error as ConfigError {
            server.stats.configReloaded(ok: false)
            for problem in error.problems {
                logger.error("reload rejected, keeping the running configuration: \(problem)", metadata: [LogKey.config: .string(configPath)])
            }
        } catch {
            server.stats.configReloaded(ok: false)
            logger.error("reload rejected, keeping the running configuration: \(error)", metadata: [LogKey.config: .string(configPath)])
        }
    }

    /// SIGTERM/SIGINT: stop accepting, drain, exit 0. A second signal exits at once.
    private func stop(signal signalNumber: Int32) {
        if stopping {
            logger.warning("second stop signal: exiting now", metadata: [LogKey.openSessions: .stringConvertible(server.openSessionCount)])
            exit(0)
        }
        stopping = true
        ServiceNotifier.stopping()
        logger.info("stopping", metadata: [LogKey.signal: .stringConvertible(signalNumber), LogKey.openSessions: .stringConvertible(server.openSessionCount)])
        server.stop(drain: drain)
        let deadline = ContinuousClock.now + drain + .seconds(2)
        repeatEvery(.milliseconds(50)) { daemon in
            let open = daemon.server.openSessionCount
            guard open == 0 || ContinuousClock.now >= deadline else { return }
            if open > 0 { daemon.logger.warning("exiting with \(open) sessions still open") }
            daemon.logger.info("stopped")
            exit(0)
        }
    }
}
