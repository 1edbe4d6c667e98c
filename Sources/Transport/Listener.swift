import Dispatch
import Glibc

/// A listening TCP socket that hands accepted, non-blocking file descriptors to a callback.
///
/// ```swift
/// let listener = try Listener.bind(host: "0.0.0.0", port: 995)
/// listener.start(acceptQueue: acceptQueue) { fd, peer in
///     let loop = group.next()
///     loop.execute { let connection = Connection(fd: fd, loop: loop, peerAddress: peer) /* … */ }
/// }
/// ```
///
/// `@unchecked Sendable`: `phase` is guarded by `lock`; `acceptPaused` and `cancelled` are confined to the accept
/// queue once `start` has run. A started listener keeps itself alive until `stop()`.
public final class Listener: @unchecked Sendable {
    /// How long accepting pauses after EMFILE, ENFILE, ENOBUFS, ENOMEM or an unexpected accept error. The
    /// pending connection stays in the backlog; retrying at once would spin at 100% CPU.
    static let acceptErrorPause: DispatchTimeInterval = .milliseconds(100)

    /// Stands in for the peer of an accepted non-IP (AF_UNIX) connection on an adopted socket.
    static let nonIPAddress = SocketAddress(host: "unix", port: 0)

    private let fd: Int32
    private let boundAddress: SocketAddress

    private enum Phase {
        case idle
        case running(any DispatchSourceRead, DispatchQueue)
        case stopped
    }
    private let lock = Lock()
    private var phase = Phase.idle          // guarded by lock
    private var acceptPaused = false        // accept queue only
    private var cancelled = false           // accept queue only

    /// The bound address; the real port when bound to port 0.
    public var localAddress: SocketAddress { boundAddress }

    private init(listeningSocket fd: Int32) {
        self.fd = fd
        boundAddress = Socket.localAddress(fd)?.socketAddress ?? Listener.nonIPAddress
    }

    /// socket(), SO_REUSEADDR, bind, listen(backlog), O_NONBLOCK, FD_CLOEXEC. `host` is an IP literal or a name
    /// (resolved here, blocking); an empty host or "*" means every address. IPV6_V6ONLY keeps the system default.
    /// When a name yields several addresses the first that binds wins.
    public static func bind(host: String, port: UInt16, backlog: Int32 = 1024) throws(TransportError) -> Listener {
        let addresses: [SocketAddressStorage]
        switch Socket.resolve(host: host, port: port, passive: true) {
        case .success(let resolved): addresses = resolved
        case .failure(let error): throw error
        }
        var lastError = TransportError.resolve(host: host, message: "no address")
        for address in addresses {
            let fd = socket(address.family, Socket.streamType | Socket.createFlags, 0)
            guard fd >= 0 else {
                lastError = .system("socket")
                continue
            }
            do throws(TransportError) {
                try Socket.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
                if address.withSockaddr({ Glibc.bind(fd, $0, $1) }) < 0 { throw .system("bind") }
                if listen(fd, backlog) < 0 { throw .system("listen") }
                try Socket.setNonBlocking(fd)
                try Socket.setCloseOnExec(fd)
                return Listener(listeningSocket: fd)
            } catch {
                Glibc.close(fd)
                lastError = error
            }
        }
        throw lastError
    }

    /// Adopts an already listening socket (systemd socket activation): checks SO_ACCEPTCONN and sets O_NONBLOCK
    /// and FD_CLOEXEC. On success the listener owns `fd`; when this throws, the caller still does.
    public init(adoptingListeningSocket fd: Int32) throws(TransportError) {
        guard try Socket.intOption(fd, SOL_SOCKET, SO_ACCEPTCONN) != 0 else {
            throw .system("adopt", errno: EINVAL)
        }
        try Socket.setNonBlocking(fd)
        try Socket.setCloseOnExec(fd)
        self.fd = fd
        boundAddress = Socket.localAddress(fd)?.socketAddress ?? Listener.nonIPAddress
    }

    deinit {
        // A started listener cannot reach deinit before its source is cancelled (the handler holds it), and the
        // cancel handler closes the fd. Only a never-started, never-stopped listener still owns an open fd here.
        if case .idle = phase { Glibc.close(fd) }
    }

    /// Accepts on `acceptQueue` with a read source; each accepted fd is O_NONBLOCK, FD_CLOEXEC and TCP_NODELAY and
    /// belongs to `onAccept` (called on `acceptQueue`). A second call is ignored, as is a call after `stop()`.
    public func start(acceptQueue: DispatchQueue, onAccept: @escaping @Sendable (Int32, SocketAddress) -> Void) {
        lock.withLock {
            guard case .idle = phase else { return }
            let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: acceptQueue)
            source.setEventHandler { self.acceptReady(source: source, queue: acceptQueue, onAccept: onAccept) }
            let fd = self.fd
            source.setCancelHandler { Glibc.close(fd) }
            phase = .running(source, acceptQueue)
            source.resume()
        }
    }

    /// Cancels the source; the fd is closed in its cancel handler, shortly after on the accept queue (so the port
    /// is not necessarily free when this returns). Thread-safe, idempotent.
    public func stop() {
        lock.withLock {
            switch phase {
            case .idle:
                phase = .stopped
                Glibc.close(fd)
            case let .running(source, queue):
                phase = .stopped
                let source = SourceBox(source)
                queue.async {
                    let source = source.source
                    self.cancelled = true
                    // Dispatch traps when a suspended source is cancelled and released.
                    if self.acceptPaused {
                        self.acceptPaused = false
                        source.resume()
                    }
                    source.cancel()
                }
            case .stopped:
                break
            }
        }
    }

    private func acceptReady(source: any DispatchSourceRead, queue: DispatchQueue,
                             onAccept: @Sendable (Int32, SocketAddress) -> Void) {
        while !cancelled, !acceptPaused {
            var peer = SocketAddressStorage()
            // accept4 is not visible through Swift's Glibc module (it needs _GNU_SOURCE), hence accept and
            // fcntl: Linux does not inherit O_NONBLOCK from the listener.
            let client = peer.withMutableSockaddr { accept(fd, $0, $1) }
            if client >= 0 {
                do throws(TransportError) {
                    try Socket.setCloseOnExec(client)
                    try Socket.setNonBlocking(client)
                } catch {
                    Glibc.close(client)
                    continue
                }
                Socket.setNoDelay(client)
                onAccept(client, peer.socketAddress ?? Listener.nonIPAddress)
                continue
            }
            switch errno {
            case EAGAIN, EWOULDBLOCK:
                return
            case EINTR, ECONNABORTED, EPROTO, EPERM,
                 // Linux passes pending network errors of the new socket to accept(2); that connection is gone,
                 // the next one may be fine (see accept(2), "Error handling").
                 ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH:
                continue
            default:
                // EMFILE, ENFILE, ENOBUFS, ENOMEM, or something unexpected: the readiness persists, so pause.
                pauseAccepting(source: source, queue: queue)
                return
            }
        }
    }

    private func pauseAccepting(source: any DispatchSourceRead, queue: DispatchQueue) {
        acceptPaused = true
        source.suspend()
        let box = SourceBox(source)
        queue.asyncAfter(deadline: .now() + Listener.acceptErrorPause) {
            let source = box.source
            guard self.acceptPaused, !self.cancelled else { return }
            self.acceptPaused = false
            source.resume()
        }
    }
}

/// Carries a Dispatch source into a `@Sendable` closure that runs on the source's own queue.
///
/// `@unchecked Sendable`: the source is only touched on the accept queue, or through thread-safe Dispatch calls.
private struct SourceBox: @unchecked Sendable {
    let source: any DispatchSourceRead
    init(_ source: any DispatchSourceRead) { self.source = source }
}
