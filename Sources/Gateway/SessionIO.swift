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
    /// The client's outbound buffer went above (true) or back below (false) its high watermark;
    /// the driver stops and resumes reading the backend accordingly.
    case clientOutputThrottled(Bool)
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
    /// Stop reading the client: enough pipelined commands are waiting (back-pressure on input).
    case pauseClientInput
    case resumeClientInput
    case connectBackend
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

public enum SessionCounter: Sendable, Equatable {
    case loginSucceeded
    case loginFailed
    case backendError
}

public enum SessionTimer: Sendable, Hashable {
    /// RFC 1939 §3 autologout timer.
    case idle
    /// One backend round trip.
    case backend
    /// The delay before a failed login is answered.
    case authFailureDelay
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
        case shutdown
    }

    public var user: String?
    public var ending: Ending
    public var listed = 0
    public var retrieved = 0
    public var retrievedBytes: UInt64 = 0
    public var topCount = 0
    public var deleted = 0
    /// What QUIT did with the DELE'd messages: "expunged", "moved", "flagged", "kept", "failed", "none".
    public var retention = "none"

    public init(user: String? = nil, ending: Ending = .clientGone) {
        self.user = user
        self.ending = ending
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
