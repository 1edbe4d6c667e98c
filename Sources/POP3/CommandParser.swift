import Wire

/// Parses one POP3 command line (RFC 1939 §3, RFC 2449 §4), already cut by `LineFramer`.
///
/// ```
/// C: RETR 1        → .retr(1)
/// C: top 2 10      → .top(2, lines: 10)
/// C: PASS a b "c"  → .pass(Secret("a b \"c\""))
/// C: AUTH PLAIN =  → .auth(mechanism: "PLAIN", initialResponse: Secret([]))
/// ```
///
/// The keyword is case-insensitive and ends at the first space. `USER` and `PASS` take the rest of the
/// line verbatim (RFC 1939 allows spaces in a password). Numeric arguments and AUTH tokens tolerate
/// extra spaces, since some clients send them and a number cannot contain one.
public enum POP3CommandParser {
    /// Largest message number and TOP line count accepted (RFC 1939 leaves them unbounded; Dovecot
    /// uses 32-bit counters).
    public static let maximumNumber = Int(Int32.max)

    /// Parses one line (without its line ending).
    public static func parse(_ line: ArraySlice<UInt8>) -> Result<POP3Command, POP3CommandError> {
        // Control bytes (NUL, a CR in mid-line, TAB, DEL…) have no place in any POP3 command, and
        // rejecting them here keeps them out of USER names, passwords and logs alike.
        if line.contains(where: { $0 < 0x20 || $0 == 0x7F }) { return .failure(.invalidCharacters) }

        let space = line.firstIndex(of: ASCII.space)
        let keywordBytes = line[line.startIndex..<(space ?? line.endIndex)]
        // nil: no space after the keyword; empty: a space and nothing after it.
        let rest: ArraySlice<UInt8>? = space.map { line[line.index(after: $0)...] }

        guard String(validUTF8: keywordBytes) != nil else { return .failure(.invalidCharacters) }
        let keyword = String(decoding: keywordBytes.map(ASCII.uppercased), as: UTF8.self)

        switch keyword {
        case "USER":
            guard let rest, !rest.isEmpty else { return .failure(.missingArgument("USER needs a user name")) }
            guard let name = String(validUTF8: rest) else { return .failure(.invalidCharacters) }
            return .success(.user(name))
        case "PASS":
            // An empty password can never authenticate: say so now rather than after a backend round trip.
            guard let rest, !rest.isEmpty else { return .failure(.missingArgument("PASS needs a password")) }
            return .success(.pass(Secret(Array(rest))))
        case "AUTH":
            return parseAuth(tokens(rest))
        case "CAPA": return noArguments(.capa, rest)
        case "STLS": return noArguments(.stls, rest)
        case "STAT": return noArguments(.stat, rest)
        case "NOOP": return noArguments(.noop, rest)
        case "RSET": return noArguments(.rset, rest)
        case "QUIT": return noArguments(.quit, rest)
        case "APOP":
            // Never offered; the arguments (a name and a digest) do not matter for the refusal.
            return .success(.apop)
        case "LIST", "UIDL":
            let arguments = tokens(rest)
            let number: MessageNumber?
            switch arguments.count {
            case 0: number = nil
            case 1:
                guard let parsed = messageNumber(arguments[0]) else { return .failure(.invalidArgument("Invalid message number")) }
                number = parsed
            default: return .failure(.invalidArgument("Too many arguments for \(keyword)"))
            }
            return .success(keyword == "LIST" ? .list(number) : .uidl(number))
        case "RETR", "DELE":
            let arguments = tokens(rest)
            switch arguments.count {
            case 0: return .failure(.missingArgument("\(keyword) needs a message number"))
            case 1:
                guard let number = messageNumber(arguments[0]) else { return .failure(.invalidArgument("Invalid message number")) }
                return .success(keyword == "RETR" ? .retr(number) : .dele(number))
            default: return .failure(.invalidArgument("Too many arguments for \(keyword)"))
            }
        case "TOP":
            let arguments = tokens(rest)
            guard arguments.count >= 2 else { return .failure(.missingArgument("TOP needs a message number and a line count")) }
            guard arguments.count == 2 else { return .failure(.invalidArgument("Too many arguments for TOP")) }
            guard let message = messageNumber(arguments[0]) else { return .failure(.invalidArgument("Invalid message number")) }
            guard let lines = number(arguments[1]) else { return .failure(.invalidArgument("Invalid line count")) }
            return .success(.top(message, lines: lines))
        default:
            // The keyword is valid UTF-8 without control characters here; cut it so a client cannot
            // make us echo (or log) a long line.
            return .failure(.unknownCommand(String(String(decoding: keywordBytes, as: UTF8.self).prefix(16))))
        }
    }

    // MARK: - Arguments

    private static func tokens(_ rest: ArraySlice<UInt8>?) -> [ArraySlice<UInt8>] {
        guard let rest else { return [] }
        return rest.split(separator: ASCII.space, omittingEmptySubsequences: true)
    }

    private static func noArguments(_ command: POP3Command, _ rest: ArraySlice<UInt8>?) -> Result<POP3Command, POP3CommandError> {
        tokens(rest).isEmpty ? .success(command) : .failure(.invalidArgument("\(command.keyword) takes no arguments"))
    }

    /// `AUTH [mechanism [initial-response]]` (RFC 5034 §4).
    private static func parseAuth(_ arguments: [ArraySlice<UInt8>]) -> Result<POP3Command, POP3CommandError> {
        guard let first = arguments.first else { return .success(.auth(mechanism: nil, initialResponse: nil)) }
        guard arguments.count <= 2 else { return .failure(.invalidArgument("Too many arguments for AUTH")) }
        // RFC 4422 §3.1: 1 to 20 of A-Z, 0-9, "-", "_" (accepted in either case here).
        let isMechanismByte: (UInt8) -> Bool = { byte in
            let upper = ASCII.uppercased(byte)
            return (upper >= UInt8(ascii: "A") && upper <= UInt8(ascii: "Z")) || ASCII.isDigit(byte)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
        guard first.count <= 20, first.allSatisfy(isMechanismByte) else {
            return .failure(.invalidArgument("Invalid SASL mechanism name"))
        }
        let mechanism = String(decoding: first.map(ASCII.uppercased), as: UTF8.self)
        guard arguments.count == 2 else { return .success(.auth(mechanism: mechanism, initialResponse: nil)) }
        let response = arguments[1]
        // RFC 5034 §4: a lone "=" is an initial response of zero length.
        let initial = response.elementsEqual([UInt8(ascii: "=")]) ? Secret([]) : Secret(Array(response))
        return .success(.auth(mechanism: mechanism, initialResponse: initial))
    }

    private static func messageNumber(_ bytes: ArraySlice<UInt8>) -> MessageNumber? {
        guard let value = number(bytes), value >= 1 else { return nil }
        return MessageNumber(value)
    }

    /// Decimal digits only (no sign, no spaces), `0...maximumNumber`; leading zeros are fine.
    private static func number(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard !bytes.isEmpty else { return nil }
        var value = 0
        for byte in bytes {
            guard ASCII.isDigit(byte) else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
            // Checked on every digit, so `value` never gets near overflowing Int.
            if value > maximumNumber { return nil }
        }
        return value
    }
}
