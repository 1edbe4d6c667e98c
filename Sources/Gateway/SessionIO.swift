/// What happened, as the driver reports it to a `GatewaySession` (past tense).
public enum SessionEvent: Sendable {
    case clientDataReceived([UInt8])
    /// The TLS handshake the machine asked for with `.startClientTLS` finished.
    case clientTLSEstablished
    case clientClosed
    /// The client shut down its sending side (TCP half-close) but may still read: what it already
    /// sent is carried out, then the session ends.
    case clientInputEnded
    /// TCP connected, and for `tls: implicit` the TLS handshake finished too (`encrypted`).
    case backendConnected(encrypted: Bool)
    case backendConnectFailed(reason: String)
    case backendDataReceived([UInt8])
    case backendTLSEstablished
    case backendTLSFailed(reason: String)
    case backendClosed(reason: String?)
    case timerFired(SessionTimer)
    /// The client's outbound buffer went above (true) or back below (false) its high watermark; the
    /// machine answers with pause/resume actions for both directions it reads.
    case clientOutputThrottled(Bool)
    /// The answer to `.requestClientWritable`: the client's queue has room, generation may go on.
    case clientWritable
    /// The answer to `.lookUpAuthPenalty`: how long this client's address must wait before its login
    /// reaches the backend (zero without recent failures).
    case authPenaltyLookedUp(Duration)
    /// The answer to `.resolveRoute`: where this login goes, or why it goes nowhere.
    case routeResolved(RouteDecision)
    /// The answer to `.lookUpUIDLHistory`: the UIDL sample the user's previous session left on this
    /// instance, nil when there is none.
    case uidlHistoryLookedUp(UIDLSample?)
    /// The answer to `.lookUpUserLimits`.
    case userLimitsLookedUp(UserAdmission)
    /// The daemon is stopping: the next command other than QUIT gets `-ERR [SYS/TEMP]` and ends the
    /// session; a QUIT is still honoured (the client asked for its changes).
    case shutdownRequested
    /// The drain time after `shutdownRequested` is over: end now, applying nothing.
    case drainExpired
}

/// What the driver must do (imperative). The driver performs them in order and decides nothing.
public enum SessionAction: Sendable, Equatable {
    case sendToClient([UInt8])
    /// Begin the server-side TLS handshake on the client connection (after `+OK` to STLS was sent).
    case startClientTLS
    /// Flush what was sent, then close the client connection.
    case closeClient
    /// Stop reading the client: enough pipelined commands are waiting, or its output queue is full.
    case pauseClientInput
    case resumeClientInput
    /// Stop reading the backend while the client's output queue is full (relayed mail waits in the
    /// backend's socket, not in our memory).
    case pauseBackendInput
    case resumeBackendInput
    /// Report `.clientWritable` once the client's queue is below its high watermark: on a later turn of
    /// the event loop if it already is, otherwise when it has drained. The machine asks this after it
    /// generated `limits.outputChunkSize` of output and has more to generate.
    case requestClientWritable
    /// The session waits for the client's next command with nothing in flight: the driver gives back
    /// what its connections' buffers grew to (output queues, TLS memory BIOs), where that is worth it.
    case releaseIdleMemory
    /// Ask the daemon's per-client table how long this client's login must wait; answered with
    /// `.authPenaltyLookedUp`.
    case lookUpAuthPenalty
    /// A login failed for wrong credentials: the daemon counts it against the client's address.
    case recordAuthFailure
    /// A login succeeded: the daemon clears the client address's failures (as Dovecot does).
    case recordAuthSuccess
    /// Ask the daemon's per-user table whether this user may log in (`limits.sessions_per_user`,
    /// `limits.login_interval`); answered with `.userLimitsLookedUp`. With `claim` (the backend accepted
    /// the login) an admitted session is counted and its time remembered, and `.releaseUser` follows when
    /// the session ends, however it ends.
    case lookUpUserLimits(user: String, claim: Bool)
    /// A session counted by an admitted claim ended (or its login failed after the claim).
    case releaseUser(String)
    /// Ask the daemon's UIDL history for the user's previous sample; answered with `.uidlHistoryLookedUp`.
    case lookUpUIDLHistory(user: String)
    /// The session is ending: remember what its client may keep, for the user's next session.
    case rememberUIDLHistory(user: String, UIDLSample)
    /// Ask the daemon's router where this login goes (static routes or the `auth_http` service);
    /// answered with `.routeResolved`. Carries the password for a routing service that authenticates.
    case resolveRoute(RouteRequest)
    /// Open the backend connection (and for `tls: implicit` its TLS session) to the resolved route's
    /// server; answered with `.backendConnected` or `.backendConnectFailed`.
    case connectBackend(BackendTarget)
    case sendToBackend([UInt8])
    case startBackendTLS
    /// Flush what was sent, then close the backend connection.
    case closeBackend
    case scheduleTimer(SessionTimer, after: Duration)
    case cancelTimer(SessionTimer)
    case log(LogRecord)
    /// Something the daemon counts (for its status line).
    case count(SessionCounter)
    /// The session has ended; emitted exactly once, last.
    case sessionEnded(SessionSummary)
}

/// What the daemon's per-user table says about a login.
public enum UserAdmission: Sendable, Equatable {
    case admitted
    /// The user has `limits.sessions_per_user` sessions logged in on this instance.
    case inUse
    /// The user's last login on this instance was less than `limits.login_interval` ago.
    case loginDelay
}

public enum SessionCounter: Sendable, Equatable {
    case loginSucceeded
    /// A login failed; `.credentials` is what counts against the client's address.
    case loginFailed(LoginFailureReason)
    /// The backend link failed (the session's next step is an error or its end).
    case backendError(BackendErrorKind)
}

/// Why a login failed (a metrics label: a closed set, never user data).
public enum LoginFailureReason: String, Sendable, Equatable, CaseIterable {
    /// The backend refused the credentials (answered after the failure delay).
    case credentials
    /// `[SYS/TEMP]`: the backend said NO for a passing reason, or something in the login went wrong.
    case temporary
    /// `[SYS/PERM]`: the account or mailbox cannot be used through POP3 (expired, too large, no safe delete).
    case refused
    /// `[IN-USE]`: the mailbox is locked by another session.
    case inUse = "in-use"
    /// The backend link failed during the login (connect, TLS, closed, timeout, unparsable answer).
    case backend
}

extension LoginFailure {
    /// The counter label of this failure.
    var reason: LoginFailureReason {
        if delayed { return .credentials }
        switch code {
        case .inUse: return .inUse
        case .sysPerm: return .refused
        default: return .temporary
        }
    }
}

/// How the backend link failed (a metrics label).
public enum BackendErrorKind: String, Sendable, Equatable, CaseIterable {
    case connect
    case tls
    case closed
    case timeout
    /// An answer the parser refused, or a tag nobody sent.
    case `protocol`
}

public enum SessionTimer: Sendable, Hashable {
    /// RFC 1939 §3 autologout timer.
    case idle
    /// One backend round trip.
    case backend
    /// The delay before a failed login is answered.
    case authFailureDelay
    /// The per-address penalty before a login reaches the backend.
    case authPenalty
    /// `timeouts.login`: from accept to a successful login.
    case login
    /// A session that stayed waiting for a command this long gives back its grown buffers
    /// (`GatewaySession.idleMemoryDelay`).
    case releaseMemory
}

/// A log event, without a logger: the driver hands it to swift-log.
public struct LogRecord: Sendable, Equatable {
    public enum Level: Sendable, Equatable { case debug, info, notice, warning, error }
    public var level: Level
    public var message: String
    /// Extra fields (typed keys live with the driver); values are already sanitised.
    public var fields: [String: String]

    public init(_ level: Level, _ message: String, fields: [String: String] = [:]) {
        self.level = level
        self.message = message
        self.fields = fields
    }
}

/// The one line per session an operator greps for (in the spirit of Dovecot's `pop3_logout_format`).
public struct SessionSummary: Sendable, Equatable {
    public enum Ending: String, Sendable, Equatable {
        case quit
        case timeout
        case clientGone = "client-gone"
        case backendError = "backend-error"
        case tooManyErrors = "too-many-errors"
        case loginTimeout = "login-timeout"
        case shutdown
    }

    public var user: String?
    public var ending: Ending
    public var listed = 0
    public var retrieved = 0
    public var retrievedBytes: UInt64 = 0
    public var topCount = 0
    public var deleted = 0
    /// What QUIT did with the DELE'd messages.
    public var retention: RetentionOutcome = .none
    /// The route the login took (`Route.name`), nil before one was resolved.
    public var route: String?
    /// Sessions that logged in: the UIDL set's short hash and whether it changed since the user's
    /// previous session (docs/uidl.md).
    public var uidlHash: String?
    public var uidlChange: UIDLChange?

    public init(user: String? = nil, ending: Ending = .clientGone) {
        self.user = user
        self.ending = ending
    }
}

/// What QUIT did with the DELE'd messages, as the summary line says it.
public enum RetentionOutcome: String, Sendable, Equatable, CaseIterable {
    /// Nothing was DELE'd (or the session ended without QUIT).
    case none
    case expunged
    case moved
    case flagged
    case kept
    /// Some step failed, or the session ended before it could run: the client was told `-ERR`.
    case failed
}

/// Who is connected, as the backend should hear it in an IMAP `ID` (RFC 2971; the `x-` keys are the
/// ones Dovecot reads from a trusted proxy). Addresses are textual IPs without brackets.
public struct ClientContext: Sendable, Equatable {
    public var address: String?
    public var port: UInt16?
    /// The gateway's address and port the client connected to.
    public var localAddress: String?
    public var localPort: UInt16?
    /// The session id of the gateway's logs, so both logs can be joined.
    public var sessionID: String?

    public init(address: String? = nil, port: UInt16? = nil, localAddress: String? = nil, localPort: UInt16? = nil, sessionID: String? = nil) {
        self.address = address
        self.port = port
        self.localAddress = localAddress
        self.localPort = localPort
        self.sessionID = sessionID
    }
}

/// Where the session was accepted.
public struct ListenerContext: Sendable, Equatable {
    /// The connection is already TLS (an implicit-TLS listener; the handshake is done).
    public var tlsActive: Bool
    /// STLS is offered (a `starttls` listener).
    public var startTLSAvailable: Bool
    /// USER/PASS/AUTH are allowed before TLS.
    public var plaintextAuthAllowed: Bool

    public init(tlsActive: Bool, startTLSAvailable: Bool, plaintextAuthAllowed: Bool) {
        self.tlsActive = tlsActive
        self.startTLSAvailable = startTLSAvailable
        self.plaintextAuthAllowed = plaintextAuthAllowed
    }
}
