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
///
/// A configuration may also name a preset (`UIDLFormat.Preset`): the format of the POP3 server users
/// come from, as Dovecot's `pop3_uidl_format` migration table lists it (docs/uidl.md).
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
        /// A preset name PopGate knows but cannot reproduce over IMAP; the text says why.
        case unsupportedPreset(name: String, reason: String)
        /// Neither a preset name nor a format (a format contains `%u`).
        case unknownPreset(String)

        public var description: String {
            switch self {
            case .unsupportedVariable(let c):
                switch c {
                case "m": "unsupported variable %m: the MD5 of the message headers that Dovecot keeps for mbox only, which IMAP does not show (supported: %u, %v, %%)"
                case "f": "unsupported variable %f: the message's file name in the server's Maildir, which IMAP does not show (supported: %u, %v, %%)"
                case "g": "unsupported variable %g: Dovecot's message GUID, which IMAP does not show (supported: %u, %v, %%)"
                default: "unsupported variable %\(c) (supported: %u, %v, %%)"
                }
            case .unsupportedPreset(let name, let reason): "preset \(name) cannot be reproduced over IMAP: \(reason)"
            case .unknownPreset(let name):
                "\"\(name)\" is neither a preset (\(Preset.allCases.filter { $0.format != nil }.map(\.rawValue).joined(separator: ", "))) nor a format with %u"
            case .danglingPercent: "'%' at the end of the format"
            case .noUID: "the format must contain %u, or UIDLs would not be unique"
            case .invalidCharacter: "UIDLs may contain only printable ASCII from 0x21 to 0x7E (RFC 1939 §7)"
            case .spacePadding: "a width needs the 0 flag (%08Xu): UIDLs cannot contain spaces"
            }
        }
    }

    let pieces: [Piece]
    /// The format as written (`%08Xu%08Xv`); for a preset, its format.
    public let description: String
    /// The preset the configuration named, if it named one.
    public let preset: Preset?

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
        self.init(pieces: pieces, description: text, preset: nil)
    }

    /// A preset name (`uw-imap`) or a format (`%08Xu%08Xv`), as `uidl_format` is written.
    public init(configured text: String) throws(ParseError) {
        guard !text.contains("%") else {
            try self.init(parsing: text)
            return
        }
        guard let preset = Preset(rawValue: text) else { throw .unknownPreset(text) }
        guard let format = preset.format else { throw .unsupportedPreset(name: text, reason: preset.refusal ?? "") }
        let parsed = try UIDLFormat(parsing: format)
        self.init(pieces: parsed.pieces, description: parsed.description, preset: preset)
    }

    private init(pieces: [Piece], description: String, preset: Preset?) {
        self.pieces = pieces
        self.description = description
        self.preset = preset
    }

    /// The POP3 servers users migrate from, named as `uidl_format` presets, with the `pop3_uidl_format`
    /// that Dovecot documents for each (docs/uidl.md). Only formats of the IMAP UID and UIDVALIDITY can
    /// be reproduced by a gateway that sees the mail over IMAP; the others are known by name so that a
    /// configuration asking for them gets a reason instead of "unknown".
    public enum Preset: String, Sendable, Equatable, CaseIterable {
        /// Dovecot 1.0 and later, its default.
        case dovecot
        /// Dovecot 0.99.
        case dovecot099 = "dovecot-0.99"
        /// UW-IMAP's ipop3d (`%08lx%08lx` of UIDVALIDITY and UID).
        case uwIMAP = "uw-imap"
        /// Cyrus 2.1.4 and later (its `uidl_format: cyrus`).
        case cyrus
        /// Cyrus up to 2.1.3 (later Cyrus: `uidl_format: uidonly`).
        case cyrusOld = "cyrus-old"
        case courierV0 = "courier-v0"
        case courierV1 = "courier-v1"
        case courierV2 = "courier-v2"
        case courierV3 = "courier-v3"
        /// tpop3d: the MD5 of the Maildir file name (`%Mf`).
        case tpop3d

        /// The `pop3_uidl_format` equivalent; nil when it cannot be computed from what IMAP shows.
        public var format: String? {
            switch self {
            case .dovecot: "%08Xu%08Xv"
            case .dovecot099, .cyrus: "%v.%u"
            case .uwIMAP: "%08Xv%08Xu"
            case .cyrusOld: "%u"
            case .courierV0, .courierV1, .courierV2, .courierV3, .tpop3d: nil
            }
        }

        /// Why a preset without a format cannot be offered.
        public var refusal: String? {
            switch self {
            case .courierV0:
                "Courier's version-0 UIDLs are the Maildir file names (Dovecot's %f), which IMAP does not show; " +
                "carry them over in X-UIDL headers (uidl_source: header)"
            case .courierV1, .courierV2, .courierV3:
                "Courier's POP3 numbers messages in its own courierpop3dsizelist (UID<n>, or UID<n>-<uidvalidity> " +
                "from version 2 on), separately from the IMAP UIDs; no IMAP server shows those numbers. " +
                "Carry them over in X-UIDL headers (uidl_source: header), or write the format UID%u-%v " +
                "only if your backend's UIDs and UIDVALIDITY are known to equal them"
            case .tpop3d:
                "tpop3d's UIDLs are the MD5 of the Maildir file name (Dovecot's %Mf), which IMAP does not show"
            case .dovecot, .dovecot099, .uwIMAP, .cyrus, .cyrusOld: nil
            }
        }
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
