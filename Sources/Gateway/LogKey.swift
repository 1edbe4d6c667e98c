/// The one set of log metadata keys: every metadata key the daemon logs is named here (the machine's
/// `LogRecord` fields, the driver's and the daemon's metadata). Their values are sanitised before they get here.
public enum LogKey {
    public static let session = "session"
    public static let user = "user"
    public static let client = "client"
    /// The client's address without the port, on the failed-login line fail2ban reads.
    public static let clientIP = "client_ip"
    public static let listener = "listener"
    public static let backend = "backend"
    /// The route a login took: `default`, a domain, a `user ~ pattern`, `auth_http`.
    public static let route = "route"
    /// The policy of that route.
    public static let policy = "policy"
    public static let tls = "tls"
    public static let error = "error"
    public static let address = "address"
    public static let ending = "ending"
    public static let listed = "listed"
    public static let retrieved = "retrieved"
    public static let retrievedBytes = "retrieved_bytes"
    public static let top = "top"
    public static let deleted = "deleted"
    public static let retention = "retention"
    public static let duration = "duration"
    /// Which connection limit refused a client: `total` or `per-ip`.
    public static let limit = "limit"
    /// A listener's socket came from systemd (socket activation).
    public static let activated = "activated"
    /// The auth penalty a login waits out.
    public static let delay = "delay"
    /// Messages in the maildrop at login.
    public static let messages = "messages"
    /// `uidl_source: header`: UIDLs taken from X-UIDL headers at login, and headers not used.
    public static let headerUIDLs = "x_uidl"
    public static let headerUIDLsIgnored = "x_uidl_ignored"
    /// The session summary's UIDL set hash and whether the set changed since the user's previous session.
    public static let uidlHash = "uidl_hash"
    public static let uidlChange = "uidl_change"
    /// How `retention.move_to: auto` found the folder: `special-use`, `namespace` or `default`.
    public static let trash = "trash"
    /// The open-files limit (RLIMIT_NOFILE): soft after raising, hard, and the soft one before and after.
    public static let openFiles = "nofile"
    public static let hardLimit = "hard"
    public static let from = "from"
    public static let to = "to"
    /// The configuration file of a reload.
    public static let config = "config"
    public static let openSessions = "open_sessions"
    public static let signal = "signal"
    /// The proxy (TCP peer) that relayed a client on a `proxy_protocol` listener; `client` is the client itself.
    public static let proxy = "proxy"
}
