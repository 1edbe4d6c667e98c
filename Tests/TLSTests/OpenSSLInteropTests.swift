import Foundation
import Glibc
import TLS
import XCTest

/// The engine against the real `openssl s_client` / `s_server` over loopback TCP.
/// Blocking sockets with receive timeouts: a broken engine fails the test instead of hanging it.
final class OpenSSLInteropTests: TLSTestCase {
    // MARK: - Our server, their client

    func testServerAgainstOpenSSLClient() throws {
        let version = try runServerAgainstSClient(extraArguments: [])
        XCTAssertTrue(["TLSv1.3", "TLSv1.2"].contains(version ?? ""), "\(String(describing: version))")
    }

    func testServerAgainstOpenSSLClientLimitedToTLS12() throws {
        XCTAssertEqual(try runServerAgainstSClient(extraArguments: ["-tls1_2"]), "TLSv1.2")
    }

    /// Greets, reads one command, closes; returns the negotiated protocol version.
    private func runServerAgainstSClient(extraArguments: [String]) throws -> String? {
        let listener = try BlockingSocket.listen()
        defer { listener.close() }
        let port = try listener.localPort()

        let sClient = try OpenSSLProcess(arguments: [
            "s_client", "-connect", "127.0.0.1:\(port)", "-servername", "localhost",
            "-CAfile", pki.caCertificate, "-verify_hostname", "localhost", "-verify_return_error", "-quiet",
        ] + extraArguments)
        defer { sClient.terminate() }

        let socket = try listener.accept(timeoutSeconds: 10)
        defer { socket.close() }
        let context = try TLSContext.server(certificateChainFile: pki.serverChain, privateKeyFile: pki.serverKey)
        let server = try TLSConnection(context: context, serverName: nil)

        try handshake(server, over: socket)
        let greeting = Array("+OK PopGate ready\r\n".utf8)
        XCTAssertEqual(server.write(plaintext: greeting), .complete)
        try socket.send(server.takeCiphertext())

        let command = Array("CAPA\r\n".utf8)
        sClient.send(command)
        let received = try readPlaintext(server, over: socket, until: command.count)
        XCTAssertEqual(received, command)

        server.shutdown()
        try socket.send(server.takeCiphertext())
        let output = try sClient.finish(timeoutSeconds: 10)
        XCTAssertEqual(output.status, 0, output.stderr)
        XCTAssertEqual(output.stdout, greeting, output.stderr)
        return server.protocolVersion
    }

    // MARK: - Our client, their server

    func testClientAgainstOpenSSLServer() throws {
        let port = try BlockingSocket.unusedPort()
        let sServer = try OpenSSLProcess(arguments: [
            "s_server", "-accept", "127.0.0.1:\(port)", "-naccept", "1", "-rev",
            "-cert", pki.serverCertificate, "-key", pki.serverKey, "-cert_chain", pki.caCertificate,
        ])
        defer { sServer.terminate() }

        let socket = try BlockingSocket.connect(port: port, retryForSeconds: 10)
        defer { socket.close() }
        let context = try TLSContext.client(caFile: pki.caCertificate, verifyPeer: true)
        let client = try TLSConnection(context: context, serverName: "localhost")

        try handshake(client, over: socket)
        XCTAssertTrue(["TLSv1.3", "TLSv1.2"].contains(client.protocolVersion ?? ""))

        // s_server -rev answers each line reversed.
        XCTAssertEqual(client.write(plaintext: Array("popgate\n".utf8)), .complete)
        try socket.send(client.takeCiphertext())
        XCTAssertEqual(try readPlaintext(client, over: socket, until: 8), Array("etagpop\n".utf8))

        client.shutdown()
        try socket.send(client.takeCiphertext())
        _ = try sServer.finish(timeoutSeconds: 10)
    }

    func testClientRejectsOpenSSLServerWithWrongName() throws {
        let port = try BlockingSocket.unusedPort()
        let sServer = try OpenSSLProcess(arguments: [
            "s_server", "-accept", "127.0.0.1:\(port)", "-naccept", "1", "-rev",
            "-cert", pki.serverCertificate, "-key", pki.serverKey,
        ])
        defer { sServer.terminate() }

        let socket = try BlockingSocket.connect(port: port, retryForSeconds: 10)
        defer { socket.close() }
        let context = try TLSContext.client(caFile: pki.caCertificate, verifyPeer: true)
        let client = try TLSConnection(context: context, serverName: "pop.example.net")

        XCTAssertThrowsError(try handshake(client, over: socket)) { error in
            guard case .handshake(let message)? = error as? TLSError else {
                return XCTFail("expected a handshake failure, got \(error)")
            }
            XCTAssertTrue(message.contains("certificate verify failed: hostname mismatch"), message)
        }
        try? socket.send(client.takeCiphertext())  // the alert
    }

    // MARK: - Driving a connection over a blocking socket

    private func handshake(_ connection: TLSConnection, over socket: BlockingSocket) throws {
        while true {
            let result = connection.handshake()
            try socket.send(connection.takeCiphertext())
            switch result {
            case .complete:
                return
            case .failed(let error):
                throw error
            case .incomplete:
                connection.feed(ciphertext: try socket.receive())
            }
        }
    }

    private func readPlaintext(_ connection: TLSConnection, over socket: BlockingSocket, until count: Int) throws -> [UInt8] {
        var plaintext: [UInt8] = []
        while plaintext.count < count {
            connection.feed(ciphertext: try socket.receive())
            let result = connection.read(into: &plaintext)
            try socket.send(connection.takeCiphertext())
            if case .failed(let error) = result { throw error }
        }
        return plaintext
    }
}

// MARK: - Test plumbing

struct SocketError: Error, CustomStringConvertible {
    let description: String
    init(_ what: String) { description = "\(what): \(String(cString: strerror(errno)))" }
}

/// A blocking IPv4 loopback TCP socket; just enough for these tests.
struct BlockingSocket {
    let fd: Int32

    static func listen() throws -> BlockingSocket {
        let socket = try make()
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket.fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(socket.fd, 1) == 0 else {
            socket.close()
            throw SocketError("bind/listen")
        }
        return socket
    }

    /// A port that was free a moment ago (for a server we cannot hand a bound socket to).
    static func unusedPort() throws -> UInt16 {
        let socket = try listen()
        defer { socket.close() }
        return try socket.localPort()
    }

    static func connect(port: UInt16, retryForSeconds seconds: Double) throws -> BlockingSocket {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let socket = try make()
            var address = loopback(port: port)
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(socket.fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if rc == 0 {
                try socket.setReceiveTimeout(seconds: 10)
                return socket
            }
            socket.close()
            guard Date() < deadline else { throw SocketError("connect to 127.0.0.1:\(port)") }
            usleep(50_000)  // the openssl process is still starting up
        }
    }

    func accept(timeoutSeconds: Int32) throws -> BlockingSocket {
        var pollFD = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pollFD, 1, timeoutSeconds * 1000) == 1 else { throw SocketError("accept timed out") }
        let client = Glibc.accept(fd, nil, nil)
        guard client >= 0 else { throw SocketError("accept") }
        let socket = BlockingSocket(fd: client)
        try socket.setReceiveTimeout(seconds: 10)
        return socket
    }

    func localPort() throws -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let rc = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard rc == 0 else { throw SocketError("getsockname") }
        return UInt16(bigEndian: address.sin_port)
    }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw SocketError("send") }
            offset += sent
        }
    }

    /// Whatever arrives next (at least one byte); throws on timeout or end of stream.
    func receive() throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        let got = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard got > 0 else { throw SocketError(got == 0 ? "peer closed the connection" : "recv") }
        return Array(buffer.prefix(got))
    }

    func close() {
        _ = Glibc.close(fd)
    }

    private static func make() throws -> BlockingSocket {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket") }
        return BlockingSocket(fd: fd)
    }

    private func setReceiveTimeout(seconds: Int) throws {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        guard setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
            throw SocketError("setsockopt(SO_RCVTIMEO)")
        }
    }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }
}

/// `openssl s_client` / `s_server` with piped stdin, stdout and stderr.
final class OpenSSLProcess {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let errors = Pipe()

    init(arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
    }

    func send(_ bytes: [UInt8]) {
        input.fileHandleForWriting.write(Data(bytes))
    }

    /// Closes stdin, waits for the exit (killing it after the timeout) and returns what it printed.
    func finish(timeoutSeconds: Double) throws -> (status: Int32, stdout: [UInt8], stderr: String) {
        try? input.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            throw SocketError("openssl \(process.arguments?.first ?? "") did not exit")
        }
        let stdout = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        return (process.terminationStatus, Array(stdout), String(decoding: stderr, as: UTF8.self))
    }

    func terminate() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }
}
