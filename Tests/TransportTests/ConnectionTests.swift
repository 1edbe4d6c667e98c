import Dispatch
import Foundation
import Glibc
import Transport
import XCTest

/// A small kernel send buffer, so that megabytes written stay queued in the Connection (loopback buffers can
/// otherwise swallow several megabytes).
private func shrinkSendBuffer(_ fd: Int32) {
    var size: Int32 = 16 * 1024
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
}

final class ConnectionTests: XCTestCase {
    private var group: EventLoopGroup!

    override func setUp() {
        group = EventLoopGroup(loopCount: 2)
    }

    /// Server greets, client sends, server echoes: bytes arrive exactly, both ways.
    func testEchoBothWays() throws {
        let greeting = Array("+OK PopGate ready\r\n".utf8)
        let server = try TestServer(group: group) { connection in
            connection.onRead = { bytes in connection.write(bytes) }
            connection.write(greeting)
        }
        defer { server.stop() }
        let loop = group.loops[0]
        let client = try XCTUnwrap(connectClient(port: server.port, loop: loop))
        XCTAssertEqual(client.peerAddress, SocketAddress(host: "127.0.0.1", port: server.port))

        let request = Array("USER alice\r\n".utf8) + (0...255).map { UInt8($0) } + Array("\r\n.\r\n".utf8)
        let expected = greeting + request
        let received = Locked<[UInt8]>([])
        let done = expectation(description: "echoed")
        loop.queue.sync {
            client.onRead = { bytes in
                let total = received.withLock { $0 += bytes; return $0.count }
                if total == greeting.count { client.write(request) }
                if total == expected.count { done.fulfill() }
            }
            client.start()
        }
        wait(for: [done], timeout: 10)
        XCTAssertEqual(received.current, expected)
        loop.queue.sync { client.close(flush: false) }
    }

    /// 5 MB through an echo server with back-pressure on both sides. The client pauses reading at first, so the
    /// server's queue passes its high watermark and the server stops reading; then the client's queue fills too.
    func testEchoFiveMegabytesWithWatermarks() throws {
        let total = 5 * 1024 * 1024
        let payload = patternBytes(count: total)
        let serverWritable = Locked(0)
        let serverPeakPending = Locked(0)
        let server = try TestServer(group: group) { connection in
            connection.onRead = { bytes in
                connection.write(bytes)
                serverPeakPending.withLock { $0 = max($0, connection.pendingWriteCount) }
                if connection.isAboveHighWatermark { connection.pauseReading() }
            }
            connection.onWritable = {
                serverWritable.withLock { $0 += 1 }
                XCTAssertLessThan(connection.pendingWriteCount, connection.lowWatermark)
                connection.resumeReading()
            }
            connection.onClose = { error in XCTAssertNil(error) }
        }
        defer { server.stop() }

        let loop = group.loops[0]
        let client = try XCTUnwrap(connectClient(port: server.port, loop: loop))
        let received = Locked<[UInt8]>([])
        let clientWritable = Locked(0)
        let clientPeakPending = Locked(0)
        let done = expectation(description: "all echoed")
        final class Pump: @unchecked Sendable { var sent = 0 }  // loop-confined
        let pump = Pump()
        let chunk = 64 * 1024
        let produce = {
            while pump.sent < total && !client.isAboveHighWatermark {
                let end = min(pump.sent + chunk, total)
                client.write(payload[pump.sent..<end])
                pump.sent = end
                clientPeakPending.withLock { $0 = max($0, client.pendingWriteCount) }
            }
        }
        loop.queue.sync {
            XCTAssertEqual(client.highWatermark, 256 * 1024)
            XCTAssertEqual(client.lowWatermark, 64 * 1024)
            client.onRead = { bytes in
                if received.withLock({ $0 += bytes; return $0.count }) == total { done.fulfill() }
            }
            client.onWritable = {
                clientWritable.withLock { $0 += 1 }
                XCTAssertFalse(client.isAboveHighWatermark)
                produce()
            }
            client.start()
            client.pauseReading()
            client.pauseReading()  // idempotent
            produce()
            _ = loop.schedule(after: .milliseconds(300)) { client.resumeReading() }
        }
        wait(for: [done], timeout: 60)
        XCTAssertTrue(received.current == payload, "echo differs (\(received.current.count) of \(total) bytes)")
        XCTAssertGreaterThan(clientWritable.current, 0, "client onWritable")
        XCTAssertGreaterThan(serverWritable.current, 0, "server onWritable")
        XCTAssertGreaterThan(clientPeakPending.current, 256 * 1024)
        XCTAssertGreaterThan(serverPeakPending.current, 256 * 1024)
        loop.queue.sync {
            XCTAssertEqual(client.pendingWriteCount, 0)
            client.close(flush: true)
        }
    }

    func testPeerCloseGivesOnCloseNilAfterTheLastBytes() throws {
        let bye = Array("+OK bye\r\n".utf8)
        let server = try TestServer(group: group) { connection in
            connection.write(bye)
            connection.close(flush: true)
            XCTAssertTrue(connection.isClosed)
        }
        defer { server.stop() }
        let loop = group.loops[1]
        let client = try XCTUnwrap(connectClient(port: server.port, loop: loop))
        let received = Locked<[UInt8]>([])
        let closes = Locked<[TransportError?]>([])
        let closed = expectation(description: "closed")
        loop.queue.sync {
            client.onRead = { bytes in received.withLock { $0 += bytes } }
            client.onClose = { error in
                loop.preconditionInLoop()
                closes.withLock { $0.append(error) }
                closed.fulfill()
            }
            client.start()
        }
        wait(for: [closed], timeout: 10)
        XCTAssertEqual(received.current, bye)
        XCTAssertEqual(closes.current.count, 1)
        XCTAssertNil(closes.current.first ?? .closed)
        loop.queue.sync {
            XCTAssertTrue(client.isClosed)
            client.write([1, 2, 3])  // ignored
            XCTAssertEqual(client.pendingWriteCount, 0)
            client.close(flush: false)  // idempotent, no second onClose
        }
        usleep(50_000)
        XCTAssertEqual(closes.current.count, 1)
    }

    func testClientCloseIsSeenByTheServer() throws {
        let serverCloses = Locked<[TransportError?]>([])
        let serverClosed = expectation(description: "server saw close")
        let server = try TestServer(group: group) { connection in
            connection.onClose = { error in
                serverCloses.withLock { $0.append(error) }
                serverClosed.fulfill()
            }
        }
        defer { server.stop() }
        let loop = group.loops[0]
        let client = try XCTUnwrap(connectClient(port: server.port, loop: loop))
        let clientClosed = expectation(description: "client onClose")
        loop.queue.sync {
            client.onClose = { error in
                XCTAssertNil(error)
                clientClosed.fulfill()
            }
            client.start()
            client.close(flush: true)
            client.close(flush: true)
        }
        wait(for: [clientClosed, serverClosed], timeout: 10)
        XCTAssertEqual(serverCloses.current.count, 1)
        XCTAssertNil(serverCloses.current.first ?? .closed)
    }

    /// close(flush: true) with megabytes queued still delivers every byte, then EOF.
    func testFlushingCloseDeliversEverythingQueued() throws {
        let payload = patternBytes(count: 3 * 1024 * 1024, seed: 7)
        let listener = try Listener.bind(host: "127.0.0.1", port: 0)
        let loop = group.loops[1]
        let serverClosed = expectation(description: "server closed")
        let queuedAtClose = Locked(0)
        listener.start(acceptQueue: DispatchQueue(label: "test.accept")) { fd, peer in
            shrinkSendBuffer(fd)
            loop.execute {
                let connection = Connection(fd: fd, loop: loop, peerAddress: peer)
                connection.onClose = { error in
                    XCTAssertNil(error)
                    serverClosed.fulfill()
                }
                connection.start()
                connection.write(payload)
                queuedAtClose.withLock { $0 = connection.pendingWriteCount }
                connection.close(flush: true)
                connection.write([0xFF])  // after close: ignored
            }
        }
        defer { listener.stop() }
        let client = RawSocket.connectBlocking(port: listener.localAddress.port)
        defer { close(client) }
        usleep(100_000)  // let the server's queue back up
        let received = RawSocket.readToEOF(client)
        wait(for: [serverClosed], timeout: 10)
        XCTAssertGreaterThan(queuedAtClose.current, 0, "the test needs bytes still queued at close")
        XCTAssertTrue(received == payload, "got \(received.count) of \(payload.count) bytes")
    }

    /// A peer that sends a few bytes and resets at once: the reset right behind the data is seen, and the
    /// connection closes (before, the read stopped after the short read and the fd stayed open).
    func testDataFollowedByAResetIsNoticed() throws {
        let listener = try Listener.bind(host: "127.0.0.1", port: 0)
        let loop = group.loops[1]
        let rounds = 50
        let closed = expectation(description: "every connection closed")
        closed.expectedFulfillmentCount = rounds
        listener.start(acceptQueue: DispatchQueue(label: "test.accept")) { fd, peer in
            loop.execute {
                let connection = Connection(fd: fd, loop: loop, peerAddress: peer)
                connection.onReadEOF = { connection.close(flush: true) }
                connection.onRead = { _ in }
                connection.onClose = { _ in closed.fulfill() }
                connection.start()
                connection.write(Array("+OK hello\r\n".utf8))  // unread by the peer: its close is a reset
            }
        }
        defer { listener.stop() }
        for _ in 0..<rounds {
            let client = RawSocket.connectBlocking(port: listener.localAddress.port)
            usleep(2_000)
            RawSocket.writeAll(client, Array("USER partial".utf8))
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            _ = setsockopt(client, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            close(client)
        }
        wait(for: [closed], timeout: 10)
    }

    /// A peer that never reads cannot hold a flushing close open: after `flushTimeout` the connection
    /// is closed hard and the queue dropped.
    func testFlushingCloseToAPeerThatNeverReadsEndsAtTheFlushTimeout() throws {
        let payload = patternBytes(count: 4 * 1024 * 1024, seed: 3)
        let listener = try Listener.bind(host: "127.0.0.1", port: 0)
        let loop = group.loops[1]
        let serverClosed = expectation(description: "server closed")
        let closedAfter = Locked(Duration.zero)
        listener.start(acceptQueue: DispatchQueue(label: "test.accept")) { fd, peer in
            shrinkSendBuffer(fd)
            loop.execute {
                let connection = Connection(fd: fd, loop: loop, peerAddress: peer)
                connection.flushTimeout = .milliseconds(500)
                let started = ContinuousClock.now
                connection.onClose = { error in
                    XCTAssertNil(error)
                    closedAfter.withLock { $0 = ContinuousClock.now - started }
                    serverClosed.fulfill()
                }
                connection.start()
                connection.write(payload)
                connection.close(flush: true)
            }
        }
        defer { listener.stop() }
        let client = RawSocket.connectBlocking(port: listener.localAddress.port)
        defer { close(client) }
        wait(for: [serverClosed], timeout: 5)
        XCTAssertGreaterThanOrEqual(closedAfter.current, .milliseconds(450))
    }

    /// The hard cap: a write that would queue more than `maxQueuedBytes` closes the connection with
    /// `.outputLimitExceeded`, whatever the writer does with the watermarks.
    func testWritePastTheHardCapClosesTheConnection() throws {
        let listener = try Listener.bind(host: "127.0.0.1", port: 0)
        let loop = group.loops[1]
        let serverClosed = expectation(description: "server closed")
        listener.start(acceptQueue: DispatchQueue(label: "test.accept")) { fd, peer in
            shrinkSendBuffer(fd)
            loop.execute {
                let connection = Connection(fd: fd, loop: loop, peerAddress: peer)
                connection.maxQueuedBytes = 512 * 1024
                connection.onClose = { error in
                    XCTAssertEqual(error, .outputLimitExceeded(512 * 1024))
                    serverClosed.fulfill()
                }
                connection.start()
                for _ in 0..<64 { connection.write(patternBytes(count: 64 * 1024)) }
                XCTAssertLessThanOrEqual(connection.pendingWriteCount, 512 * 1024)
            }
        }
        defer { listener.stop() }
        let client = RawSocket.connectBlocking(port: listener.localAddress.port)
        defer { close(client) }
        wait(for: [serverClosed], timeout: 5)
    }

    /// A client that sends QUIT and half-closes still gets the whole answer; then onClose(nil).
    func testPeerHalfCloseStillReceivesQueuedBytes() throws {
        let reply = patternBytes(count: 2 * 1024 * 1024, seed: 99)
        let listener = try Listener.bind(host: "127.0.0.1", port: 0)
        let loop = group.loops[0]
        let closes = Locked<[TransportError?]>([])
        let closed = expectation(description: "closed")
        listener.start(acceptQueue: DispatchQueue(label: "test.accept")) { fd, peer in
            shrinkSendBuffer(fd)
            loop.execute {
                let connection = Connection(fd: fd, loop: loop, peerAddress: peer)
                connection.onRead = { bytes in
                    XCTAssertEqual(Array(bytes), Array("QUIT\r\n".utf8))
                    connection.write(reply)
                }
                connection.onClose = { error in
                    closes.withLock { $0.append(error) }
                    closed.fulfill()
                }
                connection.start()
            }
        }
        defer { listener.stop() }
        let client = RawSocket.connectBlocking(port: listener.localAddress.port)
        defer { close(client) }
        RawSocket.writeAll(client, Array("QUIT\r\n".utf8))
        XCTAssertEqual(shutdown(client, Int32(SHUT_WR)), 0)
        usleep(100_000)  // the server sees EOF while most of the reply is still queued
        let received = RawSocket.readToEOF(client)
        wait(for: [closed], timeout: 10)
        XCTAssertTrue(received == reply, "got \(received.count) of \(reply.count) bytes")
        XCTAssertEqual(closes.current.count, 1)
        XCTAssertNil(closes.current.first ?? .closed)
    }

    /// With `onReadEOF` set, a half-close is reported and the owner may still write after it, later.
    func testReadEOFKeepsTheConnectionWritableUntilTheOwnerCloses() throws {
        let listener = try Listener.bind(host: "127.0.0.1", port: 0)
        let loop = group.loops[0]
        let sawEOF = expectation(description: "read EOF")
        let closed = expectation(description: "closed")
        listener.start(acceptQueue: DispatchQueue(label: "test.accept")) { fd, peer in
            loop.execute {
                let connection = Connection(fd: fd, loop: loop, peerAddress: peer)
                connection.onReadEOF = {
                    XCTAssertFalse(connection.isClosed, "a half-close is not a close")
                    sawEOF.fulfill()
                    // Answer later, as a gateway does once its backend replied.
                    _ = loop.schedule(after: .milliseconds(200)) {
                        connection.write(Array("+OK late answer\r\n".utf8))
                        connection.close(flush: true)
                    }
                }
                connection.onClose = { error in
                    XCTAssertNil(error)
                    closed.fulfill()
                }
                connection.start()
            }
        }
        defer { listener.stop() }
        let client = RawSocket.connectBlocking(port: listener.localAddress.port)
        defer { close(client) }
        RawSocket.writeAll(client, Array("QUIT\r\n".utf8))
        XCTAssertEqual(shutdown(client, Int32(SHUT_WR)), 0)
        wait(for: [sawEOF], timeout: 5)
        let received = RawSocket.readToEOF(client)
        wait(for: [closed], timeout: 5)
        XCTAssertEqual(String(decoding: received, as: UTF8.self), "+OK late answer\r\n")
    }

    func testCloseWithoutFlushDropsTheQueueAndClosesOnce() throws {
        let listener = try Listener.bind(host: "127.0.0.1", port: 0)
        let loop = group.loops[0]
        let closes = Locked(0)
        let closed = expectation(description: "closed")
        listener.start(acceptQueue: DispatchQueue(label: "test.accept")) { fd, peer in
            shrinkSendBuffer(fd)
            loop.execute {
                let connection = Connection(fd: fd, loop: loop, peerAddress: peer)
                connection.onClose = { error in
                    XCTAssertNil(error)
                    XCTAssertTrue(connection.isClosed)
                    closes.withLock { $0 += 1 }
                    closed.fulfill()
                }
                connection.start()
                connection.write(patternBytes(count: 8 * 1024 * 1024))
                XCTAssertGreaterThan(connection.pendingWriteCount, 0)
                connection.close(flush: true)
                connection.close(flush: false)  // gives up on the flush
                XCTAssertEqual(connection.pendingWriteCount, 0)
                connection.close(flush: false)
                connection.close(flush: true)
            }
        }
        defer { listener.stop() }
        let client = RawSocket.connectBlocking(port: listener.localAddress.port)
        defer { close(client) }
        wait(for: [closed], timeout: 10)
        XCTAssertLessThan(RawSocket.readToEOF(client).count, 8 * 1024 * 1024)
        usleep(50_000)
        XCTAssertEqual(closes.current, 1)
    }

    func testCloseBeforeStartStillCallsOnCloseOnce() throws {
        let listener = try Listener.bind(host: "127.0.0.1", port: 0)
        defer { listener.stop() }
        let loop = group.loops[0]
        let client = try XCTUnwrap(connectClient(port: listener.localAddress.port, loop: loop))
        let closed = expectation(description: "closed")
        let inClose = Locked(false)
        loop.queue.sync {
            client.onClose = { error in
                XCTAssertNil(error)
                XCTAssertFalse(inClose.current, "onClose must not run inside close()")
                closed.fulfill()
            }
            inClose.withLock { $0 = true }
            client.close(flush: true)
            inClose.withLock { $0 = false }
        }
        wait(for: [closed], timeout: 5)
    }

    func testPeerResetGivesAnError() throws {
        let closes = Locked<[TransportError?]>([])
        let closed = expectation(description: "closed")
        let server = try TestServer(group: group) { connection in
            connection.onClose = { error in
                closes.withLock { $0.append(error) }
                closed.fulfill()
            }
        }
        defer { server.stop() }
        let client = RawSocket.connectBlocking(port: server.port)
        XCTAssertTrue(eventually { server.accepted.current.count == 1 })
        // SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(client, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(client)
        wait(for: [closed], timeout: 10)
        XCTAssertEqual(closes.current.count, 1)
        XCTAssertEqual(closes.current.first ?? nil,
                       .system(call: "read", errno: ECONNRESET, message: "Connection reset by peer"))
    }

    func testPauseAndResumeReading() throws {
        let server = try TestServer(group: group) { _ in }
        defer { server.stop() }
        let loop = group.loops[1]
        let client = try XCTUnwrap(connectClient(port: server.port, loop: loop))
        let received = Locked<[UInt8]>([])
        loop.queue.sync {
            client.onRead = { bytes in received.withLock { $0 += bytes } }
            client.start()
            client.pauseReading()
        }
        XCTAssertTrue(eventually { server.accepted.current.count == 1 })
        let serverConnection = server.accepted.current[0]
        serverConnection.loop.queue.sync { serverConnection.write(Array("while paused".utf8)) }
        usleep(200_000)
        XCTAssertEqual(received.current, [])
        loop.queue.sync {
            client.resumeReading()
            client.resumeReading()
        }
        XCTAssertTrue(eventually { received.current == Array("while paused".utf8) })
        loop.queue.sync { client.close(flush: false) }
    }

    /// A greeting written before start() is sent, and reading starts only with start().
    func testWriteBeforeStart() throws {
        let listener = try Listener.bind(host: "127.0.0.1", port: 0)
        defer { listener.stop() }
        let loop = group.loops[0]
        let started = Locked<Connection?>(nil)
        listener.start(acceptQueue: DispatchQueue(label: "test.accept")) { fd, peer in
            loop.execute {
                let connection = Connection(fd: fd, loop: loop, peerAddress: peer)
                connection.write(Array("+OK hello\r\n".utf8))
                started.withLock { $0 = connection }
            }
        }
        let client = RawSocket.connectBlocking(port: listener.localAddress.port)
        defer { close(client) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
        XCTAssertEqual(Array(buffer.prefix(max(n, 0))), Array("+OK hello\r\n".utf8))
        XCTAssertTrue(eventually { started.current != nil })
        let connection = try XCTUnwrap(started.current)
        let got = expectation(description: "read after start")
        loop.queue.sync {
            connection.onRead = { bytes in
                XCTAssertEqual(Array(bytes), Array("QUIT\r\n".utf8))
                connection.close(flush: true)
                got.fulfill()
            }
            connection.start()
        }
        RawSocket.writeAll(client, Array("QUIT\r\n".utf8))
        wait(for: [got], timeout: 5)
    }

    /// 200 connections opened and closed in every way leave no descriptor behind.
    func testNoDescriptorLeaks() throws {
        let server = try TestServer(group: group) { connection in
            connection.onRead = { bytes in
                connection.write(bytes)
                connection.close(flush: true)
            }
        }
        defer { server.stop() }
        // Warm up whatever Dispatch creates lazily.
        if let warm = connectClient(port: server.port, loop: group.loops[0]) {
            group.loops[0].queue.sync { warm.close(flush: false) }
        }
        usleep(100_000)
        let baseline = settledFDCount()

        let count = 200
        let clientCloses = Locked(0)
        let allClosed = expectation(description: "all closed")
        allClosed.expectedFulfillmentCount = count
        for index in 0..<count {
            let loop = group.next()
            Connection.connect(host: "127.0.0.1", port: server.port, loop: loop, timeout: .seconds(10)) { result in
                guard case .success(let connection) = result else {
                    XCTFail("connect \(index): \(result)")
                    allClosed.fulfill()
                    return
                }
                connection.onClose = { _ in
                    clientCloses.withLock { $0 += 1 }
                    allClosed.fulfill()
                }
                switch index % 4 {
                case 0:  // server closes after echoing
                    connection.onRead = { _ in }
                    connection.start()
                    connection.write([UInt8(index & 0xFF)])
                case 1:  // client closes at once
                    connection.start()
                    connection.close(flush: false)
                case 2:  // client closes after flushing
                    connection.start()
                    connection.write(Array("bye".utf8))
                    connection.close(flush: true)
                default:  // closed before ever starting
                    connection.close(flush: false)
                }
            }
        }
        wait(for: [allClosed], timeout: 60)
        XCTAssertEqual(clientCloses.current, count)
        // Server sides close on EOF or after echoing; cancel handlers close asynchronously.
        let settled = eventually(timeout: 10) { openFDCount() <= baseline }
        XCTAssertTrue(settled, "fds: \(openFDCount()) now, \(baseline) before")
    }
}
