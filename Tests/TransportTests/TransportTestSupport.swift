import Dispatch
import Foundation
import Glibc
import Transport
import XCTest

/// A value shared between the test thread and event-loop queues.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
    var current: Value { withLock { $0 } }
}

/// Entries of /proc/self/fd (the directory stream's own fd included, the same on every call).
func openFDCount() -> Int {
    guard let dir = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(dir) }
    var count = 0
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { count += 1 }
    }
    return count
}

/// The open-fd count once it has stopped changing: descriptors of earlier tests may still be closing
/// (a Dispatch cancel handler runs asynchronously), which must not count against the next test.
func settledFDCount(timeout: TimeInterval = 3) -> Int {
    let deadline = Date().addingTimeInterval(timeout)
    var last = openFDCount()
    var stableSince = Date()
    while Date() < deadline {
        usleep(20_000)
        let now = openFDCount()
        if now != last {
            last = now
            stableSince = Date()
        } else if Date().timeIntervalSince(stableSince) >= 0.25 {
            break
        }
    }
    return last
}

/// Polls `condition` on the test thread until it holds or `timeout` passes.
func eventually(timeout: TimeInterval = 5, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

/// Deterministic, non-repeating test bytes, so reordering or loss cannot go unnoticed.
func patternBytes(count: Int, seed: UInt32 = 12345) -> [UInt8] {
    var state = seed
    var bytes = [UInt8](repeating: 0, count: count)
    for index in 0..<count {
        state = state &* 1_103_515_245 &+ 12345
        bytes[index] = UInt8(truncatingIfNeeded: state >> 16)
    }
    return bytes
}

/// A listener on 127.0.0.1:0 whose accepted connections are configured by `configure` (on their loop) and started.
final class TestServer: @unchecked Sendable {
    let group: EventLoopGroup
    let listener: Listener
    let accepted = Locked<[Connection]>([])
    private let acceptQueue = DispatchQueue(label: "test.accept")

    init(group: EventLoopGroup, backlog: Int32 = 128,
         configure: @escaping @Sendable (Connection) -> Void) throws {
        self.group = group
        listener = try Listener.bind(host: "127.0.0.1", port: 0, backlog: backlog)
        let accepted = self.accepted
        listener.start(acceptQueue: acceptQueue) { fd, peer in
            let loop = group.next()
            loop.execute {
                let connection = Connection(fd: fd, loop: loop, peerAddress: peer)
                configure(connection)
                accepted.withLock { $0.append(connection) }
                connection.start()
            }
        }
    }

    var port: UInt16 { listener.localAddress.port }

    func stop() { listener.stop() }
}

extension XCTestCase {
    /// Connects to 127.0.0.1:`port` and returns the (unstarted) connection, failing the test on error.
    func connectClient(port: UInt16, loop: EventLoop, file: StaticString = #filePath, line: UInt = #line) -> Connection? {
        let result = Locked<Result<Connection, TransportError>?>(nil)
        let done = expectation(description: "connected")
        Connection.connect(host: "127.0.0.1", port: port, loop: loop, timeout: .seconds(5)) { outcome in
            result.withLock { $0 = outcome }
            done.fulfill()
        }
        wait(for: [done], timeout: 10)
        switch result.current {
        case .success(let connection)?:
            return connection
        case .failure(let error)?:
            XCTFail("connect failed: \(error)", file: file, line: line)
            return nil
        case nil:
            XCTFail("connect did not complete", file: file, line: line)
            return nil
        }
    }
}

/// Blocking raw-socket helpers for the side of a test that must not use the code under test.
enum RawSocket {
    static func connectBlocking(port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        precondition(fd >= 0)
        var address = loopback(port: port)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        precondition(result == 0, "connect: \(errno)")
        return fd
    }

    /// Starts a connect without waiting for it to complete.
    static func connectNonBlocking(port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        precondition(fd >= 0)
        var address = loopback(port: port)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return fd
    }

    /// A socket bound to 127.0.0.1 but not listening: connecting to its port is refused, and the port stays taken.
    static func boundNotListening() -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = loopback(port: 0)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return (fd, UInt16(bigEndian: bound.sin_port))
    }

    static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            precondition(n > 0)
            offset += n
        }
    }

    /// Reads until EOF (blocking).
    static func readToEOF(_ fd: Int32) -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return result }
            result += buffer[0..<n]
        }
    }

    static func intOption(_ fd: Int32, _ level: Int32, _ name: Int32) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(fd, level, name, &value, &length)
        return value
    }
}
