import Dispatch
import Foundation
import Glibc
import Transport
import XCTest

final class ConnectionConnectTests: XCTestCase {
    private let group = EventLoopGroup(loopCount: 1)

    private func connect(host: String, port: UInt16, timeout: Duration) -> (Result<Connection, TransportError>, TimeInterval, Int) {
        let loop = group.next()
        let results = Locked<[Result<Connection, TransportError>]>([])
        let done = expectation(description: "completed")
        let start = Date()
        Connection.connect(host: host, port: port, loop: loop, timeout: timeout) { result in
            loop.preconditionInLoop()
            results.withLock { $0.append(result) }
            done.fulfill()
        }
        wait(for: [done], timeout: 30)
        let elapsed = Date().timeIntervalSince(start)
        usleep(Duration.milliseconds(50) < timeout ? 300_000 : 50_000)  // a second completion would show up here
        let all = results.current
        return (all[0], elapsed, all.count)
    }

    func testConnectsByName() throws {
        let listener = try Listener.bind(host: "127.0.0.1", port: 0)
        defer { listener.stop() }
        let (result, _, count) = connect(host: "localhost", port: listener.localAddress.port, timeout: .seconds(5))
        XCTAssertEqual(count, 1)
        let connection = try result.get()
        XCTAssertEqual(connection.peerAddress?.port, listener.localAddress.port)
        connection.loop.queue.sync { connection.close(flush: false) }
    }

    func testConnectToAClosedPortFails() {
        let (fd, port) = RawSocket.boundNotListening()
        defer { close(fd) }
        let (result, _, count) = connect(host: "127.0.0.1", port: port, timeout: .seconds(5))
        XCTAssertEqual(count, 1)
        guard case .failure(let error) = result else { return XCTFail("connected to a closed port") }
        XCTAssertEqual(error, .system(call: "connect", errno: ECONNREFUSED, message: "Connection refused"))
    }

    func testUnresolvableHostFails() {
        let (result, _, count) = connect(host: "no-such-host.invalid", port: 110, timeout: .seconds(10))
        XCTAssertEqual(count, 1)
        guard case .failure(.resolve(host: "no-such-host.invalid", message: _)) = result else {
            return XCTFail("unexpected \(result)")
        }
    }

    /// A listener with a full backlog drops further SYNs, so the connect hangs until the timeout.
    func testConnectTimesOut() throws {
        let listener = try Listener.bind(host: "127.0.0.1", port: 0, backlog: 0)
        defer { listener.stop() }
        let fillers = (0..<4).map { _ in RawSocket.connectNonBlocking(port: listener.localAddress.port) }
        defer { fillers.forEach { close($0) } }
        usleep(50_000)
        let baseline = settledFDCount()
        let (result, elapsed, count) = connect(host: "127.0.0.1", port: listener.localAddress.port, timeout: .milliseconds(300))
        XCTAssertEqual(count, 1)
        guard case .failure(let error) = result else { return XCTFail("connected despite the full backlog") }
        XCTAssertEqual(error, .connectTimeout)
        XCTAssertGreaterThanOrEqual(elapsed, 0.28)
        XCTAssertLessThan(elapsed, 3)
        XCTAssertTrue(eventually { openFDCount() <= baseline }, "the abandoned socket is closed")
    }

    func testConnectFallsBackToTheNextAddress() throws {
        // "localhost" may resolve to ::1 and 127.0.0.1; listening on only one of them exercises the fallback
        // whenever both resolve, and is a plain connect otherwise.
        let listener = try Listener.bind(host: "127.0.0.1", port: 0)
        defer { listener.stop() }
        let (result, _, _) = connect(host: "localhost", port: listener.localAddress.port, timeout: .seconds(5))
        let connection = try result.get()
        XCTAssertEqual(connection.peerAddress, SocketAddress(host: "127.0.0.1", port: listener.localAddress.port))
        connection.loop.queue.sync { connection.close(flush: false) }
    }
}
