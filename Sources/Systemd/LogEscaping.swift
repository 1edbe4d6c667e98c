/// The one escaping both log handlers apply to every message and metadata value, so text a POP3 client
/// controls (the AUTH identity becomes `user` metadata and part of the session summary) can neither start
/// a fake log entry nor send escape sequences to the terminal of an operator reading the log.
///
/// Escaped, each as a backslash sequence made of printable ASCII only:
///
/// | input                                  | written as                       |
/// |----------------------------------------|----------------------------------|
/// | `\`                                    | `\\`                             |
/// | LF, CR, tab                            | `\n`, `\r`, `\t`                 |
/// | other C0 controls (U+0000–U+001F), DEL | `\u0000` … `\u001f`, `\u007f`    |
/// | C1 controls (U+0080–U+009F)            | `\u0080` … `\u009f`              |
/// | line and paragraph separators          | `\u2028`, `\u2029`               |
///
/// and, when the caller asks for it, its quote character (logfmt's `"` becomes `\"`). Everything else,
/// including all other non-ASCII text, stays as it is, so an ordinary printable message is unchanged.
///
/// The escapes are JSON's (four lowercase hex digits after `\u`): logfmt readers understand them, and the
/// journal uses the same ones so there is one set of rules. Because a backslash is itself escaped, every
/// backslash in escaped text starts an escape: the original can always be recovered and no input can
/// imitate an escape. (An unquoted logfmt value is not escaped text; it holds no controls, quotes or
/// spaces, so it is literal, backslashes included.)
enum LogEscaping {
    /// Whether `scalar` must never reach a log entry as itself: it ends a line (LF, CR, NEL, U+2028,
    /// U+2029, and VT and FF for some readers), drives a terminal (ESC, the C1 controls, which include
    /// CSI), or is otherwise invisible control input.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029: true
        default: false
        }
    }

    /// `text` with backslashes, the scalars of `isControl(_:)` and `quote` (if given) escaped. Returns
    /// `text` itself when there is nothing to escape, the common case.
    static func escaped(_ text: String, quote: Unicode.Scalar? = nil) -> String {
        func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
            scalar == "\\" || scalar == quote || isControl(scalar)
        }
        guard text.unicodeScalars.contains(where: needsEscape) else {
            return text
        }
        var result = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            guard needsEscape(scalar) else {
                result.append(scalar)
                continue
            }
            result.append("\\")
            switch scalar {
            case "\n": result.append("n")
            case "\r": result.append("r")
            case "\t": result.append("t")
            case _ where isControl(scalar):
                // Every control is at most U+2029, so four digits always suffice.
                result.append("u")
                for shift in stride(from: 12, through: 0, by: -4) {
                    result.append(hexDigits[Int((scalar.value >> UInt32(shift)) & 0xF)])
                }
            default:  // the backslash or the quote
                result.append(scalar)
            }
        }
        return String(result)
    }

    private static let hexDigits = Array("0123456789abcdef".unicodeScalars)
}
