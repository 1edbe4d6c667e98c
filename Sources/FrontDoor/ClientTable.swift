/// Per-client state at the front door: how many connections each client has open, how many logins it failed
/// recently (the auth penalty), and when a refusal of it was last logged.
///
/// Pure and synchronous: the caller owns the one instance (e.g. inside the listener's actor) and passes the time in,
/// so tests drive it with a manual clock. Memory is bounded whatever clients do:
/// - open-connection counts live in a dictionary whose entries go away when they reach zero, so it never holds more
///   entries than there are open connections (itself capped by `Limits.connections`);
/// - penalties and refusal-log times live in a least-recently-used table of at most `Limits.trackedClients` entries.
///
/// Every operation is O(1) amortised; nothing walks all entries except `update(limits:)` when it shrinks the table.
public struct ClientTable: Sendable {
    public struct Limits: Sendable, Equatable {
        /// Open connections over all listeners together: a cap on file descriptors and memory.
        public var connections: Int
        /// Open connections of one `ClientKey`, so one client cannot take all `connections`.
        public var connectionsPerClient: Int
        /// Capacity of the least-recently-used table that holds penalties and refusal-log times. When it is full the
        /// least recently used client is forgotten. 0 keeps nothing: no penalties, and every refusal is logged.
        public var trackedClients: Int
        /// The first step of the login penalty (Dovecot's `AUTH_PENALTY_INIT_SECS` is also 2 s). Zero or less: no
        /// penalty.
        public var failureDelay: Duration
        /// The penalty never grows past this (Dovecot's `AUTH_PENALTY_MAX_SECS` is also 15 s).
        public var failureDelayMax: Duration
        /// A client's failures are forgotten this long after its last failure (Dovecot's anvil forgets penalties
        /// after an hour).
        public var penaltyExpiry: Duration
        /// A refused client is logged at most once per this interval, so a flood of refused connects cannot flood the
        /// log.
        public var refusalLogInterval: Duration = .seconds(60)

        public init(
            connections: Int = 10_000,
            connectionsPerClient: Int = 50,
            trackedClients: Int = 100_000,
            failureDelay: Duration = .seconds(2),
            failureDelayMax: Duration = .seconds(15),
            penaltyExpiry: Duration = .seconds(3600),
            refusalLogInterval: Duration = .seconds(60)
        ) {
            self.connections = connections
            self.connectionsPerClient = connectionsPerClient
            self.trackedClients = trackedClients
            self.failureDelay = failureDelay
            self.failureDelayMax = failureDelayMax
            self.penaltyExpiry = penaltyExpiry
            self.refusalLogInterval = refusalLogInterval
        }
    }

    /// Which limit refused a connection (logged as `limit=total` / `limit=per-ip`).
    public enum Refusal: Sendable, Equatable {
        case total, perClient
    }

    public enum Admission: Sendable, Equatable {
        case admitted
        /// `log` is true at most once per client key per `refusalLogInterval` (as long as the key stays in the
        /// tracked table), so the caller can log every refusal it is told to without a log flood.
        case refused(Refusal, log: Bool)
    }

    /// One tracked client in the LRU: a node of a doubly linked list threaded through `nodes` by index.
    private struct Node: Sendable {
        var key: ClientKey
        /// Failed logins since the count was last reset; meaningful only while `lastFailure` is within
        /// `penaltyExpiry` of now.
        var failures: Int
        var lastFailure: ContinuousClock.Instant
        var lastRefusalLog: ContinuousClock.Instant?
        /// Towards the most recently used end; `none` at the head.
        var prev: Int
        /// Towards the least recently used end; `none` at the tail. In the free list: the next free node.
        var next: Int
    }

    private static let none: Int = -1

    /// The limits in force; changed only through `update(limits:)` so the tracked table is resized with them.
    public private(set) var limits: Limits

    /// Open connections per client; a key is removed when its count reaches zero.
    private var open: [ClientKey: Int] = [:]
    private var totalOpen = 0
    /// Of `totalOpen`, the connections whose client is not known yet (`unidentifiedConnectionOpened`).
    private var unidentifiedOpen = 0

    /// The LRU: key → index into `nodes`; `head` most, `tail` least recently used; `free` chains unused nodes.
    private var index: [ClientKey: Int] = [:]
    private var nodes: [Node] = []
    private var head = ClientTable.none
    private var tail = ClientTable.none
    private var free = ClientTable.none

    public init(limits: Limits) {
        self.limits = limits
    }

    /// Takes new limits on a configuration reload. Open connections are kept (also those now over a lower limit:
    /// existing sessions are not cut, new ones are refused until enough close). A lower `trackedClients` forgets
    /// the least recently used clients down to the new size and gives back the memory.
    public mutating func update(limits newLimits: Limits) {
        limits = newLimits
        let capacity = max(0, newLimits.trackedClients)
        guard index.count > capacity || nodes.count > capacity else { return }
        while index.count > capacity { evictTail() }
        compact()
    }

    // MARK: Connections

    /// A connection from `key` was accepted. When it is admitted it is counted, and the caller must call
    /// `connectionClosed(_:)` when it ends; a refused one is not counted.
    ///
    /// The per-client limit is checked first, so a client over its own limit is named as the cause even when the
    /// total is also reached.
    public mutating func connectionOpened(_ key: ClientKey, now: ContinuousClock.Instant) -> Admission {
        let mine = open[key] ?? 0
        if mine >= limits.connectionsPerClient { return .refused(.perClient, log: shouldLogRefusal(key, now: now)) }
        if totalOpen >= limits.connections { return .refused(.total, log: shouldLogRefusal(key, now: now)) }
        open[key] = mine + 1
        totalOpen += 1
        return .admitted
    }

    /// An admitted connection of `key` ended. A close without a matching admitted open is ignored, so counts never go
    /// below zero.
    public mutating func connectionClosed(_ key: ClientKey) {
        guard let mine = open[key] else { return }
        if mine <= 1 { open[key] = nil } else { open[key] = mine - 1 }
        totalOpen -= 1
    }

    /// A connection whose client is not known yet was accepted: a PROXY protocol listener's, before its header
    /// names the client (the proxy's own address must not be charged for all the clients behind it). Only the
    /// total limit applies now; `connectionIdentified(_:now:)` applies the per-client one later. When admitted
    /// the caller must end it with `connectionIdentified` or `unidentifiedConnectionClosed()`. A refusal's `log`
    /// is throttled per `peer` (the proxy), or always true without one.
    public mutating func unidentifiedConnectionOpened(peer: ClientKey?, now: ContinuousClock.Instant) -> Admission {
        if totalOpen >= limits.connections { return .refused(.total, log: peer.map { shouldLogRefusal($0, now: now) } ?? true) }
        totalOpen += 1
        unidentifiedOpen += 1
        return .admitted
    }

    /// The client of a connection admitted by `unidentifiedConnectionOpened` is known. Admitted: it now counts
    /// for `key` (end it with `connectionClosed(key)`). Refused (over the per-client limit): it is still
    /// unidentified, and the caller ends it with `unidentifiedConnectionClosed()`.
    public mutating func connectionIdentified(_ key: ClientKey, now: ContinuousClock.Instant) -> Admission {
        let mine = open[key] ?? 0
        if mine >= limits.connectionsPerClient { return .refused(.perClient, log: shouldLogRefusal(key, now: now)) }
        guard unidentifiedOpen > 0 else { return connectionOpened(key, now: now) }
        unidentifiedOpen -= 1
        open[key] = mine + 1
        return .admitted
    }

    /// An unidentified connection ended (its header never came, or it was refused). Ignored without one open.
    public mutating func unidentifiedConnectionClosed() {
        guard unidentifiedOpen > 0 else { return }
        unidentifiedOpen -= 1
        totalOpen -= 1
    }

    /// Whether to log a refusal of `key` that is not about connection counts (a peer that is not a trusted
    /// proxy, a bad PROXY header): true at most once per key per `refusalLogInterval`, like `Admission.refused`.
    public mutating func shouldLogRefusal(of key: ClientKey, now: ContinuousClock.Instant) -> Bool {
        shouldLogRefusal(key, now: now)
    }

    /// Open connections over all clients.
    public var openConnections: Int { totalOpen }

    /// Open connections of one client.
    public func openConnections(of key: ClientKey) -> Int { open[key] ?? 0 }

    // MARK: Login penalty

    /// How long `key`'s next login attempt waits before the backend is contacted:
    /// min(failureDelay × 2^(n−1), failureDelayMax) for n failures not yet expired, zero for none. Like Dovecot's
    /// auth penalty (2, 4, 8, 15 s), it slows password guessing from one client without a lockout that an attacker
    /// could use against the real user. Computed without overflow for any n.
    public func penalty(for key: ClientKey, now: ContinuousClock.Instant) -> Duration {
        guard let slot = index[key] else { return .zero }
        let node = nodes[slot]
        guard node.failures > 0, !isExpired(node, now: now) else { return .zero }
        let step = limits.failureDelay, cap = limits.failureDelayMax
        guard step > .zero, cap > .zero else { return .zero }
        guard step < cap else { return cap }
        // Double at most until the cap is reached: a few dozen steps even for Duration's full range.
        var delay = step
        var doublings = node.failures - 1
        while doublings > 0 {
            if delay >= cap - delay { return cap }
            delay += delay
            doublings -= 1
        }
        return delay
    }

    /// A login of `key` failed for wrong credentials. Counts one failure; a count whose last failure has expired
    /// starts again from one.
    public mutating func loginFailed(_ key: ClientKey, now: ContinuousClock.Instant) {
        guard let slot = touchOrInsert(key, now: now) else { return }
        if nodes[slot].failures > 0 && isExpired(nodes[slot], now: now) { nodes[slot].failures = 0 }
        if nodes[slot].failures < Int.max { nodes[slot].failures += 1 }
        nodes[slot].lastFailure = now
    }

    /// A login of `key` succeeded: its failure count goes back to zero, as Dovecot resets its auth penalty on a
    /// successful login, so a user who mistyped a password is not slowed down afterwards. The entry is dropped when
    /// it holds nothing else.
    public mutating func loginSucceeded(_ key: ClientKey) {
        guard let slot = index[key] else { return }
        if nodes[slot].lastRefusalLog == nil {
            remove(slot)
        } else {
            nodes[slot].failures = 0
        }
    }

    /// Entries in the LRU table; never more than `limits.trackedClients`.
    public var trackedCount: Int { index.count }

    // MARK: Internals

    private func isExpired(_ node: Node, now: ContinuousClock.Instant) -> Bool {
        now - node.lastFailure >= limits.penaltyExpiry
    }

    private mutating func shouldLogRefusal(_ key: ClientKey, now: ContinuousClock.Instant) -> Bool {
        guard let slot = touchOrInsert(key, now: now) else { return true }
        if let last = nodes[slot].lastRefusalLog, now - last < limits.refusalLogInterval { return false }
        nodes[slot].lastRefusalLog = now
        return true
    }

    /// The slot of `key`, moved to the most recently used end; a new empty entry when it has none (evicting the
    /// least recently used one when the table is full). Nil when `trackedClients` is zero or less.
    private mutating func touchOrInsert(_ key: ClientKey, now: ContinuousClock.Instant) -> Int? {
        if let slot = index[key] {
            unlink(slot)
            pushFront(slot)
            return slot
        }
        let capacity = limits.trackedClients
        guard capacity > 0 else { return nil }
        if index.count >= capacity { evictTail() }
        let fresh = Node(key: key, failures: 0, lastFailure: now, lastRefusalLog: nil, prev: Self.none, next: Self.none)
        let slot: Int
        if free != Self.none {
            slot = free
            free = nodes[slot].next
            nodes[slot] = fresh
        } else {
            slot = nodes.count
            nodes.append(fresh)
        }
        index[key] = slot
        pushFront(slot)
        return slot
    }

    private mutating func evictTail() {
        guard tail != Self.none else { return }
        remove(tail)
    }

    private mutating func remove(_ slot: Int) {
        index[nodes[slot].key] = nil
        unlink(slot)
        nodes[slot].next = free
        free = slot
    }

    private mutating func unlink(_ slot: Int) {
        let prev = nodes[slot].prev, next = nodes[slot].next
        if prev != Self.none { nodes[prev].next = next } else { head = next }
        if next != Self.none { nodes[next].prev = prev } else { tail = prev }
        nodes[slot].prev = Self.none
        nodes[slot].next = Self.none
    }

    private mutating func pushFront(_ slot: Int) {
        nodes[slot].prev = Self.none
        nodes[slot].next = head
        if head != Self.none { nodes[head].prev = slot } else { tail = slot }
        head = slot
    }

    /// Rebuilds the node storage with only live entries, in LRU order, so a shrunk table also shrinks in memory.
    private mutating func compact() {
        var packed: [Node] = []
        packed.reserveCapacity(index.count)
        var newIndex: [ClientKey: Int] = [:]
        newIndex.reserveCapacity(index.count)
        var slot = head
        while slot != Self.none {
            var node = nodes[slot]
            slot = node.next
            let position = packed.count
            node.prev = position == 0 ? Self.none : position - 1
            node.next = slot == Self.none ? Self.none : position + 1
            newIndex[node.key] = position
            packed.append(node)
        }
        nodes = packed
        index = newIndex
        head = packed.isEmpty ? Self.none : 0
        tail = packed.isEmpty ? Self.none : packed.count - 1
        free = Self.none
    }
}
