import COpenSSL

/// The calling thread's OpenSSL error queue, turned into text for `TLSError`.
///
/// Every SSL call is preceded by `ERR_clear_error()` so that
/// what we drain afterwards belongs to that call and not to an earlier one
/// (the queue is per thread, and a serial queue may hop threads between calls).
enum OpenSSLErrorQueue {
    static func clear() {
        ERR_clear_error()
    }

    /// Drains the queue, oldest first, as reason strings with OpenSSL's extra
    /// data when present, e.g. "No such file or directory (calling fopen(/x, r))".
    /// Duplicates are dropped; the queue is empty afterwards.
    static func drain() -> [String] {
        var reasons: [String] = []
        while true {
            var data: UnsafePointer<CChar>? = nil
            var flags: Int32 = 0
            let code = ERR_get_error_all(nil, nil, nil, &data, &flags)
            if code == 0 { break }
            var text = reason(code)
            if let data, flags & ERR_TXT_STRING != 0, data.pointee != 0 {
                text += " (\(String(cString: data)))"
            }
            if !reasons.contains(text) { reasons.append(text) }
        }
        // Generic wrappers ("system lib", "PEM lib") only say which layer passed the
        // error up; keep them only when there is nothing more specific.
        let specific = reasons.filter { !$0.hasSuffix(" lib") }
        return specific.isEmpty ? reasons : specific
    }

    /// "`context`: reason; reason", or "`context`" plus a fallback when the queue was empty.
    static func message(_ context: String, fallback: String = "no detail from OpenSSL") -> String {
        let reasons = drain()
        return "\(context): \(reasons.isEmpty ? fallback : reasons.joined(separator: "; "))"
    }

    private static func reason(_ code: UInt) -> String {
        if let text = ERR_reason_error_string(code) {
            return String(cString: text)
        }
        // No registered reason (some system errors): take the last field of
        // "error:80000002:system library::No such file or directory".
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        let full = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if let last = full.split(separator: ":", omittingEmptySubsequences: false).last, !last.isEmpty {
            return String(last)
        }
        return full
    }
}
