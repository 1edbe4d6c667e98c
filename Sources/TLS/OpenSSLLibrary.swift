import COpenSSL

/// The OpenSSL library this process runs with (the shared library's, not the headers' version).
public enum OpenSSLLibrary {
    /// `OpenSSL_version(OPENSSL_VERSION)`, e.g. "OpenSSL 3.0.17 1 Jul 2025".
    public static var version: String {
        guard let text = OpenSSL_version(OPENSSL_VERSION) else { return "OpenSSL (unknown version)" }
        return String(cString: text)
    }
}
