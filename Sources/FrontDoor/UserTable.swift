/// Per-user state of one gateway instance: how many sessions each user has logged in, and when each user
/// last logged in (for `limits.login_interval`, RFC 2449 LOGIN-DELAY).
///
/// Pure and synchronous like `ClientTable`: the caller owns the one instance and passes the time in.
/// Memory is bounded whatever clients do:
/// - session counts live in a dictionary whose entries go away when they reach zero, so it never holds
///   more entries than there are logged-in sessions (themselves capped by `limits.connections`);
/// - login times live in a first-in-first-out queue of at most `Limits.trackedUsers` entries; an entry
///   goes when its interval is over or, when the queue is full, when it is the oldest (that user may then
///   log in again before its interval is over: the table forgets rather than grows).
///
/// Users are compared by `key(_:)`: ASCII letters case-insensitively, everything else as given (see there).
public struct UserTable: Sendable {
    public struct Limits: Sendable, Equatable {
        /// Logged-in sessions of one user on this instance; 0: no limit.
        public var sessionsPerUser: Int
        /// Least time between two successful logins of one user on this instance; zero: none.
        public var loginInterval: Duration
        /// Login times remembered at most (the oldest is forgotten first).
        public var trackedUsers: Int

        public init(sessionsPerUser: Int = 10, loginInterval: Duration = .zero, trackedUsers: Int = 100_000) {
            self.sessionsPerUser = sessionsPerUser
            self.loginInterval = loginInterval
            self.trackedUsers = trackedUsers
        }

        /// Whether any lookup is needed at all.
        public var isActive: Bool { sessionsPerUser > 0 || loginInterval > .zero }
    }

    public enum Admission: Sendable, Equatable {
        case admitted
        /// `sessionsPerUser` sessions of this user are logged in.
        case inUse(open: Int)
        /// The user's last login was less than `loginInterval` ago; `wait` is what is left of it.
        case loginDelay(wait: Duration)
    }

    public private(set) var limits: Limits
    private var open: [String: Int] = [:]
    private var lastLogin: [String: ContinuousClock.Instant] = [:]
    /// Login times in the order they happened; entries whose user logged in again since are stale
    /// (their time no longer matches `lastLogin`) and are skipped when they reach the front.
    private var order: [(key: String, at: ContinuousClock.Instant)] = []
    private var orderHead = 0

    public init(limits: Limits) {
        self.limits = limits
    }

    /// The key a user is counted under. Dovecot's default `auth_username_format = %Lu` lowercases the
    /// name before it looks the user up, so `Alice` and `alice` are one mailbox there: counting them apart
    /// would let a client double its limit by changing case. Only ASCII letters are folded; other bytes
    /// are compared as given (no Unicode case rules, which differ between backends).
    public static func key(_ user: String) -> String {
        String(decoding: user.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    /// New limits on a reload. Open sessions stay counted (also above a lower limit: they are not cut,
    /// new ones are refused); a lower `trackedUsers` forgets the oldest login times.
    public mutating func update(limits newLimits: Limits) {
        limits = newLimits
        while liveQueueLength > max(0, newLimits.trackedUsers) { dropOldest() }
        compactIfWorthIt(force: true)
    }

    /// Would a login of `user` be allowed now? Changes nothing: asked before the backend is, so a login
    /// that is refused anyway costs the backend nothing.
    public mutating func check(_ user: String, now: ContinuousClock.Instant) -> Admission {
        expire(now: now)
        let key = Self.key(user)
        if limits.loginInterval > .zero, let last = lastLogin[key] {
            let since = now - last
            if since < limits.loginInterval { return .loginDelay(wait: limits.loginInterval - since) }
        }
        let mine = open[key] ?? 0
        if limits.sessionsPerUser > 0 && mine >= limits.sessionsPerUser { return .inUse(open: mine) }
        return .admitted
    }

    /// The backend accepted `user`'s login: checked again (another session of the same user may have
    /// logged in meanwhile) and, when admitted, counted and its time remembered. The caller must call
    /// `release(_:)` when that session ends, however it ends.
    public mutating func claim(_ user: String, now: ContinuousClock.Instant) -> Admission {
        let admission = check(user, now: now)
        guard admission == .admitted else { return admission }
        let key = Self.key(user)
        open[key, default: 0] += 1
        if limits.loginInterval > .zero && limits.trackedUsers > 0 {
            while liveQueueLength >= limits.trackedUsers { dropOldest() }
            lastLogin[key] = now
            order.append((key, now))
        }
        return .admitted
    }

    /// A session counted by `claim` ended. A release without a claim is ignored (never below zero).
    public mutating func release(_ user: String) {
        let key = Self.key(user)
        guard let mine = open[key] else { return }
        open[key] = mine <= 1 ? nil : mine - 1
    }

    public func openSessions(of user: String) -> Int { open[Self.key(user)] ?? 0 }

    /// Users with an open count; never more than the logged-in sessions.
    public var countedUsers: Int { open.count }

    /// Login times remembered; never more than `limits.trackedUsers`.
    public var trackedCount: Int { lastLogin.count }

    // MARK: Internals

    private var liveQueueLength: Int { order.count - orderHead }

    private mutating func expire(now: ContinuousClock.Instant) {
        while orderHead < order.count, now - order[orderHead].at >= limits.loginInterval { dropOldest() }
        compactIfWorthIt(force: false)
    }

    private mutating func dropOldest() {
        guard orderHead < order.count else { return }
        let entry = order[orderHead]
        orderHead += 1
        if lastLogin[entry.key] == entry.at { lastLogin[entry.key] = nil }
    }

    /// Gives back the queue's consumed front: amortised O(1) per entry.
    private mutating func compactIfWorthIt(force: Bool) {
        guard orderHead > 0 else { return }
        if force || (orderHead >= 1024 && orderHead * 2 >= order.count) {
            order.removeFirst(orderHead)
            orderHead = 0
        }
        if order.isEmpty && order.capacity > 1024 { order = [] }
    }
}
