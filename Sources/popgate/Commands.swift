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
        // One paragraph: an empty line becomes an empty input line in the generated mdoc page (a groff warning).
        discussion: """
            PopGate logs POP3 clients in to the IMAP server as themselves and turns POP3 commands into \
            IMAP operations. The configuration is /etc/popgate/popgate.yaml unless --config says \
            otherwise; popgate.yaml(5) documents every key. Under systemd, popgate.service runs \
            `popgate serve` with the sockets of popgate-pop3.socket (port 110) and popgate-pop3s.socket \
            (port 995). SIGHUP re-reads the configuration and the TLS files without dropping sessions \
            (a bad file is refused and the running configuration stays); SIGTERM or SIGINT stops \
            accepting, lets open sessions finish for up to timeouts.drain and exits 0, a second one \
            exits at once. Each failed login is logged as "authentication failed: client=ADDRESS \
            user=NAME" (journal fields POPGATE_CLIENT_IP, POPGATE_USER), which the fail2ban filter \
            /etc/fail2ban/filter.d/popgate.conf matches. See /usr/share/doc/popgate/README.md.
            """,
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
