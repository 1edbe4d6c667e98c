/// What the translation needs to know, already validated. Built by `Config`
/// from the YAML file; tests build it directly. Where a login goes and what its session does with the
/// mailbox (backend, TLS to it, retention, visibility) is per login: a `Route` (Route.swift).
public struct GatewaySettings: Sendable, Equatable {
    /// The IMAP folder that is the POP3 maildrop.
    public var mailbox: String
    public var uidlFormat: UIDLFormat
    /// Where UIDLs come from: the format alone, or an `X-UIDL:` header first (docs/uidl.md).
    public var uidlSource: UIDLSource
    /// RFC 1939 §3: at least 10 minutes.
    public var idleTimeout: Duration
    /// How long one backend round trip (connect, greeting, a command) may take.
    public var backendTimeout: Duration
    /// Delay before answering a failed login, so the gateway is no fast password oracle.
    public var authFailureDelay: Duration
    /// From accept to a successful login, TLS handshake included; then the connection is closed.
    public var loginTimeout: Duration
    public var limits: Limits

    public init(
        mailbox: String = "INBOX",
        uidlFormat: UIDLFormat = .dovecotDefault,
        uidlSource: UIDLSource = .imap,
        idleTimeout: Duration = .seconds(600),
        backendTimeout: Duration = .seconds(30),
        authFailureDelay: Duration = .seconds(2),
        loginTimeout: Duration = .seconds(60),
        limits: Limits = Limits()
    ) {
        self.mailbox = mailbox
        self.uidlFormat = uidlFormat
        self.uidlSource = uidlSource
        self.idleTimeout = idleTimeout
        self.backendTimeout = backendTimeout
        self.authFailureDelay = authFailureDelay
        self.loginTimeout = loginTimeout
        self.limits = limits
    }

    /// Every limit is named, with what happens when it is reached (docs/front-door.md lists them all).
    public struct Limits: Sendable, Equatable {
        /// Over-long command lines tolerated before the connection is closed.
        public var maxBadLines: Int = 3
        /// Unknown or failing commands tolerated before the connection is closed.
        public var maxErrors: Int = 20
        /// Failed logins on one connection before it is closed.
        public var maxAuthFailures: Int = 3
        /// Messages offered in one maildrop; more is a `[SYS/PERM]` refusal. A backend that sends more
        /// FETCH responses than this during the snapshot fails the login with `[SYS/TEMP]`.
        public var maxMessages: Int = 1_000_000
        /// An RFC822.SIZE above this is treated as a broken backend (`[SYS/TEMP]`), so that sizes and
        /// their sums stay far from any overflow.
        public var maxMessageSize: UInt64 = 1 << 40
        /// Output the machine generates in one go (CAPA answers to pipelined commands, LIST/UIDL lines)
        /// before it waits for the client to take it: with the driver's high watermark this bounds a
        /// client's queued output, however many commands it sends without reading.
        public var outputChunkSize: Int = 64 * 1024
        /// Chunk size for the partial fetches that serve TOP.
        public var topChunkSize: Int = 64 * 1024
        /// Pipelined client input held while a command waits for the backend; above it the driver
        /// stops reading the client until the backlog is worked off.
        public var maxBufferedInput: Int = 64 * 1024
        /// `limits.sessions_per_user`: logged-in sessions of one user on this instance; one more login is
        /// answered `-ERR [IN-USE]` without asking the backend. 0: no limit.
        public var sessionsPerUser: Int = 10
        /// `limits.login_interval`: least time between two logins of one user on this instance (RFC 2449
        /// LOGIN-DELAY, advertised in CAPA); a sooner login is answered `-ERR [LOGIN-DELAY]`. Zero: none.
        public var loginInterval: Duration = .zero
        public init() {}

        /// Whether logins ask the daemon's per-user table at all.
        var userLimitsActive: Bool { sessionsPerUser > 0 || loginInterval > .zero }
    }
}

/// `uidl_source`: where a message's UIDL comes from.
public enum UIDLSource: String, Sendable, Equatable, CaseIterable {
    /// `uidl_format` of the IMAP UID and UIDVALIDITY.
    case imap
    /// The message's `X-UIDL:` header when it has a usable one (what migrations from old POP3 servers
    /// leave behind), otherwise `uidl_format`. The snapshot FETCH then also asks for that header.
    case header
}

/// What happens on the IMAP side when a POP3 session ends with QUIT.
public struct RetentionPolicy: Sendable, Equatable {
    public enum OnRetrieve: String, Sendable, Equatable, CaseIterable {
        /// RETR'd messages get `\Seen` at QUIT.
        case seen
        case none
    }

    public enum OnDelete: String, Sendable, Equatable, CaseIterable {
        /// `\Deleted` + `UID EXPUNGE` of exactly the DELE'd UIDs (needs UIDPLUS).
        case expunge
        /// `UID MOVE` to `moveTo` (COPY + STORE + UID EXPUNGE without MOVE).
        case move
        /// Keep in place, add `flagKeyword` and `\Seen`; hidden from later POP3 snapshots.
        case flag
        /// Nothing is removed, only `\Seen` is set.
        case keep
    }

    public var onRetrieve: OnRetrieve
    public var onDelete: OnDelete
    /// The folder `move` moves to; nil is `auto`: the backend's special-use `\Trash` mailbox (RFC 6154),
    /// else the personal namespace prefix (RFC 2342) + `Trash`, else `Trash`, found at each login
    /// (`GatewaySession+Login.swift`). A name is used exactly as given.
    public var moveTo: String?
    public var flagKeyword: String

    public init(onRetrieve: OnRetrieve = .seen, onDelete: OnDelete = .flag, moveTo: String? = nil, flagKeyword: String = "$POP3Deleted") {
        self.onRetrieve = onRetrieve
        self.onDelete = onDelete
        self.moveTo = moveTo
        self.flagKeyword = flagKeyword
    }
}
