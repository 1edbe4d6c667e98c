import Foundation
import Gateway

/// Counters since start, for the status line an operator sees in `systemctl status`.
public final class ServerStats: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var logins = 0
    private var failedLogins = 0
    private var backendErrors = 0
    private var sessions = 0

    public init() {}

    func record(_ counter: SessionCounter) {
        lock.withLock {
            switch counter {
            case .loginSucceeded: logins += 1
            case .loginFailed: failedLogins += 1
            case .backendError: backendErrors += 1
            }
        }
    }

    func sessionStarted() {
        lock.withLock { sessions += 1 }
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
