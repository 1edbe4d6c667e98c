import Glibc

/// A libsystemd call that failed. libsystemd reports failures as a negative errno; `errno` holds it
/// as the positive value, so it compares directly with `EBADF`, `EINVAL`, ….
public struct SystemdError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The libsystemd function that failed, e.g. `sd_listen_fds_with_names`.
    public var call: String
    /// The positive errno value.
    public var errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    /// Builds the error from libsystemd's negative return value.
    init(call: String, result: Int32) {
        self.init(call: call, errno: result == Int32.min ? Int32.max : -result)
    }

    public var description: String {
        let text = strerror(self.errno).map { String(cString: $0) } ?? "errno \(self.errno)"
        return "\(self.call) failed: \(text) (errno \(self.errno))"
    }
}
