import TLS
import Transport

/// A connection with optional TLS on top: the one place where the transport and the TLS engine meet.
///
/// Confined to its connection's event loop queue, like the connection itself.
final class Channel: @unchecked Sendable {
    let connection: Connection
    private(set) var tls: TLSConnection?
    private var handshaking = false
    private var closed = false

    /// Plaintext received (after decryption when TLS is on).
    var onData: (([UInt8]) -> Void)?
    /// The TLS handshake asked for with `startTLS` finished or failed.
    var onHandshake: ((TLSError?) -> Void)?
    /// The peer closed (nil) or the connection failed; called once.
    var onClosed: ((String?) -> Void)?
    /// The peer shut down its sending side but may still read (TCP half-close). When nil, that is
    /// a close like any other.
    var onInputEnded: (() -> Void)? {
        didSet {
            connection.onReadEOF = onInputEnded == nil ? nil : { [weak self] in self?.readEOF() }
        }
    }

    init(connection: Connection) {
        self.connection = connection
    }

    func start() {
        connection.onRead = { [weak self] bytes in self?.received(bytes) }
        connection.onClose = { [weak self] error in self?.closedByPeer(error.map { "\($0)" }) }
        connection.start()
    }

    var protocolVersion: String? { tls?.protocolVersion }

    /// Bytes read off the connection before this channel took it over (those after a PROXY protocol header):
    /// processed as if just read, so a pipelined ClientHello or command is not lost.
    func receiveEarlyInput(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        received(bytes[...])
    }

    /// Starts a TLS handshake; ciphertext from here on goes through the engine.
    func startTLS(context: TLSContext, serverName: String?) {
        do {
            tls = try TLSConnection(context: context, serverName: serverName)
        } catch {
            onHandshake?(error)
            return
        }
        handshaking = true
        drive()
    }

    private func received(_ bytes: ArraySlice<UInt8>) {
        guard !closed else { return }
        guard let tls else {
            let loop = connection.loop
            var plaintext = loop.takeScratch()
            plaintext.append(contentsOf: bytes)
            onData?(plaintext)
            loop.returnScratch(plaintext)
            return
        }
        tls.feed(ciphertext: bytes)
        drive()
    }

    private func drive() {
        guard let tls, !closed else { return }
        if handshaking {
            let result = tls.handshake()
            flushCiphertext()
            switch result {
            case .incomplete:
                return
            case .failed(let error):
                handshaking = false
                onHandshake?(error)
                return
            case .complete:
                handshaking = false
                onHandshake?(nil)
                guard !closed else { return }
            }
        }
        let loop = connection.loop
        var plaintext = loop.takeScratch()
        let result = tls.read(into: &plaintext)
        flushCiphertext()
        if !plaintext.isEmpty { onData?(plaintext) }
        loop.returnScratch(plaintext)
        if case .failed(let error) = result, !closed {
            closedByPeer(error == .closed ? nil : "\(error)")
        }
    }

    private func readEOF() {
        guard !closed else { return }
        if let tls, !tls.isHandshakeComplete {
            // No TLS session yet, so nothing can still be answered.
            closedByPeer(nil)
            return
        }
        onInputEnded?()
    }

    private func flushCiphertext() {
        guard let tls, tls.hasPendingCiphertext else { return }
        connection.write(tls.takeCiphertext())
    }

    func write(_ bytes: [UInt8]) {
        guard !closed else { return }
        if let tls {
            if case .failed(let error) = tls.write(plaintext: bytes) {
                flushCiphertext()
                closedByPeer("\(error)")
                return
            }
            flushCiphertext()
        } else {
            connection.write(bytes)
        }
    }

    /// Between commands: gives back buffer memory a burst grew (see `Connection.releaseIdleBuffer`,
    /// `TLSConnection.releaseIdleBuffers`).
    func releaseIdleMemory() {
        guard !closed else { return }
        connection.releaseIdleBuffer()
        tls?.releaseIdleBuffers()
    }

    /// Flushes what is queued (with a TLS close_notify) and closes.
    func close() {
        guard !closed else { return }
        closed = true
        if let tls, tls.isHandshakeComplete {
            tls.shutdown()
            flushCiphertext()
        }
        connection.close(flush: true)
        dropCallbacks()
    }

    private func closedByPeer(_ reason: String?) {
        guard !closed else { return }
        closed = true
        let callback = onClosed
        connection.close(flush: false)
        dropCallbacks()
        callback?(reason)
    }

    private func dropCallbacks() {
        onData = nil
        onHandshake = nil
        onClosed = nil
        onInputEnded = nil
    }
}
