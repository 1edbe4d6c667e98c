import Foundation
import XCTest

/// A throw-away PKI made with the `openssl` CLI in a temporary directory:
/// a test CA, a `localhost` server certificate it signed (SAN DNS:localhost,
/// IP:127.0.0.1), an unrelated CA nobody signed with, a key that matches
/// nothing, and a passphrase-protected copy of the server key.
final class TestPKI: Sendable {
    let directory: URL
    var caCertificate: String { path("ca.pem") }
    var otherCACertificate: String { path("other-ca.pem") }
    var serverCertificate: String { path("server.pem") }
    /// Leaf first, then the CA: what an operator puts in `certificateChainFile`.
    var serverChain: String { path("server-chain.pem") }
    var serverKey: String { path("server.key") }
    var unrelatedKey: String { path("unrelated.key") }
    var encryptedServerKey: String { path("server-encrypted.key") }
    /// A file that exists but holds no PEM.
    var garbageFile: String { path("garbage.pem") }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    init() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("popgate-tls-tests-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try generate()
    }

    /// Our own minimal config, so the distribution's openssl.cnf cannot add or clash with extensions.
    private static let config = """
        [ req ]
        distinguished_name = dn
        prompt = no
        [ dn ]
        CN = unused
        [ v3_ca ]
        basicConstraints = critical, CA:TRUE
        keyUsage = critical, keyCertSign, cRLSign
        subjectKeyIdentifier = hash
        [ server ]
        basicConstraints = critical, CA:FALSE
        keyUsage = critical, digitalSignature
        extendedKeyUsage = serverAuth
        subjectAltName = DNS:localhost, IP:127.0.0.1
        authorityKeyIdentifier = keyid
        subjectKeyIdentifier = hash

        """

    private func generate() throws {
        try Self.config.write(toFile: path("openssl.cnf"), atomically: true, encoding: .utf8)
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        for (name, cn) in [("ca", "PopGate Test CA"), ("other-ca", "Somebody Else's CA")] {
            try Self.openssl(["req", "-x509", "-config", path("openssl.cnf"), "-extensions", "v3_ca"] + ec + [
                "-keyout", path("\(name).key"), "-out", path("\(name).pem"),
                "-days", "2", "-subj", "/CN=\(cn)",
            ])
        }
        try Self.openssl(["req", "-new", "-config", path("openssl.cnf")] + ec + [
            "-keyout", serverKey, "-out", path("server.csr"), "-subj", "/CN=localhost",
        ])
        try Self.openssl([
            "x509", "-req", "-in", path("server.csr"), "-CA", caCertificate, "-CAkey", path("ca.key"),
            "-set_serial", "4242", "-days", "2", "-sha256",
            "-extfile", path("openssl.cnf"), "-extensions", "server", "-out", serverCertificate,
        ])
        try Self.openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", unrelatedKey])
        try Self.openssl(["pkey", "-in", serverKey, "-aes256", "-passout", "pass:secret", "-out", encryptedServerKey])
        let chain = try String(contentsOfFile: serverCertificate, encoding: .utf8)
            + String(contentsOfFile: caCertificate, encoding: .utf8)
        try chain.write(toFile: serverChain, atomically: true, encoding: .utf8)
        try "this is not a PEM file\n".write(toFile: garbageFile, atomically: true, encoding: .utf8)
    }

    static func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PKIError(message: "openssl \(arguments.joined(separator: " ")) failed: "
                + String(decoding: stderr, as: UTF8.self))
        }
    }

    struct PKIError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}

/// Generated once per test process (global `let`s are initialised lazily and exactly once)
/// and removed when the process exits: a global is never deinitialised.
private let sharedPKI: Result<TestPKI, any Error> = {
    let pki = Result { try TestPKI() }
    atexit {
        if case .success(let pki) = sharedPKI { try? FileManager.default.removeItem(at: pki.directory) }
    }
    return pki
}()

/// Base class: `setUp` makes sure the PKI exists and exposes it as `pki`.
class TLSTestCase: XCTestCase {
    private(set) var pki: TestPKI!

    override func setUpWithError() throws {
        try super.setUpWithError()
        pki = try sharedPKI.get()
    }
}
