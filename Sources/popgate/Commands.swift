import ArgumentParser
import Config
import Foundation
import TLS

/// The command line: `popgate serve`, `popgate check-config`, `popgate --version`.
/// docs/man/popgate.8 is generated from these declarations (`make man`).
@main
struct PopGate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "popgate",
        abstract: "A POP3 gateway in front of an IMAP server: mail stays on the server, POP3 actions become IMAP flags.",
        version: "popgate \(popGateVersion)\n\(OpenSSLLibrary.version)",
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
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the gateway in the foreground (systemd: Type=notify, socket activation, SIGHUP reloads, SIGTERM drains)."
    )

    @OptionGroup var options: ConfigOption

    func run() throws {
        try Daemon.start(configPath: options.config)
    }
}
