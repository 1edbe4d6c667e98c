/// A credential (password, SASL payload) that must never reach a log.
///
/// Redacted by construction: `description`, `debugDescription` and string
/// interpolation all print `<redacted>`. The raw bytes are reachable only
/// through `withBytes`/`bytes`, which call sites that put the secret on the
/// wire use and nothing else should.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public init(_ string: String) { self.bytes = Array(string.utf8) }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var isEmpty: Bool { bytes.isEmpty }
}
