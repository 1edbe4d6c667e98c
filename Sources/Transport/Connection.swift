import Dispatch
import Glibc

/// A non-blocking TCP connection pinned to one `EventLoop`. All methods must be called on `loop.queue`; all
/// callbacks run there.
///
/// Life cycle: `init` (owns the fd) → set callbacks → `start()` → reads, writes → `close(flush:)`, peer EOF or an
/// error → `onClose` exactly once, after the fd is closed; then the callbacks are released (breaking any cycle
/// through them) and nothing more is called. A started connection keeps itself alive until it is closed.
///
/// Back-pressure: `write` never blocks and never drops; it queues. Writers should stop producing while
/// `isAboveHighWatermark` and continue on `onWritable`, which fires once the queue, after exceeding
/// `highWatermark`, drains below `lowWatermark`.
///
/// `@unchecked Sendable`: all mutable state is confined to `loop.queue` (Dispatch sources target that queue).
public final class Connection: @unchecked Sendable {
    public let loop: EventLoop
    public let peerAddress: SocketAddress?

    /// Bytes read (at most 64 KiB per call). The slice shares the loop's reusable buffer: copy what you keep.
    public var onRead: ((ArraySlice<UInt8>) -> Void)?
    /// Peer EOF, `close(flush:)` (nil) or an error; called exactly once, after which no more callbacks.
    public var onClose: ((TransportError?) -> Void)?
    /// The outbound buffer dropped below `lowWatermark` after being above `highWatermark`.
    public var onWritable: (() -> Void)?
    /// The peer half-closed (EOF on read). When set, reading stops but the connection stays open for
    /// writing until the owner closes it (a client may pipeline commands, shut down its sending side
    /// and still wait for the answers). When nil, EOF begins a flushing close.
    public var onReadEOF: (() -> Void)?

    public var highWatermark = 256 * 1024
    public var lowWatermark = 64 * 1024
    /// A hard cap on queued output: a write that would go past it closes the connection with
    /// `.outputLimitExceeded`. Writers that respect the high watermark never reach it; it is the
    /// guarantee that one peer's queue cannot grow the process, whatever a writer does. The default
    /// is generous; the gateway sets a cap just above what its flow control can queue.
    public var maxQueuedBytes = 64 * 1024 * 1024
    /// How long a flushing close may wait for the peer to take the rest of the queue; then the
    /// connection is closed hard. A peer that keeps its receive window at zero cannot hold the fd and
    /// the queued bytes forever. nil waits without limit.
    public var flushTimeout: Duration? = .seconds(10)

    private let fd: Int32

    private enum Lifecycle {
        case open
        /// close(flush: true) or peer EOF: no more reads or writes accepted, the queue is being sent.
        case flushing
        /// Sources cancelled (or about to be); the fd is closed by the last cancel handler.
        case closed
    }
    private var lifecycle = Lifecycle.open
    private var started = false
    private var readingPaused = false
    /// The peer sent EOF and `onReadEOF` took it: nothing more to read.
    private var readEOF = false

    // Created on first need (start, or a write that could not be sent at once) and cancelled together.
    // A new Dispatch source is inactive, which counts as suspended here: both flags start true.
    private var readSource: (any DispatchSourceRead)?
    private var writeSource: (any DispatchSourceWrite)?
    private var readSuspended = true
    private var writeSuspended = true
    private var uncancelledSources = 0
    private var fdClosed = false
    private var closeError: TransportError?

    // The outbound queue: bytes before `outboundStart` are sent. Sent bytes are dropped in bulk (see `compact`),
    // never with removeFirst, so queueing and sending n bytes costs O(n).
    private var outbound: [UInt8] = []
    private var outboundStart = 0
    private var wasAboveHighWatermark = false
    private var flushDeadline: Timer?

    /// Takes ownership of a connected stream socket (sets O_NONBLOCK). May be called off the loop.
    public init(fd: Int32, loop: EventLoop, peerAddress: SocketAddress?) {
        self.fd = fd
        self.loop = loop
        self.peerAddress = peerAddress
        // Accepted and connected fds are already non-blocking; this guards fds from elsewhere. A failure means the
        // fd is unusable, which the first read or send reports.
        try? Socket.setNonBlocking(fd)
    }

    deinit {
        // With sources alive the handlers keep `self` alive, so getting here means no source was ever created
        // (never started, every write sent at once) or both were cancelled and their handler closed the fd.
        if !fdClosed && readSource == nil { Glibc.close(fd) }
    }

    // MARK: - Public API

    /// The local end of the connection (`getsockname`), e.g. the address a client connected to.
    public var localAddress: SocketAddress? { Socket.localAddress(fd)?.socketAddress }

    /// Bytes queued, not yet sent.
    public var pendingWriteCount: Int { outbound.count - outboundStart }

    public var isAboveHighWatermark: Bool { pendingWriteCount > highWatermark }

    /// True once `close(flush:)` was called or the peer closed; writes are then ignored.
    public var isClosed: Bool { lifecycle != .open }

    /// Begins reading. Set the callbacks first. Idempotent.
    public func start() {
        loop.assertInLoop()
        guard lifecycle == .open, !started else { return }
        started = true
        createSourcesIfNeeded()
        updateReadSource()
    }

    /// Queues `bytes` and sends what the socket takes now; the rest goes out when it becomes writable. Ignored
    /// once closed.
    public func write<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        loop.assertInLoop()
        guard lifecycle == .open, !bytes.isEmpty else { return }
        let wasIdle = pendingWriteCount == 0
        guard pendingWriteCount + bytes.count <= maxQueuedBytes else {
            teardown(.outputLimitExceeded(maxQueuedBytes))
            return
        }
        // With bytes already queued the write source is armed and will send these too, in order.
        guard wasIdle else {
            outbound.append(contentsOf: bytes)
            noteHighWatermark()
            return
        }
        // Nothing queued: send straight from the caller's bytes and queue only what the socket did not
        // take (the common case on a reading peer is that it takes everything, and nothing is copied).
        let direct = bytes.withContiguousStorageIfAvailable { buffer in sendDirect(buffer) }
        switch direct {
        case .sent(let count)?:
            if count < bytes.count { outbound.append(contentsOf: bytes.dropFirst(count)) }
        case .failed(let error)?:
            teardown(error)
            return
        case nil:
            outbound.append(contentsOf: bytes)
            if let error = sendQueued() {
                teardown(error)
                return
            }
        }
        if pendingWriteCount > 0 {
            createSourcesIfNeeded()
            setWriteSourceActive(true)
            noteHighWatermark()
        }
    }

    /// Gives back the output queue's memory when nothing is queued. While data flows the queue keeps up
    /// to 64 KiB of capacity for reuse; an idle connection needs none.
    public func releaseIdleBuffer() {
        loop.assertInLoop()
        guard pendingWriteCount == 0, outbound.capacity > 0 else { return }
        outbound = []
        outboundStart = 0
    }

    /// Suspends the read source. Idempotent.
    public func pauseReading() {
        loop.assertInLoop()
        readingPaused = true
        updateReadSource()
    }

    public func resumeReading() {
        loop.assertInLoop()
        readingPaused = false
        updateReadSource()
    }

    /// Closes after sending what is queued (then shutdown(SHUT_WR) and close), or at once with `flush: false`,
    /// dropping the queue. `onClose(nil)` follows once the fd is closed. Idempotent; `close(flush: false)` during a
    /// flushing close stops waiting for the peer to take the rest.
    public func close(flush: Bool) {
        loop.assertInLoop()
        switch lifecycle {
        case .closed:
            return
        case .flushing:
            if !flush { teardown(nil) }
        case .open:
            if flush { beginFlushingClose() } else { teardown(nil) }
        }
    }

    // MARK: - Sources

    private func createSourcesIfNeeded() {
        guard readSource == nil, lifecycle != .closed else { return }
        let read = DispatchSource.makeReadSource(fileDescriptor: fd, queue: loop.queue)
        let write = DispatchSource.makeWriteSource(fileDescriptor: fd, queue: loop.queue)
        // These closures hold `self` until the sources are cancelled: an open connection owns itself.
        read.setEventHandler { self.readable() }
        write.setEventHandler { self.writable() }
        read.setCancelHandler { self.sourceCancelled() }
        write.setCancelHandler { self.sourceCancelled() }
        readSource = read
        writeSource = write
        uncancelledSources = 2
    }

    private func updateReadSource() {
        guard lifecycle != .closed, let source = readSource else { return }
        let shouldRead = started && !readingPaused && !readEOF && lifecycle == .open
        if shouldRead && readSuspended {
            readSuspended = false
            source.resume()
        } else if !shouldRead && !readSuspended {
            readSuspended = true
            source.suspend()
        }
    }

    private func setWriteSourceActive(_ active: Bool) {
        guard lifecycle != .closed, let source = writeSource else { return }
        if active && writeSuspended {
            writeSuspended = false
            source.resume()
        } else if !active && !writeSuspended {
            writeSuspended = true
            source.suspend()
        }
    }

    private func sourceCancelled() {
        uncancelledSources -= 1
        guard uncancelledSources == 0 else { return }
        // Both sources are gone from the kernel's interest list: only now may the fd number be reused.
        Glibc.close(fd)
        fdClosed = true
        readSource = nil
        writeSource = nil
        deliverClose()
    }

    private func deliverClose() {
        let callback = onClose
        onClose = nil
        onRead = nil
        onWritable = nil
        onReadEOF = nil
        callback?(closeError)
    }

    // MARK: - Reading

    private func readable() {
        // Reads are bounded per event so one busy connection cannot monopolise the loop; the level-triggered
        // source fires again while data remains.
        for _ in 0..<4 {
            guard lifecycle == .open, !readSuspended else { return }
            if loop.readBuffer.isEmpty { loop.readBuffer = [UInt8](repeating: 0, count: EventLoop.readBufferSize) }
            let count = loop.readBuffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                onRead?(loop.readBuffer[0..<count])
                // Read on until EAGAIN rather than returning after a short read: a peer that sends its
                // last bytes and resets at once leaves EOF or ECONNRESET right behind the data, and the
                // read source is not guaranteed to fire again for it (seen: the fd held until a timer).
                continue
            }
            if count == 0 {
                if let onReadEOF {
                    readEOF = true
                    updateReadSource()
                    onReadEOF()
                } else {
                    peerClosed()
                }
                return
            }
            switch errno {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                return
            case let code:
                teardown(.system("read", errno: code))
                return
            }
        }
    }

    /// EOF: the peer sends no more. Whatever is queued still goes out (the peer may only have half-closed),
    /// then the connection closes with `onClose(nil)`.
    private func peerClosed() {
        beginFlushingClose()
    }

    // MARK: - Writing

    private enum DirectSend {
        case sent(Int)
        case failed(TransportError)
    }

    /// Sends from `buffer` until it is all sent or the socket is full.
    private func sendDirect(_ buffer: UnsafeBufferPointer<UInt8>) -> DirectSend {
        guard let base = buffer.baseAddress else { return .sent(0) }
        var offset = 0
        while offset < buffer.count {
            let sent = send(fd, base + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
            if sent >= 0 {
                offset += sent
                continue
            }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { break }
            return .failed(.system("send", errno: code))
        }
        return .sent(offset)
    }

    /// Sends from the queue until it is empty or the socket is full. Returns the error of a failed send.
    private func sendQueued() -> TransportError? {
        var failure: TransportError?
        while outboundStart < outbound.count {
            let sent = outbound.withUnsafeBytes { raw in
                send(fd, raw.baseAddress! + outboundStart, raw.count - outboundStart, Int32(MSG_NOSIGNAL))
            }
            if sent >= 0 {
                outboundStart += sent
                continue
            }
            let code = errno
            if code == EINTR { continue }
            if code != EAGAIN && code != EWOULDBLOCK { failure = .system("send", errno: code) }
            break
        }
        compact()
        return failure
    }

    /// Drops sent bytes: all of them when the queue is empty, otherwise only once they are at least half the
    /// array (so each byte is moved at most a constant number of times).
    private func compact() {
        if outboundStart == outbound.count {
            // Keep a modest buffer for reuse; give back what a large burst grew.
            outbound.removeAll(keepingCapacity: outbound.capacity <= 64 * 1024)
            outboundStart = 0
        } else if outboundStart >= 64 * 1024 && outboundStart * 2 >= outbound.count {
            outbound.removeSubrange(0..<outboundStart)
            outboundStart = 0
        }
    }

    private func noteHighWatermark() {
        if pendingWriteCount > highWatermark { wasAboveHighWatermark = true }
    }

    private func writable() {
        guard lifecycle != .closed else { return }
        if let error = sendQueued() {
            // The user asked to close; a peer that stopped listening does not turn that into an error.
            teardown(lifecycle == .flushing ? nil : error)
            return
        }
        let pending = pendingWriteCount
        if pending == 0 { setWriteSourceActive(false) }
        if lifecycle == .flushing {
            if pending == 0 { finishFlushingClose() }
            return
        }
        if wasAboveHighWatermark && (pending < lowWatermark || pending == 0) {
            wasAboveHighWatermark = false
            onWritable?()
        }
    }

    // MARK: - Closing

    private func beginFlushingClose() {
        guard lifecycle == .open else { return }
        lifecycle = .flushing
        updateReadSource()
        if pendingWriteCount == 0 {
            finishFlushingClose()
        } else {
            createSourcesIfNeeded()
            setWriteSourceActive(true)
            if let flushTimeout {
                flushDeadline = loop.schedule(after: flushTimeout) { [weak self] in
                    guard let self else { return }
                    self.loop.assertInLoop()
                    if self.lifecycle == .flushing { self.teardown(nil) }
                }
            }
        }
    }

    private func finishFlushingClose() {
        // FIN after the last byte, before close.
        _ = shutdown(fd, Int32(SHUT_WR))
        teardown(nil)
    }

    /// Stops everything at once; `onClose(error)` follows from the last cancel handler.
    private func teardown(_ error: TransportError?) {
        guard lifecycle != .closed else { return }
        lifecycle = .closed
        closeError = error
        flushDeadline?.cancel()
        flushDeadline = nil
        outbound = []
        outboundStart = 0
        if let read = readSource, let write = writeSource {
            // Dispatch traps on cancelling-then-releasing a suspended source, and a suspended source's cancel
            // handler never runs: resume both first. Their event handlers cannot run any more (cancelled before
            // this block returns to the queue), and both check `lifecycle` anyway.
            if readSuspended { readSuspended = false; read.resume() }
            if writeSuspended { writeSuspended = false; write.resume() }
            read.cancel()
            write.cancel()
        } else {
            Glibc.close(fd)
            fdClosed = true
            // Deferred so onClose never runs inside the caller's close() or write().
            loop.execute { self.deliverClose() }
        }
    }
}
