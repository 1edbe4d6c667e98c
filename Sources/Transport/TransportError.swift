import Glibc

/// Why a socket operation failed. `description` is meant for logs: "bind: Address already in use".
public enum TransportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A system call failed; `call` names it ("socket", "bind", "connect", "read", "send", …).
    case system(call: String, errno: Int32, message: String)
    /// getaddrinfo could not resolve `host`.
    case resolve(host: String, message: String)
    /// `Connection.connect` did not complete within its timeout.
    case connectTimeout
    /// The connection or listener is closed.
    case closed
    /// A write would have queued more than `Connection.maxQueuedBytes` (the cap, in bytes).
    case outputLimitExceeded(Int)

    public var description: String {
        switch self {
        case let .system(call, _, message):
            return "\(call): \(message)"
        case let .resolve(host, message):
            return "cannot resolve \(host): \(message)"
        case .connectTimeout:
            return "connect timed out"
        case .closed:
            return "connection closed"
        case .outputLimitExceeded(let cap):
            return "output queue above its cap of \(cap) bytes"
        }
    }

    /// The error for a failed system call, reading `errno` unless given.
    static func system(_ call: String, errno code: Int32 = errno) -> TransportError {
        .system(call: call, errno: code, message: String(cString: strerror(code)))
    }
}
