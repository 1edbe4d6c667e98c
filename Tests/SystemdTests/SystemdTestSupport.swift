import Glibc
import XCTest

/// A bound AF_UNIX datagram socket standing in for systemd's end of NOTIFY_SOCKET or for journald's
/// /run/systemd/journal/socket. Receives time out after five seconds so a missing datagram fails the
/// test instead of hanging it.
final class DatagramReceiver {
    let path: String
    private(set) var fd: Int32

    init(path: String) throws {
        self.path = path
        self.fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard self.fd >= 0 else { throw TestSupportError.system("socket", errno) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(self.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let result = try withUnixAddress(path) { bind(self.fd, $0, $1) }
        guard result == 0 else {
            let code = errno
            Glibc.close(self.fd)
            throw TestSupportError.system("bind \(path)", code)
        }
    }

    /// One datagram's bytes, or `nil` after the timeout.
    func receive() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        let count = buffer.withUnsafeMutableBytes { recv(self.fd, $0.baseAddress, $0.count, 0) }
        guard count >= 0 else { return nil }
        return Array(buffer[0..<count])
    }

    func receiveString() -> String? {
        receive().map { String(decoding: $0, as: UTF8.self) }
    }

    /// Closes the socket and removes its file.
    func close() {
        guard self.fd >= 0 else { return }
        Glibc.close(self.fd)
        self.fd = -1
        unlink(self.path)
    }

    deinit { self.close() }
}

enum TestSupportError: Error, CustomStringConvertible {
    case system(String, Int32)
    case pathTooLong(String)

    var description: String {
        switch self {
        case .system(let call, let code): "\(call): \(String(cString: strerror(code)))"
        case .pathTooLong(let path): "unix socket path too long: \(path)"
        }
    }
}

/// Calls `body` with a `sockaddr_un` for `path` and its length.
func withUnixAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> T) throws -> T {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw TestSupportError.pathTooLong(path) }
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
    return try withUnsafePointer(to: &address) {
        try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            try body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
}

/// A fresh directory under /tmp (short, so socket paths fit in sun_path).
func makeTemporaryDirectory() throws -> String {
    var template = Array("/tmp/popgate-systemd-XXXXXX".utf8CString)
    guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        throw TestSupportError.system("mkdtemp", errno)
    }
    return String(cString: made)
}

func environment(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}

/// A TCP socket on 127.0.0.1 with an ephemeral port, listening when `listening` is set.
func makeTCPSocket(listening: Bool) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestSupportError.system("socket", errno) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw TestSupportError.system("bind", errno) }
    if listening {
        guard listen(fd, 8) == 0 else { throw TestSupportError.system("listen", errno) }
    }
    return fd
}
