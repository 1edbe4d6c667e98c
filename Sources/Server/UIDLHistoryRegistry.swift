import Foundation
import Gateway

/// The daemon's one `UIDLHistory` (the UIDL samples of the users' last sessions), shared by every event
/// loop. Outlives configuration reloads; lost on restart (the next session of each user then says
/// `uidl_change=first`). Every call is O(1) amortised under the lock.
final class UIDLHistoryRegistry: @unchecked Sendable {
    /// Users remembered: at most about 250 bytes each (a sample of 8 hashes and sizes, the name, the
    /// table's overhead), so about 12 MB at most.
    static let defaultCapacity = 50_000

    private let lock = NSLock()
    // Guarded by `lock`.
    private var history: UIDLHistory

    init(capacity: Int = UIDLHistoryRegistry.defaultCapacity) {
        history = UIDLHistory(capacity: capacity)
    }

    func recall(_ user: String) -> UIDLSample? {
        lock.withLock { history.recall(user) }
    }

    func remember(_ user: String, _ sample: UIDLSample) {
        lock.withLock { history.remember(user, sample) }
    }
}
