import XCTest
import TLS

final class TLSConnectionTests: TLSTestCase {
    // MARK: - Helpers

    private func serverContext() throws -> TLSContext {
        try TLSContext.server(certificateChainFile: pki.serverChain, privateKeyFile: pki.serverKey)
    }

    private func makePair(
        caFile: String? = nil, useTestCA: Bool = true, verifyPeer: Bool = true, serverName: String? = "localhost"
    ) throws -> (client: TLSConnection, server: TLSConnection) {
        let ca = caFile ?? (useTestCA ? pki.caCertificate : nil)
        let clientContext = try TLSContext.client(caFile: ca, verifyPeer: verifyPeer)
        return (try TLSConnection(context: clientContext, serverName: serverName),
                try TLSConnection(context: serverContext(), serverName: nil))
    }

    /// Moves ciphertext both ways and drives both handshakes until nothing moves any more.
    @discardableResult
    private func pumpHandshake(
        _ client: TLSConnection, _ server: TLSConnection, chunk: Int = .max
    ) -> (client: TLSResult, server: TLSResult) {
        var clientResult = client.handshake()
        var serverResult = server.handshake()
        for _ in 0..<100 {
            let toServer = client.takeCiphertext()
            let toClient = server.takeCiphertext()
            if toServer.isEmpty && toClient.isEmpty { break }
            for piece in toServer.chunked(chunk) {
                server.feed(ciphertext: piece)
                serverResult = server.handshake()
            }
            for piece in toClient.chunked(chunk) {
                client.feed(ciphertext: piece)
                clientResult = client.handshake()
            }
            clientResult = client.handshake()
            serverResult = server.handshake()
        }
        return (clientResult, serverResult)
    }

    private func establishedPair() throws -> (client: TLSConnection, server: TLSConnection) {
        let (client, server) = try makePair()
        let results = pumpHandshake(client, server)
        XCTAssertEqual(results.client, .complete)
        XCTAssertEqual(results.server, .complete)
        return (client, server)
    }

    /// Writes `plaintext` on `sender`, delivers the ciphertext in `chunk`-sized pieces,
    /// reading after each piece, and returns what `receiver` decrypted.
    private func transfer<C: Collection>(
        _ plaintext: C, from sender: TLSConnection, to receiver: TLSConnection, chunk: Int = .max,
        file: StaticString = #filePath, line: UInt = #line
    ) -> [UInt8] where C.Element == UInt8 {
        XCTAssertEqual(sender.write(plaintext: plaintext), .complete, file: file, line: line)
        let ciphertext = sender.takeCiphertext()
        XCTAssertFalse(sender.hasPendingCiphertext, file: file, line: line)
        var received: [UInt8] = []
        for piece in ciphertext.chunked(chunk) {
            receiver.feed(ciphertext: piece)
            XCTAssertEqual(receiver.read(into: &received), .complete, file: file, line: line)
        }
        return received
    }

    private func handshakeMessage(_ result: TLSResult, file: StaticString = #filePath, line: UInt = #line) -> String {
        guard case .failed(.handshake(let message)) = result else {
            XCTFail("expected a handshake failure, got \(result)", file: file, line: line)
            return ""
        }
        return message
    }

    // MARK: - Handshake

    func testHandshakeCompletesInMemory() throws {
        let (client, server) = try makePair()
        XCTAssertFalse(client.isHandshakeComplete)
        XCTAssertNil(client.protocolVersion)
        XCTAssertNil(client.cipherName)

        let results = pumpHandshake(client, server)

        XCTAssertEqual(results.client, .complete)
        XCTAssertEqual(results.server, .complete)
        XCTAssertTrue(client.isHandshakeComplete)
        XCTAssertTrue(server.isHandshakeComplete)
        for side in [client, server] {
            let version = try XCTUnwrap(side.protocolVersion)
            XCTAssertTrue(["TLSv1.3", "TLSv1.2"].contains(version), version)
            XCTAssertFalse(try XCTUnwrap(side.cipherName).isEmpty)
        }
        XCTAssertEqual(client.protocolVersion, server.protocolVersion)
        XCTAssertEqual(client.cipherName, server.cipherName)
        XCTAssertEqual(client.handshake(), .complete, "handshake() after completion stays complete")
    }

    func testHandshakeIsIncompleteUntilThePeerAnswers() throws {
        let (client, server) = try makePair()
        XCTAssertEqual(server.handshake(), .incomplete)
        XCTAssertFalse(server.hasPendingCiphertext, "a server speaks only after the ClientHello")

        XCTAssertEqual(client.handshake(), .incomplete)
        XCTAssertTrue(client.hasPendingCiphertext)
        let hello = client.takeCiphertext()
        XCTAssertEqual(hello.first, 0x16, "a handshake record")
        XCTAssertFalse(client.hasPendingCiphertext)
        XCTAssertEqual(client.takeCiphertext(), [])
        XCTAssertEqual(client.handshake(), .incomplete, "nothing fed yet, still waiting")
        XCTAssertFalse(client.isHandshakeComplete)

        // Half a ClientHello is not enough for the server.
        server.feed(ciphertext: hello.prefix(hello.count / 2))
        XCTAssertEqual(server.handshake(), .incomplete)
        XCTAssertFalse(server.hasPendingCiphertext)
        server.feed(ciphertext: hello.dropFirst(hello.count / 2))
        XCTAssertEqual(server.handshake(), .incomplete, "server waits for the client's Finished")
        XCTAssertTrue(server.hasPendingCiphertext)
    }

    func testClientHelloCarriesSNIForHostNamesOnly() throws {
        let (named, _) = try makePair(serverName: "localhost")
        _ = named.handshake()
        XCTAssertTrue(named.takeCiphertext().containsSubsequence(Array("localhost".utf8)))

        let (byAddress, _) = try makePair(serverName: "127.0.0.1")
        _ = byAddress.handshake()
        let hello = byAddress.takeCiphertext()
        XCTAssertFalse(hello.containsSubsequence(Array("127.0.0.1".utf8)), "RFC 6066: no IP literal in SNI")
    }

    func testHandshakeSurvivesByteByByteDelivery() throws {
        let (client, server) = try makePair()
        let results = pumpHandshake(client, server, chunk: 1)
        XCTAssertEqual(results.client, .complete)
        XCTAssertEqual(results.server, .complete)
    }

    func testServerAcceptsLeafOnlyCertificateFile() throws {
        let clientContext = try TLSContext.client(caFile: pki.caCertificate, verifyPeer: true)
        let serverContext = try TLSContext.server(
            certificateChainFile: pki.serverCertificate, privateKeyFile: pki.serverKey)
        let client = try TLSConnection(context: clientContext, serverName: "localhost")
        let server = try TLSConnection(context: serverContext, serverName: nil)
        let results = pumpHandshake(client, server)
        XCTAssertEqual(results.client, .complete)
        XCTAssertEqual(results.server, .complete)
    }

    func testOneContextServesManyConnections() throws {
        let clientContext = try TLSContext.client(caFile: pki.caCertificate, verifyPeer: true)
        let serverContext = try serverContext()
        for _ in 0..<3 {
            let client = try TLSConnection(context: clientContext, serverName: "localhost")
            let server = try TLSConnection(context: serverContext, serverName: nil)
            XCTAssertEqual(pumpHandshake(client, server).client, .complete)
        }
    }

    // MARK: - Verification

    func testWrongHostNameFailsVerification() throws {
        let (client, server) = try makePair(serverName: "imap.example.org")
        let results = pumpHandshake(client, server)

        let message = handshakeMessage(results.client)
        XCTAssertTrue(message.contains("certificate verify failed"), message)
        XCTAssertTrue(message.contains("hostname mismatch"), message)
        XCTAssertFalse(client.isHandshakeComplete)
        // The client's alert reached the server and failed it too.
        guard case .failed(.handshake) = results.server else {
            return XCTFail("server should see the client's alert, got \(results.server)")
        }
        XCTAssertEqual(client.handshake(), results.client, "failures are sticky")
        XCTAssertEqual(client.write(plaintext: [1, 2, 3]), results.client)
        var sink: [UInt8] = []
        XCTAssertEqual(client.read(into: &sink), results.client)
    }

    func testIPLiteralIsCheckedAgainstIPSubjectAltName() throws {
        let (client, server) = try makePair(serverName: "127.0.0.1")
        XCTAssertEqual(pumpHandshake(client, server).client, .complete)

        let (wrongClient, wrongServer) = try makePair(serverName: "127.0.0.2")
        let message = handshakeMessage(pumpHandshake(wrongClient, wrongServer).client)
        XCTAssertTrue(message.contains("certificate verify failed: IP address mismatch"), message)
    }

    func testTrailingDotHostNameMatches() throws {
        let (client, server) = try makePair(serverName: "localhost.")
        XCTAssertEqual(pumpHandshake(client, server).client, .complete)
    }

    func testUntrustedCAFailsVerification() throws {
        // The server sends leaf + CA: the chain ends in a root the client does not trust.
        let (client, server) = try makePair(caFile: pki.otherCACertificate)
        let message = handshakeMessage(pumpHandshake(client, server).client)
        XCTAssertTrue(message.contains("certificate verify failed: self-signed certificate in certificate chain"), message)
    }

    func testUntrustedIssuerOfLeafOnlyServerFailsVerification() throws {
        let clientContext = try TLSContext.client(caFile: pki.otherCACertificate, verifyPeer: true)
        let serverContext = try TLSContext.server(
            certificateChainFile: pki.serverCertificate, privateKeyFile: pki.serverKey)
        let client = try TLSConnection(context: clientContext, serverName: "localhost")
        let server = try TLSConnection(context: serverContext, serverName: nil)
        let message = handshakeMessage(pumpHandshake(client, server).client)
        XCTAssertTrue(message.contains("certificate verify failed: unable to get local issuer certificate"), message)
    }

    func testSystemTrustStoreDoesNotTrustTheTestCA() throws {
        let (client, server) = try makePair(useTestCA: false, verifyPeer: true)
        let message = handshakeMessage(pumpHandshake(client, server).client)
        XCTAssertTrue(message.contains("certificate verify failed"), message)
    }

    func testVerifyPeerFalseAcceptsUntrustedServerWithWrongName() throws {
        let (client, server) = try makePair(useTestCA: false, verifyPeer: false, serverName: "wrong.example")
        let results = pumpHandshake(client, server)
        XCTAssertEqual(results.client, .complete)
        XCTAssertEqual(results.server, .complete)
        XCTAssertEqual(transfer(Array("+OK\r\n".utf8), from: server, to: client), Array("+OK\r\n".utf8))
    }

    func testInvalidServerNameIsAConfigurationError() throws {
        let context = try TLSContext.client(caFile: pki.caCertificate, verifyPeer: true)
        for name in ["", "bad\u{0}name"] {
            XCTAssertThrowsError(try TLSConnection(context: context, serverName: name)) { error in
                guard case .configuration(let message) = error as? TLSError else {
                    return XCTFail("expected .configuration, got \(error)")
                }
                XCTAssertTrue(message.contains("invalid server name"), message)
            }
        }
    }

    // MARK: - Application data

    func testSmallMessagesBothWaysAreByteExact() throws {
        let (client, server) = try establishedPair()
        let greeting = Array("+OK POP3 gateway ready\r\n".utf8)
        XCTAssertEqual(transfer(greeting, from: server, to: client), greeting)
        let command = Array("USER alice\r\n".utf8)
        XCTAssertEqual(transfer(command, from: client, to: server), command)
        let allBytes = (0...255).map { UInt8($0) }
        XCTAssertEqual(transfer(allBytes, from: client, to: server, chunk: 7), allBytes)
        XCTAssertEqual(transfer(allBytes, from: server, to: client, chunk: 1), allBytes)
    }

    func testOneMegabyteBothWaysIsByteExact() throws {
        let (client, server) = try establishedPair()
        var generator = SplitMix64(seed: 0x5eed)
        let megabyte = (0..<(1 << 20)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }

        let toClient = transfer(megabyte, from: server, to: client, chunk: 4093)
        XCTAssertEqual(toClient.count, megabyte.count)
        XCTAssertTrue(toClient == megabyte, "server → client differs")

        let toServer = transfer(megabyte[...], from: client, to: server, chunk: 65_536)
        XCTAssertEqual(toServer.count, megabyte.count)
        XCTAssertTrue(toServer == megabyte, "client → server differs")
    }

    func testManyWritesBeforeOneDelivery() throws {
        let (client, server) = try establishedPair()
        var expected: [UInt8] = []
        for n in 1...50 {
            let line = Array("+OK \(n) message line\r\n".utf8)
            expected += line
            XCTAssertEqual(server.write(plaintext: line), .complete)
        }
        client.feed(ciphertext: server.takeCiphertext())
        var received: [UInt8] = []
        XCTAssertEqual(client.read(into: &received), .complete)
        XCTAssertEqual(received, expected)
    }

    func testWriteAcceptsNonContiguousCollections() throws {
        let (client, server) = try establishedPair()
        let bytes = Array("RETR 1\r\n".utf8)
        XCTAssertEqual(transfer(bytes.reversed(), from: client, to: server), Array(bytes.reversed()))
        XCTAssertEqual(transfer(repeatElement(UInt8(ascii: "x"), count: 3), from: client, to: server), Array("xxx".utf8))
    }

    func testEmptyWriteProducesNothing() throws {
        let (client, _) = try establishedPair()
        _ = client.takeCiphertext()
        XCTAssertEqual(client.write(plaintext: [UInt8]()), .complete)
        XCTAssertFalse(client.hasPendingCiphertext)
    }

    func testReadWithNothingFedReturnsCompleteAndNoData() throws {
        let (client, server) = try establishedPair()
        var received: [UInt8] = [9]
        XCTAssertEqual(server.read(into: &received), .complete)
        XCTAssertEqual(client.read(into: &received), .complete)
        XCTAssertEqual(received, [9], "read appends, and only what arrived")
    }

    func testReadOfAPartialRecordWaitsForTheRest() throws {
        let (client, server) = try establishedPair()
        XCTAssertEqual(server.write(plaintext: Array("+OK\r\n".utf8)), .complete)
        let record = server.takeCiphertext()
        var received: [UInt8] = []
        client.feed(ciphertext: record.dropLast())
        XCTAssertEqual(client.read(into: &received), .complete)
        XCTAssertEqual(received, [])
        client.feed(ciphertext: record.suffix(1))
        XCTAssertEqual(client.read(into: &received), .complete)
        XCTAssertEqual(received, Array("+OK\r\n".utf8))
    }

    func testWriteBeforeHandshakeIsRefused() throws {
        let (client, _) = try makePair()
        guard case .failed(.protocolError(let message)) = client.write(plaintext: [1]) else {
            return XCTFail("write before the handshake must fail")
        }
        XCTAssertTrue(message.contains("before the handshake"), message)
        XCTAssertEqual(client.handshake(), .incomplete, "the refusal is not fatal")
    }

    // MARK: - Closing

    func testCloseNotifyIsReportedAsClosedAfterTheDataBeforeIt() throws {
        let (client, server) = try establishedPair()
        XCTAssertEqual(client.write(plaintext: Array("QUIT\r\n".utf8)), .complete)
        client.shutdown()
        XCTAssertEqual(client.write(plaintext: [1]), .failed(.protocolError("write after shutdown()")))
        server.feed(ciphertext: client.takeCiphertext())

        var received: [UInt8] = []
        XCTAssertEqual(server.read(into: &received), .failed(.closed))
        XCTAssertEqual(received, Array("QUIT\r\n".utf8), "data before close_notify is delivered")
        XCTAssertEqual(server.read(into: &received), .failed(.closed), "closed stays closed")
        XCTAssertEqual(received, Array("QUIT\r\n".utf8))

        // The server may still answer, then close its side.
        XCTAssertEqual(server.write(plaintext: Array("+OK bye\r\n".utf8)), .complete)
        server.shutdown()
        client.feed(ciphertext: server.takeCiphertext())
        var answer: [UInt8] = []
        XCTAssertEqual(client.read(into: &answer), .failed(.closed))
        XCTAssertEqual(answer, Array("+OK bye\r\n".utf8))
    }

    func testShutdownQueuesExactlyOneAlert() throws {
        let (client, _) = try establishedPair()
        _ = client.takeCiphertext()
        client.shutdown()
        let alert = client.takeCiphertext()
        XCTAssertFalse(alert.isEmpty)
        client.shutdown()
        XCTAssertFalse(client.hasPendingCiphertext, "a second shutdown sends nothing")
    }

    func testShutdownBeforeHandshakeIsANoOp() throws {
        let (client, _) = try makePair()
        client.shutdown()
        XCTAssertFalse(client.hasPendingCiphertext)
        XCTAssertEqual(client.handshake(), .incomplete)
    }

    // MARK: - Garbage

    func testGarbageToServerFailsTheHandshake() throws {
        let (_, server) = try makePair()
        server.feed(ciphertext: Array("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8))
        let result = server.handshake()
        guard case .failed(.handshake(let message)) = result else {
            return XCTFail("expected a handshake failure, got \(result)")
        }
        XCTAssertFalse(message.isEmpty)
        XCTAssertEqual(server.handshake(), result, "sticky")
        server.feed(ciphertext: [0x16, 0x03, 0x01])
        XCTAssertEqual(server.handshake(), result)
    }

    func testGarbageAfterHandshakeFailsRead() throws {
        let (client, server) = try establishedPair()
        // A well-formed application-data record header with a payload that does not decrypt.
        server.feed(ciphertext: [0x17, 0x03, 0x03, 0x00, 0x20] + [UInt8](repeating: 0xAB, count: 32))
        var received: [UInt8] = []
        let result = server.read(into: &received)
        guard case .failed(.protocolError(let message)) = result else {
            return XCTFail("expected a protocol error, got \(result)")
        }
        XCTAssertFalse(message.isEmpty)
        XCTAssertEqual(received, [])
        XCTAssertTrue(server.hasPendingCiphertext, "an alert for the peer")
        XCTAssertEqual(server.write(plaintext: [1]), result, "sticky")
        // The alert tells the client, too.
        client.feed(ciphertext: server.takeCiphertext())
        guard case .failed = client.read(into: &received) else {
            return XCTFail("the client should fail on the server's alert")
        }
    }

    func testErrorDescriptions() {
        XCTAssertEqual(TLSError.handshake("x").description, "TLS handshake failed: x")
        XCTAssertEqual(TLSError.configuration("y").description, "TLS configuration error: y")
        XCTAssertEqual(TLSError.protocolError("z").description, "TLS protocol error: z")
        XCTAssertEqual(TLSError.closed.description, "TLS connection closed by the peer (close_notify)")
    }

    // MARK: - Idle memory

    func testIdleBuffersAreGivenBackAndTheSessionGoesOn() throws {
        let (client, server) = try establishedPair()
        let big = [UInt8](repeating: UInt8(ascii: "a"), count: 100_000)
        XCTAssertEqual(transfer(big, from: server, to: client), big)
        XCTAssertEqual(transfer(big, from: client, to: server), big)
        XCTAssertGreaterThan(server.bufferMemory, 100_000, "both BIOs grew with the transfer")
        XCTAssertGreaterThan(client.bufferMemory, 100_000)

        server.releaseIdleBuffers()
        client.releaseIdleBuffers()
        XCTAssertLessThanOrEqual(server.bufferMemory, 1024)
        XCTAssertLessThanOrEqual(client.bufferMemory, 1024)
        let after = Array("after the release".utf8)
        XCTAssertEqual(transfer(after, from: server, to: client), after)
        XCTAssertEqual(transfer(after, from: client, to: server), after)
    }

    func testBuffersHoldingCiphertextAreKept() throws {
        let (client, server) = try establishedPair()
        let big = [UInt8](repeating: UInt8(ascii: "b"), count: 50_000)
        XCTAssertEqual(client.write(plaintext: big), .complete)
        let ciphertext = client.takeCiphertext()
        // Half the records arrive; the server has not read them yet when the release comes.
        server.feed(ciphertext: ciphertext.prefix(ciphertext.count / 2))
        server.releaseIdleBuffers()
        server.feed(ciphertext: ciphertext.dropFirst(ciphertext.count / 2))
        var received: [UInt8] = []
        XCTAssertEqual(server.read(into: &received), .complete)
        XCTAssertEqual(received, big, "nothing buffered was dropped")
    }
}

// MARK: - Test utilities

extension Collection where Index == Int {
    /// Consecutive slices of at most `size` elements.
    func chunked(_ size: Int) -> [SubSequence] {
        var pieces: [SubSequence] = []
        var start = startIndex
        while start < endIndex {
            let end = size >= endIndex - start ? endIndex : start + size
            pieces.append(self[start..<end])
            start = end
        }
        return pieces
    }
}

extension Array where Element == UInt8 {
    func containsSubsequence(_ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= count else { return needle.isEmpty }
        for start in 0...(count - needle.count) where self[start..<(start + needle.count)].elementsEqual(needle) {
            return true
        }
        return false
    }
}

/// Deterministic bytes, so a failure reproduces.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

}
