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

    /// The Unicode name of a modified UTF-7 name as a server sends it (LIST, NAMESPACE); nil when it is
    /// not valid modified UTF-7 (a bare `&` run that does not decode, a byte outside 0x20-0x7E).
    public static func decode(_ name: String) -> String? {
        var output = String.UnicodeScalarView()
        let bytes = Array(name.utf8)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            guard byte >= 0x20 && byte <= 0x7E else { return nil }
            guard byte == UInt8(ascii: "&") else {
                output.append(Unicode.Scalar(byte))
                index += 1
                continue
            }
            guard let dash = bytes[(index + 1)...].firstIndex(of: UInt8(ascii: "-")) else { return nil }
            let run = bytes[(index + 1)..<dash]
            index = dash + 1
            if run.isEmpty {
                output.append("&")
                continue
            }
            var base64 = run.map { $0 == UInt8(ascii: ",") ? UInt8(ascii: "/") : $0 }
            while base64.count % 4 != 0 { base64.append(UInt8(ascii: "=")) }
            guard let utf16be = Base64.decode(base64), !utf16be.isEmpty, utf16be.count % 2 == 0 else { return nil }
            var units: [UInt16] = []
            for pair in stride(from: 0, to: utf16be.count, by: 2) {
                units.append(UInt16(utf16be[pair]) << 8 | UInt16(utf16be[pair + 1]))
            }
            var iterator = units.makeIterator()
            var codec = UTF16()
            decoding: while true {
                switch codec.decode(&iterator) {
                case .scalarValue(let scalar): output.append(scalar)
                case .emptyInput: break decoding
                case .error: return nil
                }
            }
        }
        return String(output)
    }
}
