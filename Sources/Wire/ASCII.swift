/// Small byte helpers shared by the POP3 and IMAP protocol code.
public enum ASCII {
    public static let cr: UInt8 = 13
    public static let lf: UInt8 = 10
    public static let space: UInt8 = 32
    public static let crlf: [UInt8] = [13, 10]

    @inlinable
    public static func lowercased(_ byte: UInt8) -> UInt8 {
        (byte >= 65 && byte <= 90) ? byte + 32 : byte
    }

    @inlinable
    public static func uppercased(_ byte: UInt8) -> UInt8 {
        (byte >= 97 && byte <= 122) ? byte - 32 : byte
    }

    @inlinable
    public static func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }

    /// Equal bytes, letters compared without case: IMAP flags, keywords and item names (RFC 3501 §2.3.2,
    /// §9), compared without building lower- or upper-cased copies.
    @inlinable
    public static func equalsIgnoringCase<A: Collection, B: Collection>(_ a: A, _ b: B) -> Bool
    where A.Element == UInt8, B.Element == UInt8 {
        a.count == b.count && a.elementsEqual(b) { lowercased($0) == lowercased($1) }
    }

    /// Text from bytes that came off the wire, made safe to log: control
    /// characters become `?`, invalid UTF-8 is repaired, and the result is
    /// cut at `limit` characters.
    public static func sanitized<C: Collection>(_ bytes: C, limit: Int = 200) -> String where C.Element == UInt8 {
        var cleaned: [UInt8] = []
        cleaned.reserveCapacity(Swift.min(bytes.count, limit * 4))
        for byte in bytes {
            cleaned.append(byte < 32 || byte == 127 ? UInt8(ascii: "?") : byte)
        }
        let text = String(decoding: cleaned, as: UTF8.self)
        if text.count > limit { return String(text.prefix(limit)) + "…" }
        return text
    }

    /// Parses a non-negative decimal number of at most `maxDigits` digits. Inlinable: it runs for every
    /// number of every FETCH response, and unspecialised generic code across modules costs several
    /// times as much as the loop itself.
    @inlinable
    public static func parseUnsigned<C: Collection>(_ bytes: C, maxDigits: Int = 19) -> UInt64? where C.Element == UInt8 {
        guard !bytes.isEmpty, bytes.count <= maxDigits else { return nil }
        var value: UInt64 = 0
        for byte in bytes {
            guard isDigit(byte) else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(byte - 48))
            if o1 || o2 { return nil }
            value = a
        }
        return value
    }

    /// Appends `value` in decimal (radix 10) or lower-case hexadecimal (radix 16), left-padded with
    /// zeros to `width` digits: numbers for output lines without building a String per number.
    @inlinable
    public static func appendDigits(_ value: UInt64, radix: UInt64 = 10, width: Int = 0, to output: inout [UInt8]) {
        precondition(radix == 10 || radix == 16, "radix 10 or 16")
        // 64 bits are at most 20 decimal digits; the width is capped like UIDL formats cap it.
        var digits: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)  // 32 bytes of scratch
        withUnsafeMutableBytes(of: &digits) { scratch in
            var count = 0
            var rest = value
            repeat {
                let digit = UInt8(truncatingIfNeeded: rest % radix)
                scratch[31 - count] = digit < 10 ? 48 + digit : 87 + digit
                count += 1
                rest /= radix
            } while rest > 0
            let padding = Swift.max(0, width - count)
            if padding > 0 { output.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: padding)) }
            output.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[(32 - count)...]))
        }
    }
}
