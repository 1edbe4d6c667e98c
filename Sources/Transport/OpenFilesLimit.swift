import Glibc

/// The process's limit on open descriptors (RLIMIT_NOFILE). Every session holds two (client and backend),
/// so a gateway for 10,000 sessions needs more than 20,000; the usual soft limit is 1,024. The hard limit
/// is what the service manager grants (`LimitNOFILE=` in the unit); up to it the process may raise the
/// soft limit itself, which is safe here because no descriptor ever goes through select().
public enum OpenFilesLimit {
    public struct Outcome: Sendable, Equatable {
        /// The soft limit before and after.
        public var before: UInt64
        public var after: UInt64
        /// The hard limit: the ceiling the process cannot pass.
        public var hard: UInt64
    }

    /// Raises the soft limit to the hard limit (capped at `ceiling`, so an "unlimited" hard limit does not
    /// ask the kernel for more than it allows). Returns nil when the limit cannot be read.
    public static func raiseToHardLimit(ceiling: UInt64 = 1 << 20) -> Outcome? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        let before = UInt64(limit.rlim_cur)
        let hard = UInt64(limit.rlim_max)
        let target = Swift.min(hard, ceiling)
        guard target > before else { return Outcome(before: before, after: before, hard: hard) }
        var raised = limit
        raised.rlim_cur = rlim_t(target)
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 else {
            return Outcome(before: before, after: before, hard: hard)
        }
        return Outcome(before: before, after: target, hard: hard)
    }

    /// Descriptors `connections` sessions need: two each, plus the listeners, log and spare for accept.
    public static func needed(forConnections connections: Int) -> UInt64 {
        UInt64(Swift.max(0, connections)) * 2 + 64
    }
}
