import CoreMetrics
import Foundation
import Gateway

/// Counters since start, for the status line an operator sees in `systemctl status`, and the same
/// events (with more detail) as metrics (`ServerMetrics`).
public final class ServerStats: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var logins = 0
    private var failedLogins = 0
    private var backendErrors = 0
    private var sessions = 0
    let metrics: ServerMetrics

    /// `metricsFactory`: where the metrics go (swift-metrics' bootstrapped factory by default, a no-op
    /// one when none was bootstrapped).
    public init(metricsFactory: any MetricsFactory = MetricsSystem.factory) {
        metrics = ServerMetrics(factory: metricsFactory)
    }

    func record(_ counter: SessionCounter) {
        lock.withLock {
            switch counter {
            case .loginSucceeded: logins += 1
            case .loginFailed(.credentials): failedLogins += 1
            // Counted with the link failure it comes with.
            case .loginFailed(.backend): break
            // The backend refused the login for another reason than the credentials.
            case .loginFailed: backendErrors += 1
            case .backendError: backendErrors += 1
            }
        }
        metrics.record(counter)
    }

    func sessionStarted(listener: String) {
        lock.withLock { sessions += 1 }
        metrics.sessionOpened(listener: listener)
    }

    /// A configuration reload was applied (`ok`) or rejected.
    public func configReloaded(ok: Bool) {
        metrics.configReloaded(ok: ok)
    }

    public struct Snapshot: Sendable, Equatable {
        public var sessionsSinceStart: Int
        public var logins: Int
        public var failedLogins: Int
        public var backendErrors: Int
    }

    public var snapshot: Snapshot {
        lock.withLock { Snapshot(sessionsSinceStart: sessions, logins: logins, failedLogins: failedLogins, backendErrors: backendErrors) }
    }
}
