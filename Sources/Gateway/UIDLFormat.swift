import Wire

/// The POP3 unique-id (RFC 1939 §7 UIDL) of a message, built from its IMAP
/// UID and the folder's UIDVALIDITY.
///
/// The syntax is the subset of Dovecot's `pop3_uidl_format` that needs no
/// message content: `%u` (UID), `%v` (UIDVALIDITY), each optionally with a
/// zero-pad flag, a width and `X` (or `x`) for hexadecimal, and `%%`.
/// Hex digits are lower-case, as Dovecot's `%X` prints them (checked against
/// Dovecot 2.3's POP3 by the integration suite).
/// The default `%08Xu%08Xv` gives Dovecot's own default UIDLs, so users moved
/// from Dovecot's POP3 do not download everything again.
public struct UIDLFormat: Sendable, Equatable, CustomStringConvertible {
    enum Piece: Sendable, Equatable {
        case literal([UInt8])
        case variable(Variable, width: Int, zeroPad: Bool, radix: Radix)
    }
    enum Variable: Sendable, Equatable { case uid, uidValidity }
    enum Radix: Sendable, Equatable { case decimal, hex }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case unsupportedVariable(Character)
        case danglingPercent
        case noUID
        case invalidCharacter
        case spacePadding

        public var description: String {
            switch self {
            case .unsupportedVariable(let c): "unsupported variable %\(c) (supported: %u, %v, %%)"
            case .danglingPercent: "'%' at the end of the format"
            case .noUID: "the format must contain %u, or UIDLs would not be unique"
            case .invalidCharacter: "UIDLs may contain only printable ASCII from 0x21 to 0x7E (RFC 1939 §7)"
            case .spacePadding: "a width needs the 0 flag (%08Xu): UIDLs cannot contain spaces"
            }
        }
    }

    let pieces: [Piece]
    public let description: String

    public static let dovecotDefault = try! UIDLFormat(parsing: "%08Xu%08Xv")

    public init(parsing text: String) throws(ParseError) {
        var pieces: [Piece] = []
        var literal: [UInt8] = []
        var chars = Array(text.utf8)[...]
        var sawUID = false
        while let c = chars.popFirst() {
            if c != UInt8(ascii: "%") {
                guard c >= 0x21, c <= 0x7E else { throw .invalidCharacter }
                literal.append(c)
                continue
            }
            guard !chars.isEmpty else { throw .danglingPercent }
            if chars.first == UInt8(ascii: "%") {
                chars.removeFirst()
                literal.append(c)
                continue
            }
            var zeroPad = false
            var width = 0
            if chars.first == UInt8(ascii: "0") { zeroPad = true; chars.removeFirst() }
            while let d = chars.first, d >= 48, d <= 57 { width = min(width * 10 + Int(d - 48), 64); chars.removeFirst() }
            if width > 0 && !zeroPad { throw .spacePadding }
            var radix = Radix.decimal
            if chars.first == UInt8(ascii: "X") || chars.first == UInt8(ascii: "x") { radix = .hex; chars.removeFirst() }
            guard let v = chars.popFirst() else { throw .danglingPercent }
            let variable: Variable
            switch v {
            case UInt8(ascii: "u"): variable = .uid; sawUID = true
            case UInt8(ascii: "v"): variable = .uidValidity
            default: throw .unsupportedVariable(Character(Unicode.Scalar(v)))
            }
            if !literal.isEmpty { pieces.append(.literal(literal)); literal = [] }
            pieces.append(.variable(variable, width: width, zeroPad: zeroPad, radix: radix))
        }
        if !literal.isEmpty { pieces.append(.literal(literal)) }
        guard sawUID else { throw .noUID }
        self.pieces = pieces
        self.description = text
    }

    public func uidl(uid: UInt32, uidValidity: UInt32) -> String {
        var out: [UInt8] = []
        append(uid: uid, uidValidity: uidValidity, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The UIDL appended to an output buffer: a 100,000-line UIDL answer builds no String per line.
    public func append(uid: UInt32, uidValidity: UInt32, to output: inout [UInt8]) {
        for piece in pieces {
            switch piece {
            case .literal(let bytes):
                output.append(contentsOf: bytes)
            case .variable(let variable, let width, _, let radix):
                let value = variable == .uid ? uid : uidValidity
                ASCII.appendDigits(UInt64(value), radix: radix == .hex ? 16 : 10, width: width, to: &output)
            }
        }
    }
}
