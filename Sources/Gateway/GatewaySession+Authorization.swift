import POP3
import Wire

/// The AUTHORIZATION state (RFC 1939 §4): CAPA, STLS, USER/PASS, AUTH PLAIN.
extension GatewaySession {
    var loginAllowedHere: Bool { tlsActive || listener.plaintextAuthAllowed }
    var startTLSOffered: Bool { listener.startTLSAvailable && !tlsActive }

    static let mustUseTLS = "Plaintext authentication disallowed on non-secure connections; use STLS first."

    mutating func authorizationCommand(_ command: POP3Command) -> [SessionAction] {
        guard case .authorization(let pendingUser) = phase else { return [] }
        switch command {
        case .capa:
            return [.sendToClient(capabilityResponse())]
        case .noop:
            // RFC 1939 defines NOOP for TRANSACTION only; answering it here harms no client.
            return [.sendToClient(POP3Response.ok(""))]
        case .quit:
            summary.ending = .quit
            return endSession(.quit, notifyClient: POP3Response.ok("Logging out."))
        case .stls:
            guard startTLSOffered else {
                return commandFailed(tlsActive ? "TLS is already active." : "STLS is not offered on this port.")
            }
            // RFC 2595 §4 / CVE-2011-0411: plaintext pipelined after STLS must never be executed.
            framer.discardBuffered()
            phase = .clientTLSHandshake
            return [.sendToClient(POP3Response.ok("Begin TLS negotiation now.")), .startClientTLS]
        case .user(let name):
            guard loginAllowedHere else { return commandFailed(Self.mustUseTLS, code: .auth) }
            phase = .authorization(user: name)
            return [.sendToClient(POP3Response.ok("Send your password."))]
        case .pass(let password):
            guard loginAllowedHere else { return commandFailed(Self.mustUseTLS, code: .auth) }
            guard let user = pendingUser else { return commandFailed("No username given; send USER first.") }
            return beginLogin(SASLPlain(authorizationIdentity: "", authenticationIdentity: user, password: password))
        case .auth(let mechanism, let initialResponse):
            guard let mechanism else {
                // Bare AUTH lists the mechanisms (a pre-RFC 5034 habit many clients still have).
                return [.sendToClient(POP3Response.multiline("List of supported SASL mechanisms follows:", lines: ["PLAIN"]))]
            }
            guard loginAllowedHere else { return commandFailed(Self.mustUseTLS, code: .auth) }
            guard mechanism == "PLAIN" else { return commandFailed("Unsupported authentication mechanism.") }
            guard let initialResponse else {
                phase = .saslResponse
                return [.sendToClient(POP3Response.continuation([]))]
            }
            return saslPlainReceived(initialResponse.bytes)
        case .apop:
            return commandFailed("APOP is not supported.")
        case .stat, .list, .uidl, .retr, .dele, .top, .rset:
            return commandFailed("Not logged in.")
        }
    }

    mutating func saslResponseReceived(_ line: [UInt8]) -> [SessionAction] {
        phase = .authorization(user: nil)
        if line == [UInt8(ascii: "*")] {
            return commandFailed("Authentication cancelled.")
        }
        return saslPlainReceived(line)
    }

    mutating func saslPlainReceived(_ base64: [UInt8]) -> [SessionAction] {
        // RFC 5034 §4: "=" is an empty initial response, which PLAIN cannot use.
        guard base64 != [UInt8(ascii: "=")], let credentials = SASLPlain.decode(base64: base64) else {
            return commandFailed("Invalid SASL PLAIN response.")
        }
        return beginLogin(credentials)
    }

    func capabilityResponse() -> [UInt8] {
        var lines = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if case .authorization = phase {
            if loginAllowedHere {
                lines += ["USER", "SASL PLAIN"]
            }
            if startTLSOffered { lines.append("STLS") }
        }
        if settings.limits.loginInterval > .zero {
            // RFC 2449 §6.5: the least seconds between logins, so a polling client can set its interval.
            let (seconds, attoseconds) = settings.limits.loginInterval.components
            lines.append("LOGIN-DELAY \(seconds + (attoseconds > 0 ? 1 : 0))")
        }
        lines.append("IMPLEMENTATION PopGate")
        return POP3Response.multiline("Capability list follows", lines: lines)
    }

    mutating func clientTLSEstablished() -> [SessionAction] {
        guard case .clientTLSHandshake = phase else { return [] }
        tlsActive = true
        phase = .authorization(user: nil)
        // Anything read before the handshake finished was discarded at STLS; start clean.
        framer.discardBuffered()
        return processClientInput()
    }
}
