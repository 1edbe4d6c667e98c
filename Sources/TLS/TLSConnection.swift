import COpenSSL

/// One TLS session over two memory BIOs; knows nothing about sockets.
///
/// The driver moves bytes: ciphertext read from the socket goes into `feed`,
/// and after every call (handshake, read, write, shutdown — a read can produce
/// ciphertext too, e.g. a TLS 1.3 KeyUpdate answer) it sends `takeCiphertext()`.
///
/// ```
/// socket → feed(ciphertext:) → [network-in BIO] → SSL → read(into:)  → plaintext
/// plaintext → write(plaintext:) → SSL → [network-out BIO] → takeCiphertext() → socket
/// ```
///
/// `@unchecked Sendable`: an `SSL` is not thread-safe; each instance is
/// confined to one serial queue by its owner (the session driver).
public final class TLSConnection: @unchecked Sendable {
    private let context: TLSContext
    private let ssl: OpaquePointer
    /// Ciphertext from the peer; owned by `ssl` (SSL_set_bio), freed with it.
    private var networkIn: OpaquePointer
    /// Ciphertext for the peer; owned by `ssl`.
    private var networkOut: OpaquePointer
    /// A fatal error is final: OpenSSL must not be called again on that SSL
    /// except to free it, so later calls report the same failure.
    private var failure: TLSError?
    private var closeNotifySent = false

    /// Plaintext is decrypted through a scratch buffer this large: one maximum TLS record.
    private static let readChunk = 16 * 1024

    /// Client mode (context from `TLSContext.client`): `serverName` is sent as SNI
    /// and checked against the certificate's names. An IP literal ("192.0.2.1",
    /// "::1" or "[::1]") is checked against the certificate's IP SANs and not
    /// sent as SNI (RFC 6066 §3 allows host names only). Server mode: ignored.
    public init(context: TLSContext, serverName: String?) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        guard let ssl = SSL_new(context.ctx) else {
            throw .configuration(OpenSSLErrorQueue.message("SSL_new failed"))
        }
        guard let networkIn = Self.makeMemoryBIO() else {
            SSL_free(ssl)
            throw .configuration("BIO_new failed")
        }
        guard let networkOut = Self.makeMemoryBIO() else {
            BIO_free(networkIn)
            SSL_free(ssl)
            throw .configuration("BIO_new failed")
        }
        SSL_set_bio(ssl, networkIn, networkOut)  // ssl owns both BIOs from here on

        if context.isServer {
            SSL_set_accept_state(ssl)
        } else {
            SSL_set_connect_state(ssl)
            if let serverName {
                do {
                    try Self.setPeerName(serverName, on: ssl)
                } catch {
                    SSL_free(ssl)
                    throw error
                }
            }
        }
        self.context = context
        self.ssl = ssl
        self.networkIn = networkIn
        self.networkOut = networkOut
    }

    deinit {
        SSL_free(ssl)  // frees both BIOs; the SSL_CTX is reference-counted by OpenSSL too
    }

    // MARK: - Bytes in and out

    /// Ciphertext that arrived from the peer. Call `handshake()` or `read(into:)` next.
    public func feed<C: Collection>(ciphertext: C) where C.Element == UInt8 {
        guard failure == nil, !ciphertext.isEmpty else { return }
        if let ok = ciphertext.withContiguousStorageIfAvailable({ feed(bytes: $0) }) {
            if !ok { failure = .protocolError("cannot buffer incoming ciphertext (out of memory)") }
            return
        }
        if !Array(ciphertext).withUnsafeBufferPointer({ feed(bytes: $0) }) {
            failure = .protocolError("cannot buffer incoming ciphertext (out of memory)")
        }
    }

    private func feed(bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return true }
        OpenSSLErrorQueue.clear()
        var written = 0
        // A memory BIO takes everything or fails on allocation only.
        let rc = BIO_write_ex(networkIn, base, bytes.count, &written)
        OpenSSLErrorQueue.clear()
        return rc == 1 && written == bytes.count
    }

    /// Ciphertext produced so far (handshake messages, records, alerts) that must
    /// be sent to the peer, in order. Empties the outgoing buffer.
    public func takeCiphertext() -> [UInt8] {
        let pending = popgate_BIO_pending(networkOut)
        guard pending > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: pending) { buffer, count in
            OpenSSLErrorQueue.clear()
            var got = 0
            if let base = buffer.baseAddress, BIO_read_ex(networkOut, base, pending, &got) == 1 {
                count = got
            } else {
                count = 0
            }
        }
    }

    /// A memory BIO keeps the largest buffer it ever held (a 64 KiB read, a handshake flight). Between
    /// commands an empty BIO holding more than `idleBIOCapacity` is swapped for a fresh one, so an idle
    /// session does not keep two such buffers per TLS connection. Nothing buffered is lost: only empty
    /// BIOs are replaced, and the SSL frees the old one.
    public func releaseIdleBuffers() {
        guard failure == nil else { return }
        if Self.holdsIdleMemory(networkIn), let fresh = Self.makeMemoryBIO() {
            SSL_set0_rbio(ssl, fresh)
            networkIn = fresh
        }
        if Self.holdsIdleMemory(networkOut), let fresh = Self.makeMemoryBIO() {
            SSL_set0_wbio(ssl, fresh)
            networkOut = fresh
        }
    }

    static let idleBIOCapacity = 1024

    /// Bytes the two memory BIOs hold allocated (for tests and diagnostics).
    public var bufferMemory: Int {
        [networkIn, networkOut].reduce(0) { sum, bio in sum + (popgate_BIO_get_mem_buf(bio).map { Int($0.pointee.max) } ?? 0) }
    }

    private static func holdsIdleMemory(_ bio: OpaquePointer) -> Bool {
        guard popgate_BIO_pending(bio) == 0, let memory = popgate_BIO_get_mem_buf(bio) else { return false }
        return memory.pointee.max > idleBIOCapacity
    }

    /// An empty memory BIO. Read empty it reports "retry later" (WANT_READ), not end of stream: more
    /// ciphertext is coming.
    private static func makeMemoryBIO() -> OpaquePointer? {
        guard let bio = BIO_new(BIO_s_mem()) else {
            OpenSSLErrorQueue.clear()
            return nil
        }
        _ = popgate_BIO_set_mem_eof_return(bio, -1)
        return bio
    }

    public var hasPendingCiphertext: Bool {
        popgate_BIO_pending(networkOut) > 0
    }

    // MARK: - Handshake

    /// Drives the handshake as far as the fed ciphertext allows.
    /// `.incomplete`: send `takeCiphertext()`, wait for more from the peer, feed it, call again.
    public func handshake() -> TLSResult {
        if let failure { return .failed(failure) }
        if SSL_is_init_finished(ssl) == 1 { return .complete }
        OpenSSLErrorQueue.clear()
        let rc = SSL_do_handshake(ssl)
        if rc == 1 { return .complete }
        return classify(returnCode: rc, duringHandshake: true)
    }

    public var isHandshakeComplete: Bool {
        SSL_is_init_finished(ssl) == 1
    }

    /// Negotiated protocol, e.g. "TLSv1.3"; nil before the handshake completes.
    public var protocolVersion: String? {
        guard isHandshakeComplete, let version = SSL_get_version(ssl) else { return nil }
        return String(cString: version)
    }

    /// Negotiated cipher suite in OpenSSL's naming, e.g. "TLS_AES_256_GCM_SHA384"; nil before the handshake completes.
    public var cipherName: String? {
        guard isHandshakeComplete, let cipher = SSL_get_current_cipher(ssl),
              let name = SSL_CIPHER_get_name(cipher) else { return nil }
        return String(cString: name)
    }

    // MARK: - Application data

    /// Decrypts everything the fed ciphertext holds and appends it to `buffer`.
    ///
    /// `.complete`: got data, or nothing for now (feed more later). Returns once
    /// OpenSSL wants more input, so it never spins.
    /// `.failed(.closed)`: the peer sent close_notify. Data decrypted before the
    /// close_notify in the same call is already appended: consume `buffer` before
    /// acting on the result. Later calls keep returning `.failed(.closed)`.
    /// May also complete a pending handshake or queue ciphertext (check `hasPendingCiphertext`).
    public func read(into buffer: inout [UInt8]) -> TLSResult {
        if let failure { return .failed(failure) }
        if peerSentCloseNotify { return .failed(.closed) }
        let chunk = Self.readChunk
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: chunk) { scratch -> TLSResult in
            guard let base = scratch.baseAddress else { return .complete }
            // Each pass either consumes buffered input or stops: bounded by what was fed.
            while true {
                OpenSSLErrorQueue.clear()
                var got = 0
                let rc = SSL_read_ex(ssl, base, chunk, &got)
                if rc == 1 {
                    buffer.append(contentsOf: UnsafeBufferPointer(start: base, count: got))
                    continue
                }
                switch classify(returnCode: rc, duringHandshake: false) {
                case .incomplete:
                    return .complete  // nothing more for now
                case .complete:
                    return .complete
                case .failed(let error):
                    return .failed(error)
                }
            }
        }
    }

    /// Encrypts all of `plaintext` into records queued for `takeCiphertext()`.
    /// Only after the handshake completed and before `shutdown()`.
    public func write<C: Collection>(plaintext: C) -> TLSResult where C.Element == UInt8 {
        if let failure { return .failed(failure) }
        if closeNotifySent { return .failed(.protocolError("write after shutdown()")) }
        guard isHandshakeComplete else {
            return .failed(.protocolError("write before the handshake completed"))
        }
        if let result = plaintext.withContiguousStorageIfAvailable({ write(bytes: $0) }) {
            return result
        }
        return Array(plaintext).withUnsafeBufferPointer { write(bytes: $0) }
    }

    private func write(bytes: UnsafeBufferPointer<UInt8>) -> TLSResult {
        guard let base = bytes.baseAddress else { return .complete }
        var offset = 0
        while offset < bytes.count {
            OpenSSLErrorQueue.clear()
            var written = 0
            let rc = SSL_write_ex(ssl, base + offset, bytes.count - offset, &written)
            if rc == 1 {
                offset += written
                continue
            }
            switch classify(returnCode: rc, duringHandshake: false) {
            case .incomplete, .complete:
                // The out BIO grows without bound and renegotiation is off, so
                // OpenSSL has no reason to wait; stop rather than spin if it does.
                let error = TLSError.protocolError(
                    "SSL_write stalled after \(offset) of \(bytes.count) bytes")
                failure = error
                return .failed(error)
            case .failed(let error):
                return .failed(error)
            }
        }
        return .complete
    }

    // MARK: - Closing

    /// Queues close_notify for the peer (send it with `takeCiphertext()`); does
    /// not wait for the peer's. No-op before the handshake completed (there is
    /// nothing to close cleanly), after a fatal error (the alert is already
    /// queued) and when called twice.
    public func shutdown() {
        guard failure == nil, !closeNotifySent, isHandshakeComplete else { return }
        closeNotifySent = true
        OpenSSLErrorQueue.clear()
        // 0 = sent ours, peer's not yet seen; 1 = both. Either way ours is queued.
        _ = SSL_shutdown(ssl)
        OpenSSLErrorQueue.clear()
    }

    private var peerSentCloseNotify: Bool {
        SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN != 0
    }

    // MARK: - Errors

    /// Maps `SSL_get_error` for a failed call; records fatal errors.
    private func classify(returnCode: Int32, duringHandshake: Bool) -> TLSResult {
        let code = SSL_get_error(ssl, returnCode)
        switch code {
        case SSL_ERROR_WANT_READ:
            OpenSSLErrorQueue.clear()
            return .incomplete
        case SSL_ERROR_WANT_WRITE:
            // Not expected with a memory BIO; report "call again" rather than fail.
            OpenSSLErrorQueue.clear()
            return .incomplete
        case SSL_ERROR_ZERO_RETURN:
            OpenSSLErrorQueue.clear()
            return .failed(.closed)
        default:
            let message = failureMessage(sslError: code)
            let error: TLSError = duringHandshake ? .handshake(message) : .protocolError(message)
            failure = error
            return .failed(error)
        }
    }

    private func failureMessage(sslError: Int32) -> String {
        var reasons = OpenSSLErrorQueue.drain()
        // "certificate verify failed" alone does not say why; the verify result does.
        let verifyResult = SSL_get_verify_result(ssl)
        if verifyResult != Int(X509_V_OK), let detail = X509_verify_cert_error_string(verifyResult) {
            let why = String(cString: detail)
            reasons = reasons.map { $0 == "certificate verify failed" ? "\($0): \(why)" : $0 }
        }
        if reasons.isEmpty {
            switch sslError {
            case SSL_ERROR_SYSCALL: return "unexpected end of stream"
            default: return "OpenSSL error \(sslError)"
            }
        }
        return reasons.joined(separator: "; ")
    }

    // MARK: - Peer name

    private static func setPeerName(_ serverName: String, on ssl: OpaquePointer) throws(TLSError) {
        var name = serverName
        if name.hasPrefix("["), name.hasSuffix("]"), name.count > 2 {
            name = String(name.dropFirst().dropLast())  // "[::1]" as written in URLs
        }
        if name.hasSuffix("."), name.count > 1 {
            name = String(name.dropLast())  // fully qualified form; certificates never carry the dot
        }
        guard !name.isEmpty, !name.utf8.contains(0) else {
            throw .configuration("invalid server name '\(serverName)'")
        }
        OpenSSLErrorQueue.clear()
        if X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1 {
            return  // an IP literal: checked against IP SANs, never sent as SNI
        }
        OpenSSLErrorQueue.clear()
        guard popgate_SSL_set_tlsext_host_name(ssl, name) == 1 else {
            throw .configuration(OpenSSLErrorQueue.message("cannot set SNI '\(name)'"))
        }
        SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
        OpenSSLErrorQueue.clear()
        guard SSL_set1_host(ssl, name) == 1 else {
            throw .configuration(OpenSSLErrorQueue.message("cannot set the expected host name '\(name)'"))
        }
    }
}
