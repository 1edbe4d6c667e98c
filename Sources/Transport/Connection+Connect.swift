import Dispatch
import Glibc

extension Connection {
    /// Non-blocking connect: resolves `host` with getaddrinfo off the loop (on a global queue), then connects on
    /// the loop, trying each address in turn. `completion` runs on `loop.queue`, exactly once: the connection (not
    /// yet started), `.connectTimeout` once `timeout` has passed since this call, `.resolve`, or the last
    /// address's connect error.
    public static func connect(host: String, port: UInt16, loop: EventLoop, timeout: Duration,
                               completion: @escaping @Sendable (Result<Connection, TransportError>) -> Void) {
        let attempt = ConnectAttempt(host: host, port: port, loop: loop, completion: completion)
        loop.execute { attempt.begin(timeout: timeout) }
    }
}

/// One `Connection.connect` in progress.
///
/// `@unchecked Sendable`: all state is confined to `loop.queue`; the resolver result hops back there.
private final class ConnectAttempt: @unchecked Sendable {
    private let host: String
    private let port: UInt16
    private let loop: EventLoop
    private let completion: @Sendable (Result<Connection, TransportError>) -> Void

    private var finished = false
    private var timer: Timer?
    private var addresses: [SocketAddressStorage] = []
    private var nextAddress = 0
    private var lastError: TransportError?
    /// The socket waiting for its connect to complete, watched by a write source.
    private var inFlight: (fd: Int32, source: any DispatchSourceWrite)?
    /// Set when the in-flight socket connected: its cancel handler then hands the fd to a Connection instead of
    /// closing it.
    private var connectedPeer: SocketAddress??

    init(host: String, port: UInt16, loop: EventLoop,
         completion: @escaping @Sendable (Result<Connection, TransportError>) -> Void) {
        self.host = host
        self.port = port
        self.loop = loop
        self.completion = completion
    }

    func begin(timeout: Duration) {
        timer = loop.schedule(after: timeout) { self.timedOut() }
        let (host, port, loop) = (self.host, self.port, self.loop)
        DispatchQueue.global().async {
            let result = Socket.resolve(host: host, port: port, passive: false)
            loop.execute { self.resolved(result) }
        }
    }

    private func resolved(_ result: Result<[SocketAddressStorage], TransportError>) {
        guard !finished else { return }
        switch result {
        case .success(let resolved):
            addresses = resolved
            tryNextAddress()
        case .failure(let error):
            finish(.failure(error))
        }
    }

    private func tryNextAddress() {
        while !finished {
            guard nextAddress < addresses.count else {
                finish(.failure(lastError ?? .closed))
                return
            }
            let address = addresses[nextAddress]
            nextAddress += 1
            let fd = socket(address.family, Socket.streamType | Socket.createFlags, 0)
            guard fd >= 0 else {
                lastError = .system("socket")
                continue
            }
            var result: Int32
            repeat {
                result = address.withSockaddr { Glibc.connect(fd, $0, $1) }
            } while result < 0 && errno == EINTR
            if result == 0 {
                succeed(fd: fd, peer: address.socketAddress)
                return
            }
            let code = errno
            if code == EINPROGRESS {
                watch(fd: fd, peer: address.socketAddress)
                return
            }
            Glibc.close(fd)  // no source was ever made for it
            lastError = .system("connect", errno: code)
        }
    }

    private func watch(fd: Int32, peer: SocketAddress?) {
        let source = DispatchSource.makeWriteSource(fileDescriptor: fd, queue: loop.queue)
        source.setEventHandler { self.connectCompleted(fd: fd, peer: peer) }
        source.setCancelHandler {
            if let peer = self.connectedPeer {
                self.connectedPeer = nil
                self.completion(.success(Connection(fd: fd, loop: self.loop, peerAddress: peer)))
            } else {
                Glibc.close(fd)
            }
        }
        inFlight = (fd, source)
        source.resume()
    }

    private func connectCompleted(fd: Int32, peer: SocketAddress?) {
        guard let (inFlightFD, source) = inFlight, inFlightFD == fd else { return }
        inFlight = nil
        let code: Int32
        do throws(TransportError) {
            code = try Socket.intOption(fd, SOL_SOCKET, SO_ERROR)
        } catch {
            code = EBADF
        }
        if code == 0 && !finished {
            finished = true
            timer?.cancel()
            // The Connection gets the fd only once this source is cancelled, so two sources never watch it.
            connectedPeer = .some(peer)
            source.cancel()
            return
        }
        source.cancel()
        lastError = .system("connect", errno: code)
        tryNextAddress()
    }

    private func succeed(fd: Int32, peer: SocketAddress?) {
        finished = true
        timer?.cancel()
        completion(.success(Connection(fd: fd, loop: loop, peerAddress: peer)))
    }

    private func timedOut() {
        guard !finished else { return }
        if let (_, source) = inFlight {
            inFlight = nil
            source.cancel()  // its cancel handler closes the fd
        }
        finish(.failure(.connectTimeout))
    }

    private func finish(_ result: Result<Connection, TransportError>) {
        guard !finished else { return }
        finished = true
        timer?.cancel()
        completion(result)
    }
}
