import Wire

/// Mailbox-name encoding of RFC 3501 §5.1.3 ("modified UTF-7").
///
/// Printable US-ASCII (0x20-0x7E) stands for itself, except `&`, which becomes `&-`. Any other run of
/// characters is UTF-16BE, base64-encoded with `,` instead of `/` and no padding, between `&` and `-`:
///
///     "Entwürfe" → "Entw&APw-rfe"
public enum ModifiedUTF7 {
    public static func encode(_ name: String) -> String {
        var output: [UInt8] = []
        var pending: [UInt8] = []  // UTF-16BE bytes of the current non-ASCII run

        func flush() {
            guard !pending.isEmpty else { return }
            output.append(UInt8(ascii: "&"))
            for byte in Base64.encode(pending) where byte != UInt8(ascii: "=") {
                output.append(byte == UInt8(ascii: "/") ? UInt8(ascii: ",") : byte)
            }
            output.append(UInt8(ascii: "-"))
            pending.removeAll()
        }

        for scalar in name.unicodeScalars {
            let value = scalar.value
            if value >= 0x20 && value <= 0x7E {
                flush()
                output.append(UInt8(value))
                if value == 0x26 { output.append(UInt8(ascii: "-")) }  // "&" → "&-"
            } else {
                for unit in String(scalar).utf16 {
                    pending.append(UInt8(unit >> 8))
                    pending.append(UInt8(unit & 0xFF))
                }
            }
        }
        flush()
        return String(decoding: output, as: UTF8.self)
    }
}
