import Wire

/// One POP3 command as the client sent it (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH).
///
/// Produced by `POP3CommandParser.parse(_:)`. Credentials are `Secret`s, so logging a command
/// never prints a password or an AUTH payload.
public enum POP3Command: Sendable, Equatable {
    /// `C: USER name` — the name is everything after the first space, kept as sent (UTF-8).
    case user(String)
    /// `C: PASS secret` — everything after `PASS ` (spaces included) is the password, byte-exact.
    case pass(Secret)
    /// `C: AUTH` (list mechanisms), `C: AUTH PLAIN`, `C: AUTH PLAIN dGVzdAB0ZXN0AHBhc3M=`.
    /// The mechanism is uppercased; the initial response is the base64 text as sent,
    /// empty for RFC 5034's `=` (an empty initial response), nil when absent.
    case auth(mechanism: String?, initialResponse: Secret?)
    case capa, stls, stat, noop, rset, quit
    /// `LIST` / `LIST n`, `UIDL` / `UIDL n`.
    case list(MessageNumber?), uidl(MessageNumber?)
    case retr(MessageNumber), dele(MessageNumber)
    /// `TOP n m`: the header and the first `lines` body lines of message `n` (RFC 1939 §7).
    case top(MessageNumber, lines: Int)
    /// Recognised (so the answer is "not supported" rather than "unknown command"), never offered.
    case apop

    /// The command keyword in upper case, for logs and error texts (never contains a credential).
    public var keyword: String {
        switch self {
        case .user: "USER"
        case .pass: "PASS"
        case .auth: "AUTH"
        case .capa: "CAPA"
        case .stls: "STLS"
        case .stat: "STAT"
        case .noop: "NOOP"
        case .rset: "RSET"
        case .quit: "QUIT"
        case .list: "LIST"
        case .uidl: "UIDL"
        case .retr: "RETR"
        case .dele: "DELE"
        case .top: "TOP"
        case .apop: "APOP"
        }
    }
}

/// Why a command line was rejected. `description` is the short reason sent after `-ERR `;
/// the session stays in its state (RFC 1939 §3: a bad command gets `-ERR`, nothing more).
public enum POP3CommandError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The keyword is not a POP3 command; carries the keyword as sent, cut to 16 characters.
    case unknownCommand(String)
    /// A required argument is missing; carries the reason, e.g. "RETR needs a message number".
    case missingArgument(String)
    /// An argument is malformed or out of range, or there are too many; carries the reason.
    case invalidArgument(String)
    /// The line holds NUL or another control byte, or the keyword (or USER name) is not UTF-8.
    case invalidCharacters

    public var description: String {
        switch self {
        case .unknownCommand(let keyword): keyword.isEmpty ? "Empty command" : "Unknown command: \(keyword)"
        case .missingArgument(let reason): reason
        case .invalidArgument(let reason): reason
        case .invalidCharacters: "Invalid characters in command"
        }
    }
}
