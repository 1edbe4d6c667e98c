import Glibc

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

    /// Splits "host:port" as written in configuration: "0.0.0.0:110", "[::]:995", "127.0.0.1:0",
    /// "localhost:143". IPv6 literals must be bracketed ("::1:995" is ambiguous and rejected). The host part may be
    /// a name; this does not resolve it. Returns nil for an empty host, a missing, empty, non-decimal or
    /// out-of-range port, or whitespace and control characters in the host.
    public static func parse(_ text: String) -> (host: String, port: UInt16)? {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.first == ":" else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            // An unbracketed host with a colon is an IPv6 literal without its brackets.
            if host.contains(":") { return nil }
        }
        guard !host.isEmpty,
              !host.utf8.contains(where: { $0 <= 32 || $0 == 127 || $0 == UInt8(ascii: "[") || $0 == UInt8(ascii: "]") }),
              let port = parsePort(portText)
        else { return nil }
        return (String(host), port)
    }

    private static func parsePort(_ text: Substring) -> UInt16? {
        guard !text.isEmpty, text.utf8.count <= 5 else { return nil }
        var value: UInt32 = 0
        for byte in text.utf8 {
            guard byte >= 48, byte <= 57 else { return nil }
            value = value * 10 + UInt32(byte - 48)
        }
        return value <= UInt32(UInt16.max) ? UInt16(value) : nil
    }
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

    /// The numeric host and port for AF_INET / AF_INET6; nil for other families (e.g. AF_UNIX).
    var socketAddress: SocketAddress? {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch family {
        case AF_INET:
            return withUnsafeBytes(of: storage) { raw -> SocketAddress? in
                var sin = raw.load(as: sockaddr_in.self)
                guard inet_ntop(AF_INET, &sin.sin_addr, &text, socklen_t(text.count)) != nil else { return nil }
                return SocketAddress(host: String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self),
                                     port: UInt16(bigEndian: sin.sin_port))
            }
        case AF_INET6:
            return withUnsafeBytes(of: storage) { raw -> SocketAddress? in
                var sin6 = raw.load(as: sockaddr_in6.self)
                guard inet_ntop(AF_INET6, &sin6.sin6_addr, &text, socklen_t(text.count)) != nil else { return nil }
                return SocketAddress(host: String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self),
                                     port: UInt16(bigEndian: sin6.sin6_port))
            }
        default:
            return nil
        }
    }
}
