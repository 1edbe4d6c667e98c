extension String {
    /// The bytes as a String if they are valid UTF-8, nil otherwise.
    ///
    /// Same as the standard library's `String(validating:as:)`, which needs macOS 15 while the package
    /// supports macOS 13: decoding replaces each invalid sequence with U+FFFD, so the bytes were valid
    /// exactly when re-encoding gives them back.
    init?<C: Collection>(validUTF8 bytes: C) where C.Element == UInt8 {
        let decoded = String(decoding: bytes, as: UTF8.self)
        guard decoded.utf8.elementsEqual(bytes) else { return nil }
        self = decoded
    }
}
