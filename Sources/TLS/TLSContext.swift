import COpenSSL

/// Shared TLS configuration: one per listener (server side) or per backend (client side).
///
/// Wraps an `SSL_CTX`. `@unchecked Sendable`: the context is fully configured
/// inside the factory methods and never mutated afterwards; OpenSSL allows one
/// configured `SSL_CTX` to back many `SSL` objects on many threads.
public final class TLSContext: @unchecked Sendable {
    let ctx: OpaquePointer
    let isServer: Bool

    private init(ctx: OpaquePointer, isServer: Bool) {
        self.ctx = ctx
        self.isServer = isServer
    }

    deinit {
        SSL_CTX_free(ctx)
    }

    /// Server side: PEM certificate chain (leaf first) and PEM private key.
    ///
    /// TLS 1.2 minimum, OpenSSL's default cipher suites with server preference,
    /// no renegotiation, no compression. Checks that the key matches the
    /// certificate. Encrypted keys are refused rather than prompted for.
    public static func server(certificateChainFile: String, privateKeyFile: String) throws(TLSError) -> TLSContext {
        try checkPath(certificateChainFile, what: "certificate chain file")
        try checkPath(privateKeyFile, what: "private key file")
        let context = try make(method: TLS_server_method(), isServer: true)
        let ctx = context.ctx
        _ = popgate_SSL_CTX_set_options(ctx, popgate_SSL_OP_CIPHER_SERVER_PREFERENCE())

        OpenSSLErrorQueue.clear()
        guard SSL_CTX_use_certificate_chain_file(ctx, certificateChainFile) == 1 else {
            throw .configuration(OpenSSLErrorQueue.message("cannot load certificate chain from '\(certificateChainFile)'"))
        }
        OpenSSLErrorQueue.clear()
        guard SSL_CTX_use_PrivateKey_file(ctx, privateKeyFile, SSL_FILETYPE_PEM) == 1 else {
            // OpenSSL already compares the key with the certificate while loading it;
            // say which two files disagree rather than just "cannot load".
            let reasons = OpenSSLErrorQueue.drain()
            let what: String
            if reasons.contains("key values mismatch") {
                what = "private key '\(privateKeyFile)' does not match certificate '\(certificateChainFile)'"
            } else if reasons.contains(where: { $0.hasPrefix("bad decrypt") }) {
                what = "cannot load private key from '\(privateKeyFile)' (it is encrypted; an unencrypted key is required)"
            } else {
                what = "cannot load private key from '\(privateKeyFile)'"
            }
            throw .configuration("\(what): \(reasons.isEmpty ? "no detail from OpenSSL" : reasons.joined(separator: "; "))")
        }
        OpenSSLErrorQueue.clear()
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw .configuration(OpenSSLErrorQueue.message(
                "private key '\(privateKeyFile)' does not match certificate '\(certificateChainFile)'"))
        }
        enableTicketResumption(ctx)
        return context
    }

    /// Session resumption for clients that poll every few minutes: a resumed handshake skips the
    /// certificate and its signature. Resumption is by session ticket only (TLS 1.2 and 1.3): the state
    /// travels with the client, encrypted under a key that lives in this context, so nothing per client
    /// is stored here; OpenSSL's server-side session cache (up to 20,480 sessions, grown by anyone who
    /// completes handshakes) is turned off. A new context, made on every reload, has a new random
    /// ticket key: a reload rotates it and tickets issued before no longer resume.
    ///
    /// One ticket per full handshake (OpenSSL sends two by default): a poller resumes with the one it
    /// holds and gets a fresh one each time. Tickets are honoured for `ticketLifetimeSeconds`.
    static let ticketLifetimeSeconds = 2 * 60 * 60

    private static func enableTicketResumption(_ ctx: OpaquePointer) {
        _ = popgate_SSL_CTX_set_session_cache_mode(ctx, popgate_SSL_SESS_CACHE_OFF())
        _ = SSL_CTX_set_num_tickets(ctx, 1)
        _ = SSL_CTX_set_timeout(ctx, ticketLifetimeSeconds)
    }

    /// Client side (towards the IMAP backend).
    ///
    /// With `verifyPeer` the server's chain is verified against `caFile` (PEM,
    /// one or more CA certificates) or, when `caFile` is nil, the system trust
    /// store. `verifyPeer: false` disables verification entirely; only for an
    /// explicit configuration switch. The host name check is set per connection.
    public static func client(caFile: String?, verifyPeer: Bool) throws(TLSError) -> TLSContext {
        if let caFile { try checkPath(caFile, what: "CA file") }
        let context = try make(method: TLS_client_method(), isServer: false)
        let ctx = context.ctx

        if let caFile {
            OpenSSLErrorQueue.clear()
            guard SSL_CTX_load_verify_locations(ctx, caFile, nil) == 1 else {
                throw .configuration(OpenSSLErrorQueue.message("cannot load CA certificates from '\(caFile)'"))
            }
        } else if verifyPeer {
            OpenSSLErrorQueue.clear()
            guard SSL_CTX_set_default_verify_paths(ctx) == 1 else {
                throw .configuration(OpenSSLErrorQueue.message("cannot load the system trust store"))
            }
        }
        SSL_CTX_set_verify(ctx, verifyPeer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nil)
        return context
    }

    /// Settings both sides share.
    private static func make(method: OpaquePointer?, isServer: Bool) throws(TLSError) -> TLSContext {
        OpenSSLErrorQueue.clear()
        guard let ctx = SSL_CTX_new(method) else {
            throw .configuration(OpenSSLErrorQueue.message("SSL_CTX_new failed"))
        }
        // From here on deinit frees ctx on every throw.
        let context = TLSContext(ctx: ctx, isServer: isServer)

        OpenSSLErrorQueue.clear()
        guard popgate_SSL_CTX_set_min_proto_version(ctx, popgate_TLS1_2_VERSION()) == 1 else {
            throw .configuration(OpenSSLErrorQueue.message("cannot set the minimum protocol version to TLS 1.2"))
        }
        _ = popgate_SSL_CTX_set_options(ctx, popgate_SSL_OP_NO_RENEGOTIATION() | popgate_SSL_OP_NO_COMPRESSION())
        // Partial writes + moving buffer: SSL_write may report less than asked and
        // we retry from a different address (Swift arrays move). Release buffers:
        // idle POP3 sessions should not pin 2×~34 KB of record buffers each.
        _ = popgate_SSL_CTX_set_mode(ctx,
            popgate_SSL_MODE_ENABLE_PARTIAL_WRITE()
                | popgate_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER()
                | popgate_SSL_MODE_RELEASE_BUFFERS())
        // OpenSSL's default passphrase callback prompts on the terminal, which would
        // hang a daemon; refusing makes an encrypted key a clear configuration error.
        SSL_CTX_set_default_passwd_cb(ctx, { _, _, _, _ in 0 })
        return context
    }

    /// OpenSSL takes C strings: an embedded NUL would silently cut the path short.
    private static func checkPath(_ path: String, what: String) throws(TLSError) {
        if path.isEmpty {
            throw .configuration("\(what): empty path")
        }
        if path.utf8.contains(0) {
            throw .configuration("\(what): path contains a NUL byte")
        }
    }
}
