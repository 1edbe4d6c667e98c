/// Why a TLS operation failed.
///
/// Each case tells the driver what to do next: `.configuration` is an operator's
/// mistake found at start-up or reload (refuse to start / keep the old config);
/// `.handshake` and `.protocolError` end that one connection (send whatever
/// ciphertext is still pending — usually an alert — then close); `.closed`
/// means the peer sent close_notify, a clean end of stream.
public enum TLSError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Certificate, key or trust store could not be loaded or do not fit together.
    case configuration(String)
    /// The handshake failed, e.g. "certificate verify failed: hostname mismatch".
    case handshake(String)
    /// A record-layer or post-handshake failure, or an API misuse such as writing before the handshake.
    case protocolError(String)
    /// The peer sent close_notify (RFC 8446 §6.1); no more application data will arrive.
    case closed

    public var description: String {
        switch self {
        case .configuration(let message): return "TLS configuration error: \(message)"
        case .handshake(let message): return "TLS handshake failed: \(message)"
        case .protocolError(let message): return "TLS protocol error: \(message)"
        case .closed: return "TLS connection closed by the peer (close_notify)"
        }
    }
}

/// Outcome of one call into the TLS engine.
///
/// - `complete`: done for now (handshake finished, data read or written).
/// - `incomplete`: needs more ciphertext from the peer; feed it and call again.
/// - `failed`: see `TLSError`. After a failure, ciphertext may still be pending
///   (an alert for the peer): send `takeCiphertext()` before closing.
public enum TLSResult: Sendable, Equatable {
    case complete
    case incomplete
    case failed(TLSError)
}
