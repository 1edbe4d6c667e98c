import IMAP
import POP3
import Wire

/// Logging in to the backend as the user, selecting the maildrop folder and taking the snapshot.
///
///     S: * OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN ...] ready
///     C: P1 AUTHENTICATE PLAIN <base64>
///     S: P1 OK [CAPABILITY IMAP4rev1 ... UIDPLUS MOVE] Logged in
///     C: P2 SELECT INBOX
///     S: * OK [UIDVALIDITY 1732780000] ...   * 3 EXISTS   P2 OK [READ-WRITE] ...
///     C: P3 UID FETCH 1:* (UID RFC822.SIZE FLAGS)
///     S: * 1 FETCH (UID 1 RFC822.SIZE 1234 FLAGS ()) ...  P3 OK
struct Login: Sendable {
    enum Step: Sendable, Equatable {
        case connecting, greeting, startTLS, tlsHandshake, capability, authenticate, postLoginCapability, select, snapshot
    }

    var credentials: SASLPlain
    var step: Step = .connecting
    var encrypted = false
    var startTLSDone = false
    /// AUTHENTICATE PLAIN without SASL-IR: the payload waits for the continuation request.
    var pendingPayload: Secret?
    var uidValidity: UIDValidity?
    var exists: UInt32 = 0
    var fetched: [FetchedSummary] = []
    var current: PartialSummary?
}

struct PartialSummary: Sendable {
    var uid: UID?
    var size: UInt64?
    var flags: [String] = []
}

/// How a login failure is answered (house style 7: the error says what to do next).
struct LoginFailure: Sendable {
    var code: ResponseCode
    var text: String
    /// Wrong credentials: answered only after the failure delay.
    var delayed: Bool
    var log: String

    static func temporary(_ log: String) -> LoginFailure {
        LoginFailure(code: .sysTemp, text: "Backend server unavailable, try again later.", delayed: false, log: log)
    }

    static func permanent(_ text: String, log: String) -> LoginFailure {
        LoginFailure(code: .sysPerm, text: text, delayed: false, log: log)
    }
}

extension GatewaySession {
    mutating func beginLogin(_ credentials: SASLPlain) -> [SessionAction] {
        summary.user = credentials.authenticationIdentity
        phase = .login(Login(credentials: credentials))
        backend = .connecting
        return [.connectBackend, .scheduleTimer(.backend, after: settings.backendTimeout)]
    }

    mutating func withLogin(_ body: (inout Login) -> [SessionAction]) -> [SessionAction] {
        guard case .login(var login) = phase else { return [] }
        phase = .notStarted  // avoid a copy-on-write of the snapshot being built
        let actions = body(&login)
        if case .notStarted = phase { phase = .login(login) }
        return actions
    }

    mutating func backendConnected(encrypted: Bool) -> [SessionAction] {
        guard case .login(var login) = phase else {
            // The client left meanwhile; endSession already asked to close the backend.
            return []
        }
        backend = .connected
        login.step = .greeting
        login.encrypted = encrypted
        phase = .login(login)
        return []
    }

    mutating func backendTLSEstablished() -> [SessionAction] {
        guard case .login(var login) = phase, login.step == .tlsHandshake else { return [] }
        login.startTLSDone = true
        login.encrypted = true
        phase = .login(login)
        // RFC 3501 §6.2.1: capabilities learned before STARTTLS must be forgotten.
        capabilities = []
        return sendLoginCommand(.capability, step: .capability)
    }

    mutating func sendLoginCommand(_ command: IMAPCommand, step: Login.Step) -> [SessionAction] {
        guard case .login(var login) = phase else { return [] }
        login.step = step
        phase = .login(login)
        return sendIMAP(command)
    }

    /// Untagged responses and continuation requests during login.
    mutating func loginResponse(_ response: IMAPResponse) -> [SessionAction] {
        guard case .login(var login) = phase else { return [] }
        switch (login.step, response) {
        case (.greeting, .untagged(let condition)):
            switch condition.status {
            case .ok:
                return afterGreeting()
            case .preauth:
                return loginFailed(.permanent("Backend misconfigured.", log: "backend greeted with PREAUTH"))
            case .bye, .no, .bad:
                return loginFailed(.temporary("backend refused the connection: \(ASCII.sanitized(Array(condition.text.utf8)))"))
            }
        case (.authenticate, .continuationRequest):
            // AUTHENTICATE PLAIN without SASL-IR: the server asks for the payload; a second ask cancels.
            let payload = login.pendingPayload ?? Secret("*")
            login.pendingPayload = nil
            phase = .login(login)
            return [.sendToBackend(IMAPCommandEncoder.continuationResponse(payload))]
        case (.select, .exists(let count)):
            login.exists = count
            phase = .login(login)
        case (.select, .untagged(let condition)):
            if case .uidValidity(let value)? = condition.code {
                login.uidValidity = value
                phase = .login(login)
            }
        case (.snapshot, .fetchBegin):
            login.current = PartialSummary()
            phase = .login(login)
        case (.snapshot, .fetchAttribute(let attribute)):
            return withLogin { login in
                switch attribute {
                case .uid(let uid): login.current?.uid = uid
                case .rfc822Size(let size): login.current?.size = size
                case .flags(let flags): login.current?.flags = flags
                case .other: break
                }
                return []
            }
        case (.snapshot, .fetchEnd):
            return withLogin { login in
                // Unsolicited FETCH (flag changes) lack the size: not part of the answer.
                if let current = login.current, let uid = current.uid, let size = current.size {
                    login.fetched.append(FetchedSummary(uid: uid, size: size, flags: current.flags))
                }
                login.current = nil
                return []
            }
        default:
            break
        }
        return []
    }

    mutating func afterGreeting() -> [SessionAction] {
        guard case .login(let login) = phase else { return [] }
        if settings.backendStartTLS && !login.startTLSDone {
            return sendLoginCommand(.starttls, step: .startTLS)
        }
        if capabilities.isEmpty {
            return sendLoginCommand(.capability, step: .capability)
        }
        return authenticate()
    }

    mutating func authenticate() -> [SessionAction] {
        guard case .login(var login) = phase else { return [] }
        guard login.encrypted || settings.backendPlaintextAllowed else {
            return loginFailed(.permanent("Backend connection is not secure.", log: "refusing to send a password over an unencrypted backend connection (set backend.tls: none to allow)"))
        }
        let credentials = login.credentials
        if capabilities.contains("AUTH=PLAIN") {
            let payload = credentials.encodedBase64()
            let command: IMAPCommand
            if capabilities.contains("SASL-IR") {
                command = .authenticatePlain(initialResponse: payload)
            } else {
                login.pendingPayload = payload
                command = .authenticatePlain(initialResponse: nil)
            }
            phase = .login(login)
            return sendLoginCommand(command, step: .authenticate)
        }
        if capabilities.contains("LOGINDISABLED") {
            return loginFailed(.permanent("Backend refuses to log in.", log: "backend advertises LOGINDISABLED and no AUTH=PLAIN"))
        }
        guard credentials.authorizationIdentity.isEmpty || credentials.authorizationIdentity == credentials.authenticationIdentity else {
            return loginFailed(.permanent("Authorization identity not supported by the backend.", log: "backend has no AUTH=PLAIN, cannot pass an authorization identity"))
        }
        return sendLoginCommand(.login(user: Secret(credentials.authenticationIdentity), password: credentials.password), step: .authenticate)
    }

    mutating func loginTagged(_ condition: IMAPCondition) -> [SessionAction] {
        guard case .login(let login) = phase else { return [] }
        switch login.step {
        case .connecting, .greeting, .tlsHandshake:
            return loginFailed(.temporary("unexpected tagged response during login"))
        case .startTLS:
            guard condition.status == .ok else {
                return loginFailed(.permanent("Backend refused TLS.", log: "backend refused STARTTLS: \(condition.text)"))
            }
            // Plaintext the server sent after its OK must not be trusted (the STARTTLS injection class).
            imap = IMAPResponseParser()
            var login = login
            login.step = .tlsHandshake
            phase = .login(login)
            return [.startBackendTLS, .scheduleTimer(.backend, after: settings.backendTimeout)]
        case .capability:
            guard condition.status == .ok else { return loginFailed(.temporary("CAPABILITY failed: \(condition.text)")) }
            return authenticate()
        case .authenticate:
            guard condition.status == .ok else { return loginFailed(Self.authenticationFailure(condition)) }
            if case .capability? = condition.code {
                return selectMailbox()
            }
            return sendLoginCommand(.capability, step: .postLoginCapability)
        case .postLoginCapability:
            return selectMailbox()
        case .select:
            guard condition.status == .ok else { return loginFailed(Self.selectFailure(condition, mailbox: settings.mailbox)) }
            guard login.uidValidity != nil else { return loginFailed(.temporary("SELECT gave no UIDVALIDITY")) }
            if login.exists == 0 {
                return finishLogin()
            }
            return sendLoginCommand(.uidFetch(UIDSet.all, items: [.uid, .rfc822Size, .flags]), step: .snapshot)
        case .snapshot:
            guard condition.status == .ok else { return loginFailed(.temporary("snapshot FETCH failed: \(condition.text)")) }
            return finishLogin()
        }
    }

    /// Which retention policy this backend can carry out safely. A plain EXPUNGE is never used: it would
    /// also remove messages other clients flagged `\Deleted`.
    var effectiveOnDelete: RetentionPolicy.OnDelete? {
        let uidplus = capabilities.contains("UIDPLUS")
        let move = capabilities.contains("MOVE")
        switch settings.retention.onDelete {
        case .expunge: return uidplus ? .expunge : (move ? .move : nil)
        case .move: return (move || uidplus) ? .move : nil
        case .flag, .keep: return settings.retention.onDelete
        }
    }

    mutating func selectMailbox() -> [SessionAction] {
        guard let policy = effectiveOnDelete else {
            return loginFailed(.permanent("Backend cannot delete safely (no UIDPLUS or MOVE).", log: "retention.on_delete \(settings.retention.onDelete.rawValue) needs UIDPLUS or MOVE, which the backend lacks"))
        }
        var actions: [SessionAction] = []
        if policy != settings.retention.onDelete {
            actions.append(.log(LogRecord(.warning, "backend lacks UIDPLUS: retention on_delete expunge falls back to move to \(settings.retention.moveTo)")))
        }
        return actions + sendLoginCommand(.select(mailbox: settings.mailbox), step: .select)
    }

    mutating func finishLogin() -> [SessionAction] {
        guard case .login(let login) = phase, let uidValidity = login.uidValidity else { return [] }
        let hidden = settings.retention.onDelete == .flag ? settings.retention.flagKeyword : nil
        let drop = Maildrop.snapshot(login.fetched, uidValidity: uidValidity, hiddenKeyword: hidden)
        guard drop.entries.count <= settings.limits.maxMessages else {
            return loginFailed(.permanent("Mailbox too large for POP3.", log: "\(drop.entries.count) messages exceed limits.max_messages"))
        }
        maildrop = drop
        phase = .transaction
        summary.listed = drop.entries.count
        authFailures = 0
        return [
            .count(.loginSucceeded),
            .log(LogRecord(.info, "logged in", fields: ["messages": String(drop.entries.count)])),
            .sendToClient(POP3Response.ok("Logged in.")),
        ] + processClientInput()
    }

    /// Ends the login attempt: the backend connection is dropped, the client may try again.
    mutating func loginFailed(_ failure: LoginFailure) -> [SessionAction] {
        var actions: [SessionAction] = [
            .cancelTimer(.backend),
            .count(failure.delayed ? .loginFailed : .backendError),
            .log(LogRecord(failure.delayed ? .notice : .warning, "login failed: \(ASCII.sanitized(Array(failure.log.utf8)))")),
        ]
        if backend == .connected { actions.append(.sendToBackend(Array("Z LOGOUT\r\n".utf8))) }
        if backend != .none { actions.append(.closeBackend) }
        backend = .none
        currentTag = nil
        pendingSegments = []
        imap = IMAPResponseParser()
        capabilities = []
        let response = POP3Response.err(failure.text, code: failure.code)
        guard failure.delayed else {
            phase = .authorization(user: nil)
            return actions + [.sendToClient(response)] + processClientInput()
        }
        authFailures += 1
        phase = .loginFailed(response: response, close: authFailures >= settings.limits.maxAuthFailures)
        return actions + [.scheduleTimer(.authFailureDelay, after: settings.authFailureDelay)]
    }

    static func authenticationFailure(_ condition: IMAPCondition) -> LoginFailure {
        let log = "backend said \(condition.status) \(condition.text)"
        switch condition.code {
        case .unavailable?:
            return .temporary(log)
        case .inUse?:
            return LoginFailure(code: .inUse, text: "Mailbox is locked by another session.", delayed: false, log: log)
        case .expired?, .privacyRequired?, .contactAdmin?:
            return LoginFailure(code: .sysPerm, text: "Login refused by the mail server; contact your provider.", delayed: false, log: log)
        case .authenticationFailed?, .authorizationFailed?, nil:
            if condition.status == .bad {
                return .permanent("Login command rejected by the backend.", log: log)
            }
            return LoginFailure(code: .auth, text: "Authentication failed.", delayed: true, log: log)
        default:
            return LoginFailure(code: .auth, text: "Authentication failed.", delayed: true, log: log)
        }
    }

    static func selectFailure(_ condition: IMAPCondition, mailbox: String) -> LoginFailure {
        let log = "SELECT \(mailbox): \(condition.status) \(condition.text)"
        switch condition.code {
        case .inUse?:
            return LoginFailure(code: .inUse, text: "Mailbox is locked by another session.", delayed: false, log: log)
        case .nonExistent?, .noPerm?:
            return .permanent("Mailbox is not available.", log: log)
        default:
            return .temporary(log)
        }
    }
}
