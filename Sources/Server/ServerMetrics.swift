import CoreMetrics
import Gateway

/// Every metric PopGate exports, recorded through swift-metrics. Labels are closed sets (listener
/// names from the config, endings, reasons, kinds): never a user name or a client address.
/// `PrometheusExport` turns them into the Prometheus text format with the help texts below.
///
/// Recording costs a handle look-up per event (per session, login or refusal, never per byte); when
/// no metrics backend is bootstrapped (`metrics:` absent) the handles are swift-metrics' no-ops.
struct ServerMetrics: Sendable {
    let factory: any MetricsFactory

    init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
    }

    enum Name {
        static let sessions = "popgate_sessions_total"
        static let sessionsOpen = "popgate_sessions_open"
        static let sessionDuration = "popgate_session_duration_seconds"
        static let logins = "popgate_logins_total"
        static let loginFailures = "popgate_login_failures_total"
        static let backendLoginDuration = "popgate_backend_login_duration_seconds"
        static let connectionsRefused = "popgate_connections_refused_total"
        static let authPenalties = "popgate_auth_penalties_total"
        static let retrievedMessages = "popgate_retrieved_messages_total"
        static let retrievedBytes = "popgate_retrieved_bytes_total"
        static let deletedMessages = "popgate_deleted_messages_total"
        static let backendErrors = "popgate_backend_errors_total"
        static let clientTLSHandshakeFailures = "popgate_client_tls_handshake_failures_total"
        static let configReloads = "popgate_config_reloads_total"
        static let buildInfo = "popgate_build_info"
    }

    /// Help text and, for histograms, buckets of each metric (the exporter's source of `# HELP`).
    static let catalog: [String: (help: String, buckets: [Duration]?)] = [
        Name.sessions: ("POP3 sessions ended, by listener and how they ended (quit, timeout, client-gone, backend-error, too-many-errors, login-timeout, shutdown).", nil),
        Name.sessionsOpen: ("POP3 sessions open now, by listener.", nil),
        Name.sessionDuration: ("How long POP3 sessions lasted, from accept to close, by listener.", sessionBuckets),
        Name.logins: ("Successful logins (the maildrop is ready).", nil),
        Name.loginFailures: ("Failed logins, by reason (credentials, temporary, refused, in-use, backend).", nil),
        Name.backendLoginDuration: ("Successful logins: from the backend connect to the maildrop being ready (connect, TLS, authentication, SELECT, snapshot).", loginBuckets),
        Name.connectionsRefused: ("Client connections refused at accept for a connection limit (limit: total or per-ip).", nil),
        Name.authPenalties: ("Logins that waited out a per-address auth penalty before reaching the backend.", nil),
        Name.retrievedMessages: ("Messages sent to clients in full (RETR), counted at session end.", nil),
        Name.retrievedBytes: ("Message bytes sent to clients by RETR (RFC822.SIZE), counted at session end.", nil),
        Name.deletedMessages: ("Messages a client deleted (DELE, then QUIT), by what retention did with them (expunged, moved, flagged, kept, failed).", nil),
        Name.backendErrors: ("Backend link failures, by kind (connect, tls, closed, timeout, protocol).", nil),
        Name.clientTLSHandshakeFailures: ("Client TLS handshakes that failed (implicit TLS or STLS), by listener.", nil),
        Name.configReloads: ("Configuration reloads (SIGHUP), by result (ok or failed).", nil),
        Name.buildInfo: ("Always 1; the version label says which PopGate runs.", nil),
    ]

    static let sessionBuckets: [Duration] = [.milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
                                             .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(300), .seconds(900), .seconds(3600)]
    static let loginBuckets: [Duration] = [.milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                                           .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30)]

    /// Retention outcomes that count deleted messages (the summary's `retention`; "none" deletes nothing).
    /// The `action` label values: every retention outcome but `none` (nothing was deleted).
    static let retentionActions = RetentionOutcome.allCases.filter { $0 != .none }

    private func counter(_ name: String, _ dimensions: [(String, String)] = []) -> Counter {
        Counter(label: name, dimensions: dimensions, factory: factory)
    }

    /// Registers the series that exist from the start at 0 (a counter that appears only at its first
    /// event breaks `rate()` over that first event), and the build info.
    func registerInitialSeries(listeners: [String], version: String) {
        Gauge(label: Name.buildInfo, dimensions: [("version", version)], factory: factory).record(1)
        for result in ["ok", "failed"] { counter(Name.configReloads, [("result", result)]).increment(by: 0) }
        for limit in ["total", "per-ip"] { counter(Name.connectionsRefused, [("limit", limit)]).increment(by: 0) }
        counter(Name.logins).increment(by: 0)
        for reason in LoginFailureReason.allCases { counter(Name.loginFailures, [("reason", reason.rawValue)]).increment(by: 0) }
        for kind in BackendErrorKind.allCases { counter(Name.backendErrors, [("kind", kind.rawValue)]).increment(by: 0) }
        counter(Name.authPenalties).increment(by: 0)
        counter(Name.retrievedMessages).increment(by: 0)
        counter(Name.retrievedBytes).increment(by: 0)
        for action in Self.retentionActions { counter(Name.deletedMessages, [("action", action.rawValue)]).increment(by: 0) }
        for listener in listeners {
            Meter(label: Name.sessionsOpen, dimensions: [("listener", listener)], factory: factory).set(0)
            counter(Name.clientTLSHandshakeFailures, [("listener", listener)]).increment(by: 0)
        }
    }

    func record(_ event: SessionCounter) {
        switch event {
        case .loginSucceeded:
            counter(Name.logins).increment()
        case .loginFailed(let reason):
            counter(Name.loginFailures, [("reason", reason.rawValue)]).increment()
        case .backendError(let kind):
            counter(Name.backendErrors, [("kind", kind.rawValue)]).increment()
        }
    }

    func sessionOpened(listener: String) {
        Meter(label: Name.sessionsOpen, dimensions: [("listener", listener)], factory: factory).increment()
    }

    func sessionClosed(listener: String) {
        Meter(label: Name.sessionsOpen, dimensions: [("listener", listener)], factory: factory).decrement()
    }

    func sessionEnded(_ summary: SessionSummary, listener: String, duration: Duration) {
        counter(Name.sessions, [("listener", listener), ("ending", summary.ending.rawValue)]).increment()
        Timer(label: Name.sessionDuration, dimensions: [("listener", listener)], factory: factory).recordNanoseconds(duration.nanoseconds)
        if summary.retrieved > 0 {
            counter(Name.retrievedMessages).increment(by: summary.retrieved)
            counter(Name.retrievedBytes).increment(by: Int64(clamping: summary.retrievedBytes))
        }
        if summary.deleted > 0, Self.retentionActions.contains(summary.retention) {
            counter(Name.deletedMessages, [("action", summary.retention.rawValue)]).increment(by: summary.deleted)
        }
    }

    func backendLoggedIn(after duration: Duration) {
        Timer(label: Name.backendLoginDuration, factory: factory).recordNanoseconds(duration.nanoseconds)
    }

    func connectionRefused(limit: String) {
        counter(Name.connectionsRefused, [("limit", limit)]).increment()
    }

    func authPenaltyApplied() {
        counter(Name.authPenalties).increment()
    }

    func clientTLSHandshakeFailed(listener: String) {
        counter(Name.clientTLSHandshakeFailures, [("listener", listener)]).increment()
    }

    func configReloaded(ok: Bool) {
        counter(Name.configReloads, [("result", ok ? "ok" : "failed")]).increment()
    }
}

extension Duration {
    /// Whole nanoseconds, saturating.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return scaled.addingReportingOverflow(attoseconds / 1_000_000_000).overflow ? .max : scaled + attoseconds / 1_000_000_000
    }
}
