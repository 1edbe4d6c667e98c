import Dispatch
import Foundation
import Glibc
import Transport
import XCTest

final class ListenerTests: XCTestCase {
    func testBindToPortZeroReportsTheRealPort() throws {
        let listener = try Listener.bind(host: "127.0.0.1", port: 0)
        defer { listener.stop() }
        XCTAssertEqual(listener.localAddress.host, "127.0.0.1")
        XCTAssertNotEqual(listener.localAddress.port, 0)
    }

    func testBindResolvesAName() throws {
        let listener = try Listener.bind(host: "localhost", port: 0)
        defer { listener.stop() }
        XCTAssertTrue(["127.0.0.1", "::1"].contains(listener.localAddress.host), listener.localAddress.description)
    }

    func testBindIPv6Loopback() throws {
        let listener: Listener
        do {
            listener = try Listener.bind(host: "::1", port: 0)
        } catch {
            throw XCTSkip("no IPv6 loopback here: \(error)")
        }
        defer { listener.stop() }
        XCTAssertEqual(listener.localAddress.description, "[::1]:\(listener.localAddress.port)")
    }

    func testBindToAPortInUseFails() throws {
        let first = try Listener.bind(host: "127.0.0.1", port: 0)
        defer { first.stop() }
        XCTAssertThrowsError(try Listener.bind(host: "127.0.0.1", port: first.localAddress.port)) { error in
            XCTAssertEqual(error as? TransportError,
                           .system(call: "bind", errno: EADDRINUSE, message: "Address already in use"))
            XCTAssertEqual("\(error)", "bind: Address already in use")
        }
    }

    func testBindToAnUnresolvableHostFails() {
        XCTAssertThrowsError(try Listener.bind(host: "no-such-host.invalid", port: 0)) { error in
            guard case .resolve(host: "no-such-host.invalid", message: _)? = error as? TransportError else {
                return XCTFail("unexpected \(error)")
            }
        }
    }

    func testAcceptedSocketsAreNonBlockingCloseOnExecAndNoDelay() throws {
        let listener = try Listener.bind(host: "127.0.0.1", port: 0)
        defer { listener.stop() }
        let accepted = Locked<[(Int32, SocketAddress)]>([])
        let got = expectation(description: "accepted")
        listener.start(acceptQueue: DispatchQueue(label: "test.accept")) { fd, peer in
            accepted.withLock { $0.append((fd, peer)) }
            got.fulfill()
        }
        let client = RawSocket.connectBlocking(port: listener.localAddress.port)
        defer { close(client) }
        wait(for: [got], timeout: 5)

        let (fd, peer) = try XCTUnwrap(accepted.current.first)
        defer { close(fd) }
        XCTAssertNotEqual(fcntl(fd, F_GETFL) & O_NONBLOCK, 0, "O_NONBLOCK")
        XCTAssertNotEqual(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0, "FD_CLOEXEC")
        XCTAssertNotEqual(RawSocket.intOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY), 0, "TCP_NODELAY")

        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(client, $0, &length) }
        }
        XCTAssertEqual(peer, SocketAddress(host: "127.0.0.1", port: UInt16(bigEndian: local.sin_port)))
    }

    func testListeningSocketIsNonBlockingAndCloseOnExec() throws {
        // Observed through adoption of a socket we made ourselves, blocking and inheritable.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = RawSocket.loopback(port: 0)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        XCTAssertEqual(listen(fd, 16), 0)
        let listener = try Listener(adoptingListeningSocket: fd)
        defer { listener.stop() }
        XCTAssertNotEqual(fcntl(fd, F_GETFL) & O_NONBLOCK, 0)
        XCTAssertNotEqual(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0)
        XCTAssertEqual(listener.localAddress.host, "127.0.0.1")

        let got = expectation(description: "accepted")
        listener.start(acceptQueue: DispatchQueue(label: "test.accept")) { fd, _ in
            close(fd)
            got.fulfill()
        }
        let client = RawSocket.connectBlocking(port: listener.localAddress.port)
        defer { close(client) }
        wait(for: [got], timeout: 5)
    }

    func testAdoptingASocketThatIsNotListeningFails() {
        let (fd, _) = RawSocket.boundNotListening()
        defer { close(fd) }
        XCTAssertThrowsError(try Listener(adoptingListeningSocket: fd)) { error in
            XCTAssertEqual((error as? TransportError).map { if case .system(call: "adopt", errno: EINVAL, _) = $0 { true } else { false } }, true,
                           "\(error)")
        }
        XCTAssertThrowsError(try Listener(adoptingListeningSocket: 98_765))
    }

    func testAcceptsManyPendingConnectionsInOneGo() throws {
        let listener = try Listener.bind(host: "127.0.0.1", port: 0)
        defer { listener.stop() }
        // Connected before start: they all wait in the backlog and must all come out.
        let clients = (0..<20).map { _ in RawSocket.connectBlocking(port: listener.localAddress.port) }
        defer { clients.forEach { close($0) } }
        let got = expectation(description: "accepted")
        got.expectedFulfillmentCount = 20
        listener.start(acceptQueue: DispatchQueue(label: "test.accept")) { fd, _ in
            close(fd)
            got.fulfill()
        }
        wait(for: [got], timeout: 5)
    }

    func testStopClosesTheSocket() throws {
        let baseline = settledFDCount()
        let listener = try Listener.bind(host: "127.0.0.1", port: 0)
        let port = listener.localAddress.port
        listener.start(acceptQueue: DispatchQueue(label: "test.accept")) { fd, _ in close(fd) }
        XCTAssertEqual(openFDCount(), baseline + 1)
        listener.stop()
        listener.stop()
        XCTAssertTrue(eventually { openFDCount() <= baseline })
        // The port is free again.
        let again = try Listener.bind(host: "127.0.0.1", port: port)
        again.stop()

        let neverStarted = try Listener.bind(host: "127.0.0.1", port: 0)
        neverStarted.stop()
        XCTAssertLessThanOrEqual(openFDCount(), baseline)
    }

    /// EMFILE must neither kill the process nor spin: accepting pauses and resumes once descriptors are free.
    func testRunningOutOfDescriptorsPausesAccepting() throws {
        let listener = try Listener.bind(host: "127.0.0.1", port: 0)
        defer { listener.stop() }
        let clients = (0..<3).map { _ in RawSocket.connectBlocking(port: listener.localAddress.port) }
        defer { clients.forEach { close($0) } }

        // Let Dispatch create its lazily made timer descriptors now, not while none are left.
        let warm = expectation(description: "warm")
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(5)) { warm.fulfill() }
        wait(for: [warm], timeout: 5)

        var saved = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &saved), 0)
        var lowered = saved
        lowered.rlim_cur = min(saved.rlim_cur, 1024)
        XCTAssertEqual(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lowered), 0)
        var fillers: [Int32] = []
        while true {
            let fd = dup(0)
            if fd < 0 { break }
            fillers.append(fd)
        }
        let restore = {
            fillers.forEach { close($0) }
            fillers.removeAll()
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &saved)
        }
        let acceptedCount = Locked(0)
        listener.start(acceptQueue: DispatchQueue(label: "test.accept")) { fd, _ in
            close(fd)
            acceptedCount.withLock { $0 += 1 }
        }

        var before = rusage()
        getrusage(RUSAGE_SELF.rawValue, &before)
        usleep(400_000)
        var after = rusage()
        getrusage(RUSAGE_SELF.rawValue, &after)
        let accepted = acceptedCount.current
        restore()

        func micros(_ t: timeval) -> Int { t.tv_sec * 1_000_000 + Int(t.tv_usec) }
        let cpu = micros(after.ru_utime) + micros(after.ru_stime) - micros(before.ru_utime) - micros(before.ru_stime)
        XCTAssertEqual(accepted, 0, "nothing can be accepted without a free descriptor")
        XCTAssertLessThan(cpu, 150_000, "accept loop spun for \(cpu) µs of CPU in 400 ms")
        XCTAssertTrue(eventually { acceptedCount.current == 3 }, "accepting resumes once descriptors are free")
    }
}
