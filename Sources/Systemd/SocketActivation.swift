import CSystemd
import Glibc

/// Sockets handed over by systemd (`sd_listen_fds(3)`): a `.socket` unit opens and binds the listening
/// sockets and passes them as fds 3, 4, … with `LISTEN_FDS`, `LISTEN_PID` and `LISTEN_FDNAMES`.
///
/// ```
/// # popgate.socket
/// [Socket]
/// ListenStream=995
/// FileDescriptorName=pop3s
/// ```
public enum SocketActivation {
    /// One inherited fd with its `FileDescriptorName=` (libsystemd says `"unknown"` when none was set).
    public struct PassedSocket: Sendable, Equatable {
        public var name: String
        public var fd: Int32

        public init(name: String, fd: Int32) {
            self.name = name
            self.fd = fd
        }
    }

    /// The sockets systemd passed to this process, in fd order, or `nil` when the process was not
    /// socket-activated (`LISTEN_PID`/`LISTEN_FDS` unset, or `LISTEN_PID` names another process).
    /// systemd leaves the variables out rather than pass `LISTEN_FDS=0`; libsystemd rejects that value
    /// (and anything non-numeric) as `EINVAL`.
    ///
    /// Calls `sd_listen_fds_with_names(1, …)`: the `LISTEN_*` variables are removed from the environment
    /// so that child processes do not believe the fds are theirs, which also means a second call
    /// returns `nil`. libsystemd marks the fds close-on-exec.
    /// - Throws: `SystemdError` when libsystemd rejects the variables (e.g. a malformed `LISTEN_FDS`).
    public static func passedSockets() throws(SystemdError) -> [PassedSocket]? {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = nil
        let count = sd_listen_fds_with_names(1, &names)
        defer {
            if let names {
                if count > 0 {
                    for index in 0..<Int(count) { free(names[index]) }
                }
                free(names)
            }
        }
        if count < 0 {
            throw SystemdError(call: "sd_listen_fds_with_names", result: count)
        }
        if count == 0 {
            return nil
        }
        var sockets: [PassedSocket] = []
        sockets.reserveCapacity(Int(count))
        for index in 0..<Int(count) {
            let name = names?[index].map { String(cString: $0) } ?? "unknown"
            sockets.append(PassedSocket(name: name, fd: SD_LISTEN_FDS_START + Int32(index)))
        }
        return sockets
    }
}
