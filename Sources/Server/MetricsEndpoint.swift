import Dispatch
import Foundation
import Gateway
import Glibc
import Logging
import ScrapeHTTP
import Transport

/// The `metrics:` listener: plain HTTP, one `GET /metrics` per connection (`ScrapeHTTP` decides the
/// answer), on the daemon's event loops.
///
/// What a scraper, or anyone who reaches the port, can cost (docs/operations.md):
/// - at most `maxConnections` connections at once; one more gets a 503 in one non-blocking send and
///   is closed at accept;
/// - at most `maxRequestBytes` of request held per connection (then 414/431 and close);
/// - `deadline` from accept to close, whatever the peer does (sends nothing, sends a header without
///   end, or does not read the answer): then the connection is closed hard.
final class MetricsEndpoint: @unchecked Sendable {
    struct Limits: Sendable {
        var maxConnections = 8
        var maxRequestBytes = ScrapeRequestReader.defaultMaxHeadBytes
        var deadline: Duration = .seconds(10)
    }

    private let listener: Listener
    private let group: EventLoopGroup
    private let limits: Limits
    private let render: @Sendable () -> [UInt8]
    private let logger: Logger
    private let lock = NSLock()
    private var open = 0  // guarded by lock

    /// `render` produces the exposition text; it runs on an event loop, once per `GET /metrics`.
    init(listener: Listener, group: EventLoopGroup, limits: Limits = Limits(), logger: Logger, render: @escaping @Sendable () -> [UInt8]) {
        self.listener = listener
        self.group = group
        self.limits = limits
        self.logger = logger
        self.render = render
    }

    var localAddress: SocketAddress { listener.localAddress }

    /// Connections open now (for tests and the log).
    var openConnections: Int { lock.withLock { open } }

    func start(acceptQueue: DispatchQueue) {
        listener.start(acceptQueue: acceptQueue) { [self] fd, peer in accepted(fd: fd, peer: peer) }
    }

    func stop() {
        listener.stop()
    }

    private func accepted(fd: Int32, peer: SocketAddress) {
        let admitted = lock.withLock {
            guard open < limits.maxConnections else { return false }
            open += 1
            return true
        }
        guard admitted else {
            Self.busy.withUnsafeBytes { raw in
                _ = Glibc.send(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            _ = Glibc.close(fd)
            return
        }
        let loop = group.next()
        loop.execute { [self] in
            let connection = Connection(fd: fd, loop: loop, peerAddress: peer)
            // The deadline covers the whole connection; a flushing close must not outlive it.
            connection.flushTimeout = limits.deadline
            var reader = ScrapeRequestReader(maxHeadBytes: limits.maxRequestBytes)
            let deadline = loop.schedule(after: limits.deadline) { [weak connection] in
                connection?.close(flush: false)
            }
            connection.onRead = { [unowned connection, self] bytes in
                guard case .respond(let answer) = reader.append(bytes) else { return }
                connection.pauseReading()
                let body = answer.status == .ok ? render() : []
                connection.write(answer.bytes(metrics: body))
                connection.close(flush: true)
                if answer.status != .ok {
                    logger.debug("metrics request answered \(answer.status.rawValue) \(answer.status.reason)", metadata: [LogKey.client: .string(peer.description)])
                }
            }
            // A peer that half-closes without a complete request gets nothing more.
            connection.onReadEOF = { [unowned connection] in connection.close(flush: false) }
            connection.onClose = { [self] _ in
                deadline.cancel()
                lock.withLock { open -= 1 }
            }
            connection.start()
        }
    }

    private static let busy = ScrapeAnswer(status: .serviceUnavailable).bytes(metrics: [])
}
