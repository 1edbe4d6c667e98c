import Config
import FrontDoor
import Foundation
import Gateway

/// The daemon's one `ClientTable`, shared by the accept queue and every event loop.
///
/// The table is pure (time comes in as an argument); this wrapper adds the lock and the clock. Every
/// call is O(1), so holding the lock costs no more than the dictionary operations inside.
final class ClientRegistry: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var table: ClientTable

    init(limits: ClientTable.Limits) {
        table = ClientTable(limits: limits)
    }

    /// On reload: new limits for new decisions; open connections stay counted.
    func update(limits: ClientTable.Limits) {
        lock.withLock { table.update(limits: limits) }
    }

    func connectionOpened(_ key: ClientKey) -> ClientTable.Admission {
        let now = ContinuousClock.now
        return lock.withLock { table.connectionOpened(key, now: now) }
    }

    func connectionClosed(_ key: ClientKey) {
        lock.withLock { table.connectionClosed(key) }
    }

    /// A PROXY protocol listener's connection before its header: counted in the total only.
    func unidentifiedConnectionOpened(peer: ClientKey?) -> ClientTable.Admission {
        let now = ContinuousClock.now
        return lock.withLock { table.unidentifiedConnectionOpened(peer: peer, now: now) }
    }

    func connectionIdentified(_ key: ClientKey) -> ClientTable.Admission {
        let now = ContinuousClock.now
        return lock.withLock { table.connectionIdentified(key, now: now) }
    }

    func unidentifiedConnectionClosed() {
        lock.withLock { table.unidentifiedConnectionClosed() }
    }

    func shouldLogRefusal(of key: ClientKey) -> Bool {
        let now = ContinuousClock.now
        return lock.withLock { table.shouldLogRefusal(of: key, now: now) }
    }

    func penalty(for key: ClientKey) -> Duration {
        let now = ContinuousClock.now
        return lock.withLock { table.penalty(for: key, now: now) }
    }

    func loginFailed(_ key: ClientKey) {
        let now = ContinuousClock.now
        lock.withLock { table.loginFailed(key, now: now) }
    }

    func loginSucceeded(_ key: ClientKey) {
        lock.withLock { table.loginSucceeded(key) }
    }

    var openConnections: Int { lock.withLock { table.openConnections } }

    // Per-user limits (`limits.sessions_per_user`, `limits.login_interval`): a table of their own under
    // the same lock.
    // Guarded by `lock`.
    private var users = UserTable(limits: UserTable.Limits())

    func update(userLimits: UserTable.Limits) {
        lock.withLock { users.update(limits: userLimits) }
    }

    func userAdmission(_ user: String, claim: Bool) -> UserAdmission {
        let now = ContinuousClock.now
        let admission = lock.withLock { claim ? users.claim(user, now: now) : users.check(user, now: now) }
        switch admission {
        case .admitted: return .admitted
        case .inUse: return .inUse
        case .loginDelay: return .loginDelay
        }
    }

    func releaseUser(_ user: String) {
        lock.withLock { users.release(user) }
    }
}

extension UserTable.Limits {
    /// `limits.sessions_per_user` and `limits.login_interval`.
    init(_ config: PopGateConfig) {
        self.init(sessionsPerUser: config.gateway.limits.sessionsPerUser, loginInterval: config.gateway.limits.loginInterval)
    }
}

extension ClientTable.Limits {
    /// `limits.*` and `auth.*` of the configuration.
    init(_ config: PopGateConfig) {
        self.init(
            connections: config.clientLimits.connections,
            connectionsPerClient: config.clientLimits.connectionsPerIP,
            trackedClients: config.clientLimits.trackedIPs,
            failureDelay: config.gateway.authFailureDelay,
            failureDelayMax: config.clientLimits.failureDelayMax,
            penaltyExpiry: config.clientLimits.penaltyExpiry
        )
    }
}
