import ArgumentParser
import Config
import Dispatch
import Foundation
import Logging
import Server

@main
struct PopGate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "popgate",
        abstract: "A POP3 gateway in front of an IMAP server: mail stays on the server, POP3 actions become IMAP flags.",
        subcommands: [Serve.self, CheckConfig.self]
    )
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "Path of the YAML configuration file.")
    var config: String = "/etc/popgate/popgate.yaml"
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check-config", abstract: "Validate a configuration file and print each problem with its key.")

    @OptionGroup var options: ConfigOption

    func run() throws {
        do {
            let loaded = try ConfigLoader.load(path: options.config)
            for warning in loaded.warnings {
                print("\(options.config): warning: \(warning)")
            }
            print("\(options.config): OK")
        } catch {
            for problem in error.problems {
                print("\(error.file): \(problem)")
            }
            throw ExitCode(1)
        }
    }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the gateway in the foreground.")

    @OptionGroup var options: ConfigOption

    @Option(name: .long, help: "Seconds open sessions get to finish after SIGTERM/SIGINT.")
    var drainSeconds: Int = 30

    func run() throws {
        let loaded: LoadedConfig
        do {
            loaded = try ConfigLoader.load(path: options.config)
        } catch {
            for problem in error.problems {
                FileHandle.standardError.write(Data("\(error.file): \(problem)\n".utf8))
            }
            throw ExitCode(1)
        }
        let level = Logger.Level(rawValue: loaded.config.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "popgate")
        for warning in loaded.warnings {
            logger.warning("config: \(warning)")
        }

        // Writes to a closed socket must return EPIPE, not kill the daemon.
        signal(SIGPIPE, SIG_IGN)

        let server: GatewayServer
        do {
            server = try GatewayServer(config: loaded.config, logger: logger)
            try server.start()
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }

        let drain = drainSeconds
        var sources: [DispatchSourceSignal] = []
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .main)
            source.setEventHandler {
                logger.info("stopping", metadata: ["signal": .stringConvertible(signalNumber)])
                server.stop(drain: .seconds(drain))
                waitForDrain(server: server, logger: logger, deadline: .now() + .seconds(drain))
            }
            source.resume()
            sources.append(source)
        }
        withExtendedLifetime(sources) {
            dispatchMain()
        }
    }
}

/// Exits once every session has ended, or at the deadline.
private func waitForDrain(server: GatewayServer, logger: Logger, deadline: DispatchTime) {
    let open = server.openSessionCount
    if open == 0 || DispatchTime.now() >= deadline {
        if open > 0 { logger.warning("exiting with \(open) sessions still open") }
        logger.info("stopped")
        exit(0)
    }
    DispatchQueue.main.asyncAfter(deadline: .now() + .milliseconds(100)) {
        waitForDrain(server: server, logger: logger, deadline: deadline)
    }
}
