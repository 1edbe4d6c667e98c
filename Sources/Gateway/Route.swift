import IMAP
import Wire

/// An IMAP server a login can be sent to, and how to reach it.
public struct BackendTarget: Sendable, Hashable {
    /// How the gateway speaks TLS to the IMAP backend.
    public enum TLSMode: String, Sendable, CaseIterable {
        /// Clear text: passwords cross to the backend unencrypted.
        case none
        /// IMAP STARTTLS (RFC 3501 §6.2.1) before logging in.
        case starttls
        /// TLS from the first byte (IMAPS, RFC 8314 §3.3).
        case implicit
    }

    /// Without IPv6 brackets.
    public var host: String
    /// 1...65535.
    public var port: UInt16
    public var tls: TLSMode
    /// PEM bundle of trusted CAs; `nil` means the system trust store.
    public var caFile: String?
    /// SNI and the name checked in the certificate; `nil` means `host`.
    public var serverName: String?
    /// `false` only for testing.
    public var verifyCertificate: Bool
    /// Send an IMAP `ID` with the client's address before logging in (RFC 2971), when the backend
    /// advertises `ID`: a backend that trusts the gateway (Dovecot's `login_trusted_networks`) then logs
    /// and penalises the real client instead of the gateway.
    public var forwardClient: Bool

    public init(host: String, port: UInt16, tls: TLSMode = .implicit, caFile: String? = nil, serverName: String? = nil, verifyCertificate: Bool = true, forwardClient: Bool = true) {
        self.forwardClient = forwardClient
        self.host = host
        self.port = port
        self.tls = tls
        self.caFile = caFile
        self.serverName = serverName
        self.verifyCertificate = verifyCertificate
    }

    /// The name to send as SNI and to check in the backend certificate.
    public var effectiveServerName: String { serverName ?? host }

    /// `host:port`, IPv6 in brackets: for logs.
    public var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Which messages of the maildrop folder a session lists (`policies.<name>.visible`). Messages flagged
/// `\Deleted` by another client, and those carrying the `on_delete: flag` keyword, are never listed.
public enum Visibility: String, Sendable, CaseIterable {
    /// Every message.
    case all
    /// Messages without `\Seen`: mail read in webmail is not downloaded.
    case unseen
    /// Messages no POP3 session has retrieved yet: a retrieved message gets `SessionPolicy.retrievedKeyword`
    /// at QUIT and later sessions (another device, a re-installed client) do not list it, while webmail
    /// keeps showing all mail.
    case notPopped = "not_popped"
}

/// What a session does with the mailbox: named in `policies:`, chosen per route.
public struct SessionPolicy: Sendable, Equatable {
    /// For the logs: the policy's name in the configuration, `default` for the top-level settings.
    public var name: String
    public var retention: RetentionPolicy
    public var visible: Visibility
    /// The keyword `visible: not_popped` sets on retrieved messages at QUIT.
    public var retrievedKeyword: String

    public static let defaultRetrievedKeyword = "$POP3Retrieved"

    public init(name: String = "default", retention: RetentionPolicy = RetentionPolicy(), visible: Visibility = .all, retrievedKeyword: String = SessionPolicy.defaultRetrievedKeyword) {
        self.name = name
        self.retention = retention
        self.visible = visible
        self.retrievedKeyword = retrievedKeyword
    }

}

/// The user name the backend gets (`routes[].login`).
public enum LoginRewrite: String, Sendable, CaseIterable {
    /// The name the client gave.
    case asIs = "as_is"
    /// The part before the last `@` (`alice@example.com` logs in as `alice`).
    case stripDomain = "strip_domain"

    public func apply(to user: String) -> String {
        switch self {
        case .asIs: return user
        case .stripDomain:
            guard let at = user.lastIndex(of: "@") else { return user }
            return String(user[..<at])
        }
    }
}

/// Where one login goes and what it gets there: the answer to `.resolveRoute`.
public struct Route: Sendable, Equatable {
    /// For the logs: which entry matched (`default`, a domain, `auth_http`).
    public var name: String
    public var backend: BackendTarget
    public var login: LoginRewrite
    public var policy: SessionPolicy
    /// Replaces the user name and password sent to the backend (an `auth_http` answer's `Auth-User`
    /// and `Auth-Pass`); applied before `login`.
    public var user: String?
    public var password: Secret?
    /// Recent mode (`RouteRequest.recent`): the first day of the window, set by the router, which has
    /// the clock. Nil lists the maildrop as the policy says.
    public var recentSince: IMAPDay?

    public init(name: String = "default", backend: BackendTarget, login: LoginRewrite = .asIs, policy: SessionPolicy = SessionPolicy(), user: String? = nil, password: Secret? = nil) {
        self.name = name
        self.backend = backend
        self.login = login
        self.policy = policy
        self.user = user
        self.password = password
    }
}

/// What the machine asks the router with `.resolveRoute`: everything an `auth_http` service is told.
public struct RouteRequest: Sendable, Equatable {
    /// The login name as the client gave it, without a mode prefix such as `recent:`.
    public var user: String
    public var password: Secret
    /// `USER`/`PASS` or `AUTH PLAIN`.
    public var method: Method
    /// 1 for the first login on this connection.
    public var attempt: Int
    public var clientAddress: String?
    /// The client asked for recent mode (`recent:` before the login name, which `user` no longer has).
    public var recent: Bool

    public enum Method: String, Sendable {
        case plain
    }

    public init(user: String, password: Secret, method: Method = .plain, attempt: Int = 1, clientAddress: String? = nil, recent: Bool = false) {
        self.recent = recent
        self.user = user
        self.password = password
        self.method = method
        self.attempt = attempt
        self.clientAddress = clientAddress
    }

    /// The part after the last `@`, lower-cased (domains are case-insensitive), or nil.
    public var domain: String? {
        guard let at = user.lastIndex(of: "@") else { return nil }
        let domain = user[user.index(after: at)...]
        return domain.isEmpty ? nil : String(decoding: domain.utf8.map(ASCII.lowercased), as: UTF8.self)
    }
}

/// The router's answer.
public enum RouteDecision: Sendable, Equatable {
    case route(Route)
    /// The routing service refused the login (an `auth_http` error): the client hears `text` with
    /// `[AUTH]` after `wait` (the service's `Auth-Wait`); without `wait`, after the failure delay, and
    /// the connection is closed (as nginx does).
    case refused(text: String, wait: Duration?)
    /// No route could be found now (the routing service is down or timed out): `[SYS/TEMP]`, never `[AUTH]`.
    case unavailable(reason: String)
    /// No route matches this login and there is no default: `[SYS/PERM]`.
    case noRoute
}
