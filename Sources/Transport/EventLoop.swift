import Dispatch

/// One serial DispatchQueue used as an event loop. Every connection is pinned to one loop: its sources, timers and
/// callbacks all run on `queue`, so a connection's state needs no locks.
///
/// `@unchecked Sendable`: the only mutable state, `readBuffer`, is confined to `queue`.
public final class EventLoop: @unchecked Sendable {
    public let queue: DispatchQueue

    /// The 64 KiB buffer every connection on this loop reads into. Reads on one loop never overlap, so one buffer
    /// per loop (not per connection) is enough. Confined to `queue`; allocated on first use.
    var readBuffer: [UInt8] = []
    static let readBufferSize = 64 * 1024

    /// A reusable buffer for data derived from a read (TLS plaintext), lent out with `takeScratch` and
    /// given back with `returnScratch`: a relay of large messages then does not allocate (and fault in)
    /// a new buffer of up to four reads' size per read. Confined to `queue`.
    private var scratch: [UInt8] = []
    static let scratchCapacityKept = 1 << 20

    /// The loop's scratch buffer, emptied; the loop has none until it is returned (a nested user gets
    /// a fresh one). Call on `queue`.
    public func takeScratch() -> [UInt8] {
        assertInLoop()
        var buffer: [UInt8] = []
        swap(&buffer, &scratch)
        buffer.removeAll(keepingCapacity: true)
        return buffer
    }

    /// Gives a buffer from `takeScratch` back for the next read (dropped if it grew past 1 MiB).
    public func returnScratch(_ buffer: consuming [UInt8]) {
        assertInLoop()
        if buffer.capacity <= Self.scratchCapacityKept { scratch = buffer }
    }

    init(label: String) {
        queue = DispatchQueue(label: label)
    }

    public func execute(_ work: @escaping @Sendable () -> Void) {
        queue.async(execute: work)
    }

    /// A one-shot timer on this loop's queue; cancel() before it fires prevents the handler. Handler runs on `queue`.
    /// May be called from any thread. The timer stays armed even if the returned `Timer` is dropped.
    public func schedule(after delay: Duration, _ handler: @escaping @Sendable () -> Void) -> Timer {
        let source = DispatchSource.makeTimerSource(queue: queue)
        source.schedule(deadline: .now() + .nanoseconds(delay.clampedNanoseconds))
        // The handler holds the source (a deliberate cycle) so the timer survives without its `Timer`; cancelling
        // releases the handler and with it the cycle.
        source.setEventHandler {
            source.cancel()
            handler()
        }
        source.resume()
        return Timer(source: source)
    }

    public func preconditionInLoop() {
        dispatchPrecondition(condition: .onQueue(queue))
    }

    /// Debug-only variant for the hot paths of `Connection`.
    @inline(__always)
    func assertInLoop() {
        assert({ dispatchPrecondition(condition: .onQueue(queue)); return true }())
    }
}

/// A handle on a one-shot timer created by `EventLoop.schedule(after:_:)`.
///
/// `@unchecked Sendable`: it only holds a Dispatch source, whose `cancel()` is thread-safe. Cancelling on the loop's
/// queue before the timer fires guarantees the handler never runs; cancelling from elsewhere races with firing.
public final class Timer: @unchecked Sendable {
    private let source: any DispatchSourceTimer

    init(source: any DispatchSourceTimer) {
        self.source = source
    }

    /// Idempotent; a no-op once the timer has fired.
    public func cancel() {
        source.cancel()
    }
}

/// A small fixed set of event loops; connections are spread over them round robin.
///
/// `@unchecked Sendable`: `loops` is immutable, the round-robin counter is guarded by `lock`.
public final class EventLoopGroup: @unchecked Sendable {
    public let loops: [EventLoop]
    private let lock = Lock()
    private var nextIndex = 0  // guarded by lock

    /// `loopCount` below 1 is treated as 1. A typical value is the number of active processors.
    public init(loopCount: Int) {
        loops = (0..<max(1, loopCount)).map { EventLoop(label: "popgate.transport.loop.\($0)") }
    }

    /// The next loop, round robin. Thread-safe.
    public func next() -> EventLoop {
        lock.withLock {
            let loop = loops[nextIndex]
            nextIndex = (nextIndex + 1) % loops.count
            return loop
        }
    }
}

extension Duration {
    /// Whole nanoseconds, negative durations as 0, saturating at `Int.max`.
    var clampedNanoseconds: Int {
        let (seconds, attoseconds) = components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return 0 }
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return Int.max }
        let (total, overflow2) = scaled.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow2 { return Int.max }
        return Int(clamping: total)
    }
}
