/// RFC 4648 base64 without line breaks, as SASL (RFC 4422) uses it in POP3
/// AUTH (RFC 5034) and IMAP AUTHENTICATE (RFC 3501 §6.2.2).
public enum Base64 {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()

    public static func encode(_ input: [UInt8]) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity((input.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= input.count {
            let n = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
            output.append(alphabet[Int(n >> 18 & 63)])
            output.append(alphabet[Int(n >> 12 & 63)])
            output.append(alphabet[Int(n >> 6 & 63)])
            output.append(alphabet[Int(n & 63)])
            index += 3
        }
        let rest = input.count - index
        if rest == 1 {
            let n = UInt32(input[index]) << 16
            output.append(alphabet[Int(n >> 18 & 63)])
            output.append(alphabet[Int(n >> 12 & 63)])
            output.append(UInt8(ascii: "="))
            output.append(UInt8(ascii: "="))
        } else if rest == 2 {
            let n = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8
            output.append(alphabet[Int(n >> 18 & 63)])
            output.append(alphabet[Int(n >> 12 & 63)])
            output.append(alphabet[Int(n >> 6 & 63)])
            output.append(UInt8(ascii: "="))
        }
        return output
    }

    /// Strict decoding: returns nil for characters outside the alphabet, bad
    /// padding, pad bits that are not zero (RFC 4648 §3.5) or a length that is
    /// not a multiple of four. So every byte string has exactly one accepted
    /// text: `encode(decode(x)) == x` wherever `decode(x)` succeeds.
    public static func decode<C: Collection>(_ input: C) -> [UInt8]? where C.Element == UInt8 {
        let chars = Array(input)
        guard chars.count % 4 == 0 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(chars.count / 4 * 3)
        var index = 0
        while index < chars.count {
            let isLast = index + 4 == chars.count
            var values: [UInt8] = [0, 0, 0, 0]
            var padding = 0
            for offset in 0..<4 {
                let c = chars[index + offset]
                if c == UInt8(ascii: "=") {
                    guard isLast, offset >= 2 else { return nil }
                    padding += 1
                    values[offset] = 0
                } else {
                    guard padding == 0 else { return nil }
                    let v = reverse[Int(c)]
                    guard v != 0xFF else { return nil }
                    values[offset] = v
                }
            }
            let n = UInt32(values[0]) << 18 | UInt32(values[1]) << 12 | UInt32(values[2]) << 6 | UInt32(values[3])
            // The bits below the last whole byte must be zero ("Zh==" is not another spelling of "Zg==").
            if padding == 2 && n & 0xFFFF != 0 { return nil }
            if padding == 1 && n & 0xFF != 0 { return nil }
            output.append(UInt8(n >> 16 & 0xFF))
            if padding < 2 { output.append(UInt8(n >> 8 & 0xFF)) }
            if padding < 1 { output.append(UInt8(n & 0xFF)) }
            index += 4
        }
        return output
    }
}
