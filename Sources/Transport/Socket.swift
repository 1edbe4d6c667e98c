import Glibc

/// Thin wrappers over the socket system calls shared by `Listener` and `Connection`.
enum Socket {
    static let streamType = Int32(SOCK_STREAM.rawValue)
    /// Every socket we create is non-blocking and close-on-exec from birth (no window for a fork/exec to leak it).
    static let createFlags = Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)

    static func setNonBlocking(_ fd: Int32) throws(TransportError) {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { throw .system("fcntl") }
        if flags & O_NONBLOCK == 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 { throw .system("fcntl") }
    }

    static func setCloseOnExec(_ fd: Int32) throws(TransportError) {
        let flags = fcntl(fd, F_GETFD)
        guard flags >= 0 else { throw .system("fcntl") }
        if flags & FD_CLOEXEC == 0, fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0 { throw .system("fcntl") }
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(TransportError) {
        var value = value
        if setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) < 0 { throw .system("setsockopt") }
    }

    static func intOption(_ fd: Int32, _ level: Int32, _ name: Int32) throws(TransportError) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, level, name, &value, &length) < 0 { throw .system("getsockopt") }
        return value
    }

    /// Sets TCP_NODELAY, ignoring failure: the socket may not be TCP (an adopted AF_UNIX listener).
    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    static func localAddress(_ fd: Int32) -> SocketAddressStorage? {
        var storage = SocketAddressStorage()
        let result = storage.withMutableSockaddr { getsockname(fd, $0, $1) }
        return result == 0 ? storage : nil
    }

    /// getaddrinfo for TCP. Blocking: call it off the event loops. `passive` is for bind (an empty host or "*"
    /// then means every local address). Brackets around an IPv6 literal are tolerated.
    static func resolve(host: String, port: UInt16, passive: Bool) -> Result<[SocketAddressStorage], TransportError> {
        var name = host
        if name.hasPrefix("["), name.hasSuffix("]"), name.count >= 2 { name = String(name.dropFirst().dropLast()) }
        let anyHost = passive && (name.isEmpty || name == "*")
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = streamType
        hints.ai_protocol = Int32(IPPROTO_TCP)
        hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)
        var list: UnsafeMutablePointer<addrinfo>?
        let status: Int32 = anyHost
            ? getaddrinfo(nil, String(port), &hints, &list)
            : getaddrinfo(name, String(port), &hints, &list)
        guard status == 0 else {
            let message = status == EAI_SYSTEM ? String(cString: strerror(errno)) : String(cString: gai_strerror(status))
            return .failure(.resolve(host: host, message: message))
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddressStorage] = []
        var cursor = list
        while let info = cursor {
            if let address = info.pointee.ai_addr,
               info.pointee.ai_family == AF_INET || info.pointee.ai_family == AF_INET6 {
                addresses.append(SocketAddressStorage(copying: address, length: info.pointee.ai_addrlen))
            }
            cursor = info.pointee.ai_next
        }
        guard !addresses.isEmpty else { return .failure(.resolve(host: host, message: "no IPv4 or IPv6 address")) }
        return .success(addresses)
    }
}
