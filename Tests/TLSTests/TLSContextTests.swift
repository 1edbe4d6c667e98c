import XCTest
import TLS

final class TLSContextTests: TLSTestCase {
    private func configurationMessage(
        _ body: () throws -> TLSContext, file: StaticString = #filePath, line: UInt = #line
    ) -> String {
        do {
            _ = try body()
            XCTFail("expected a configuration error", file: file, line: line)
        } catch let error as TLSError {
            if case .configuration(let message) = error { return message }
            XCTFail("expected .configuration, got \(error)", file: file, line: line)
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
        }
        return ""
    }

    func testValidServerAndClientContexts() throws {
        XCTAssertNoThrow(try TLSContext.server(certificateChainFile: pki.serverChain, privateKeyFile: pki.serverKey))
        XCTAssertNoThrow(try TLSContext.client(caFile: pki.caCertificate, verifyPeer: true))
        XCTAssertNoThrow(try TLSContext.client(caFile: nil, verifyPeer: true))
        XCTAssertNoThrow(try TLSContext.client(caFile: nil, verifyPeer: false))
    }

    func testMissingCertificateFileNamesThePath() {
        let missing = pki.path("no-such-cert.pem")
        let message = configurationMessage {
            try TLSContext.server(certificateChainFile: missing, privateKeyFile: pki.serverKey)
        }
        XCTAssertTrue(message.contains("cannot load certificate chain from '\(missing)'"), message)
        XCTAssertTrue(message.contains("No such file or directory"), message)
    }

    func testMissingKeyFileNamesThePath() {
        let missing = pki.path("no-such-key.pem")
        let message = configurationMessage {
            try TLSContext.server(certificateChainFile: pki.serverChain, privateKeyFile: missing)
        }
        XCTAssertTrue(message.contains("cannot load private key from '\(missing)'"), message)
        XCTAssertTrue(message.contains("No such file or directory"), message)
    }

    func testCertificateFileWithoutPEMIsRejected() {
        let message = configurationMessage {
            try TLSContext.server(certificateChainFile: pki.garbageFile, privateKeyFile: pki.serverKey)
        }
        XCTAssertTrue(message.contains("cannot load certificate chain from '\(pki.garbageFile)'"), message)
        XCTAssertTrue(message.contains("no start line"), message)
    }

    func testKeyFileWithoutPEMIsRejected() {
        let message = configurationMessage {
            try TLSContext.server(certificateChainFile: pki.serverChain, privateKeyFile: pki.garbageFile)
        }
        XCTAssertTrue(message.contains("cannot load private key from '\(pki.garbageFile)'"), message)
    }

    func testKeyThatDoesNotMatchTheCertificateIsRejected() {
        let message = configurationMessage {
            try TLSContext.server(certificateChainFile: pki.serverChain, privateKeyFile: pki.unrelatedKey)
        }
        XCTAssertTrue(message.contains("does not match certificate"), message)
        XCTAssertTrue(message.contains("key values mismatch"), message)
    }

    func testEncryptedKeyIsRejectedWithoutPrompting() {
        let message = configurationMessage {
            try TLSContext.server(certificateChainFile: pki.serverChain, privateKeyFile: pki.encryptedServerKey)
        }
        XCTAssertTrue(
            message.contains("cannot load private key from '\(pki.encryptedServerKey)' (it is encrypted"), message)
    }

    func testMissingCAFileNamesThePath() {
        let missing = pki.path("no-such-ca.pem")
        let message = configurationMessage { try TLSContext.client(caFile: missing, verifyPeer: true) }
        XCTAssertTrue(message.contains("cannot load CA certificates from '\(missing)'"), message)
        XCTAssertTrue(message.contains("No such file or directory"), message)
    }

    func testCAFileWithoutCertificatesIsRejected() {
        let message = configurationMessage { try TLSContext.client(caFile: pki.garbageFile, verifyPeer: true) }
        XCTAssertTrue(message.contains("cannot load CA certificates from '\(pki.garbageFile)'"), message)
        XCTAssertTrue(message.contains("no certificate or crl found"), message)
    }

    func testEmptyAndNULPathsAreRejectedBeforeOpenSSLSeesThem() {
        XCTAssertEqual(
            configurationMessage { try TLSContext.server(certificateChainFile: "", privateKeyFile: pki.serverKey) },
            "certificate chain file: empty path")
        XCTAssertEqual(
            configurationMessage {
                try TLSContext.server(certificateChainFile: pki.serverChain + "\u{0}x", privateKeyFile: pki.serverKey)
            },
            "certificate chain file: path contains a NUL byte")
        XCTAssertEqual(
            configurationMessage { try TLSContext.client(caFile: "", verifyPeer: true) },
            "CA file: empty path")
    }
}
