import Wire

/// SASL PLAIN (RFC 4616) message: `[authzid] NUL authcid NUL passwd`, as a POP3 client sends it
/// base64-encoded in `AUTH PLAIN` (RFC 5034) and as the gateway passes it on in IMAP
/// `AUTHENTICATE PLAIN` (RFC 3501 §6.2.2).
///
/// ```
/// C: AUTH PLAIN AHRpbQB0YW5zdGFhZnRhbmZ0YW4=   (NUL "tim" NUL "tanstaaftanftan")
/// ```
public struct SASLPlain: Sendable, Equatable {
    /// The identity to act as; "" when absent (the usual case).
    public var authorizationIdentity: String
    /// The user name whose password this is.
    public var authenticationIdentity: String
    public var password: Secret

    public init(authorizationIdentity: String, authenticationIdentity: String, password: Secret) {
        self.authorizationIdentity = authorizationIdentity
        self.authenticationIdentity = authenticationIdentity
        self.password = password
    }

    /// From the base64 text the client sent; nil for bad base64, a NUL count other than two,
    /// an empty authcid, or invalid UTF-8 in either identity. The password is kept as bytes.
    public static func decode(base64: [UInt8]) -> SASLPlain? {
        guard let message = Base64.decode(base64) else { return nil }
        let parts = message.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[2].contains(0) else { return nil }
        guard !parts[1].isEmpty,
              let authzid = String(validUTF8: parts[0]),
              let authcid = String(validUTF8: parts[1])
        else { return nil }
        return SASLPlain(authorizationIdentity: authzid, authenticationIdentity: authcid, password: Secret(Array(parts[2])))
    }

    /// The base64 of the message, for IMAP AUTHENTICATE PLAIN (a Secret, since it holds the password).
    public func encodedBase64() -> Secret {
        var message: [UInt8] = []
        message.reserveCapacity(authorizationIdentity.utf8.count + authenticationIdentity.utf8.count + password.bytes.count + 2)
        message.append(contentsOf: authorizationIdentity.utf8)
        message.append(0)
        message.append(contentsOf: authenticationIdentity.utf8)
        message.append(0)
        message.append(contentsOf: password.bytes)
        return Secret(Base64.encode(message))
    }
}
