import ProxyProtocol
import Transport

/// Who a session's client is and where it connected: the TCP endpoints, or what a PROXY protocol header said.
struct ClientEndpoints: Sendable {
    /// The client: address and port for limits, penalties, logs (`client=`) and the backend's ID.
    var client: SocketAddress?
    /// Where the client connected (`x-connected-ip`/`-port` in the ID).
    var local: SocketAddress?
    /// The proxy that relayed the connection (the TCP peer) on a `proxy_protocol` listener; nil otherwise.
    var proxy: SocketAddress?
    /// What arrived after the PROXY header in the same reads (a ClientHello, a pipelined command).
    var pendingInput: [UInt8] = []

    /// The connection's own endpoints.
    init(connection: Connection) {
        client = connection.peerAddress
        local = connection.localAddress
    }

    /// The endpoints a PROXY header names, or the connection's own for LOCAL/UNKNOWN and families PopGate does
    /// not implement (the header's `endpoints` is nil then).
    init(connection: Connection, header: ProxyHeader, rest: [UInt8]) {
        self.init(connection: connection)
        proxy = connection.peerAddress
        pendingInput = rest
        if let forwarded = header.endpoints {
            client = SocketAddress(host: forwarded.source.description, port: forwarded.sourcePort)
            local = SocketAddress(host: forwarded.destination.description, port: forwarded.destinationPort)
        }
    }
}

/// Reads the PROXY protocol header off a new connection of a `proxy_protocol` listener before anything else
/// (TLS handshake, greeting), within a deadline and the parser's size bound (docs/front-door.md). Reports
/// once, on the connection's loop; the connection is left open and reading, with no callbacks of its own,
/// so the caller must install its own (or close it) in the report.
///
/// Confined to the connection's event loop. Kept alive by the connection's callbacks and the timer while waiting.
final class ProxyHeaderReader: @unchecked Sendable {
    enum Outcome {
        case header(ProxyHeader, rest: [UInt8])
        /// `silent`: the peer closed before sending anything (a port probe or plain TCP health check).
        case failed(reason: String, silent: Bool)
    }

    private let connection: Connection
    private var parser = ProxyHeaderParser()
    private var timer: Transport.Timer?
    private var report: ((Outcome) -> Void)?
    private var receivedAny = false

    init(connection: Connection) {
        self.connection = connection
    }

    func start(deadline: Duration, report: @escaping (Outcome) -> Void) {
        self.report = report
        connection.onRead = { [self] bytes in received(bytes) }
        connection.onClose = { [self] error in
            let reason = error.map { "\($0)" } ?? "closed before a complete PROXY header"
            finish(.failed(reason: reason, silent: !receivedAny))
        }
        timer = connection.loop.schedule(after: deadline) { [weak self] in
            self?.finish(.failed(reason: "no complete PROXY header within \(Self.format(deadline))", silent: false))
        }
        connection.start()
    }

    private func received(_ bytes: ArraySlice<UInt8>) {
        receivedAny = true
        switch parser.parse(bytes) {
        case .needMore:
            return
        case .header(let header, let rest):
            finish(.header(header, rest: rest))
        case .failed(let error):
            finish(.failed(reason: "\(error)", silent: false))
        }
    }

    private func finish(_ outcome: Outcome) {
        guard let report else { return }
        self.report = nil
        timer?.cancel()
        timer = nil
        connection.onRead = nil
        connection.onClose = nil
        report(outcome)
    }

    private static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms"
    }
}
