import Glibc
import Wire

/// An IPv4 or IPv6 endpoint. `description` brackets IPv6 hosts: "127.0.0.1:995", "[::1]:995".
public struct SocketAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Splits "host:port" as written in configuration (`Wire.HostPort`): "0.0.0.0:110", "[::]:995",
    /// "127.0.0.1:0", "localhost:143". IPv6 literals must be bracketed ("::1:995" is ambiguous and rejected) and
    /// zone identifiers are refused. The host part may be a name; this does not resolve it. Nil for anything
    /// `HostPort` refuses.
    public static func parse(_ text: String) -> (host: String, port: UInt16)? {
        guard let parsed = try? HostPort(parsing: text) else { return nil }
        return (parsed.host, parsed.port)
    }

    /// The host as an IP address (nil for a name).
    public var ipAddress: IPAddress? { IPAddress(host) }
}

/// A raw `sockaddr_storage` with its length, as getaddrinfo, accept and getsockname hand it out.
///
/// `@unchecked Sendable`: plain old data, copied by value.
struct SocketAddressStorage: @unchecked Sendable {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)

    init() {}

    init(copying address: UnsafePointer<sockaddr>, length: socklen_t) {
        let count = min(Int(length), MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutableBytes(of: &storage) { raw in
            raw.copyMemory(from: UnsafeRawBufferPointer(start: address, count: count))
        }
        self.length = socklen_t(count)
    }

    var family: Int32 { Int32(storage.ss_family) }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafeBytes(of: storage) { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }

    /// Calls `body` with a pointer and an in/out length suitable for accept/getsockname/getpeername.
    mutating func withMutableSockaddr<R>(_ body: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> R) -> R {
        length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        var size = length
        let result = withUnsafeMutableBytes(of: &storage) { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &size)
        }
        length = size
        return result
    }

    /// The numeric host and port for AF_INET / AF_INET6, the host in `Wire.IPAddress`'s canonical text (the one
    /// printer of addresses, so a peer reads the same in logs, client keys and IMAP ID); nil for other families.
    var socketAddress: SocketAddress? {
        withUnsafeBytes(of: storage) { raw -> SocketAddress? in
            switch family {
            case AF_INET:
                let sin = raw.load(as: sockaddr_in.self)
                let parsed = withUnsafeBytes(of: sin.sin_addr) { IPAddress(bytes: $0) }
                guard let address = parsed else { return nil }
                return SocketAddress(host: address.description, port: UInt16(bigEndian: sin.sin_port))
            case AF_INET6:
                let sin6 = raw.load(as: sockaddr_in6.self)
                let parsed = withUnsafeBytes(of: sin6.sin6_addr) { IPAddress(bytes: $0) }
                guard let address = parsed else { return nil }
                return SocketAddress(host: address.description, port: UInt16(bigEndian: sin6.sin6_port))
            default:
                return nil
            }
        }
    }
}
