/// What the fuzz targets share: a cursor that turns libFuzzer's bytes into decisions, and the check
/// that turns a broken invariant into a crash libFuzzer records.

/// Reads decisions off the fuzzer's input, front to back. Running out is not an error: every read
/// has a default, so a short input is just a short scenario.
public struct FuzzInput {
    public let bytes: [UInt8]
    public private(set) var index = 0

    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    }

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    public var isAtEnd: Bool { index >= bytes.count }
    public var remaining: Int { bytes.count - index }

    /// The next byte, or `fallback` when the input is used up.
    public mutating func byte(or fallback: UInt8 = 0) -> UInt8 {
        guard index < bytes.count else { return fallback }
        defer { index += 1 }
        return bytes[index]
    }

    /// Up to `count` bytes.
    public mutating func take(_ count: Int) -> [UInt8] {
        let end = Swift.min(bytes.count, index + Swift.max(0, count))
        defer { index = end }
        return Array(bytes[index..<end])
    }

    /// Everything not read yet.
    public mutating func rest() -> [UInt8] { take(remaining) }
}

/// Cuts `data` into consecutive chunks whose lengths come from `lengths` (cycled; a length byte of 0
/// means "the rest"), so the fuzzer chooses every split point. Empty `lengths`: one chunk.
public func chunks(of data: [UInt8], lengths: [UInt8]) -> [[UInt8]] {
    guard !lengths.isEmpty else { return [data] }
    var result: [[UInt8]] = []
    var start = 0
    var turn = 0
    while start < data.count {
        let length = Int(lengths[turn % lengths.count])
        turn += 1
        let end = length == 0 ? data.count : Swift.min(data.count, start + length)
        result.append(Array(data[start..<end]))
        start = end
    }
    return result
}

/// Replaces LF not preceded by CR with CRLF (what "CRLF-normalised" means in these targets).
public func normalizedCRLF(_ data: [UInt8]) -> [UInt8] {
    var output: [UInt8] = []
    output.reserveCapacity(data.count + data.count / 8)
    var previous: UInt8? = nil
    for byte in data {
        if byte == 10 && previous != 13 { output.append(13) }
        output.append(byte)
        previous = byte
    }
    return output
}

/// Crashes with `message` (and a printable dump of `context`) unless `condition` holds: the fuzz
/// targets' assert, kept in release builds.
public func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                  context: @autoclosure () -> [UInt8] = [], file: StaticString = #fileID, line: UInt = #line) {
    guard !condition() else { return }
    let dump = context()
    var text = "fuzz invariant broken: \(message())"
    if !dump.isEmpty { text += "\n  bytes: \(printable(dump))" }
    fatalError(text, file: file, line: line)
}

/// Bytes as an escaped string, for crash messages.
public func printable<C: Collection>(_ bytes: C, limit: Int = 600) -> String where C.Element == UInt8 {
    var text = "\""
    for byte in bytes.prefix(limit) {
        switch byte {
        case 13: text += "\\r"
        case 10: text += "\\n"
        case 34: text += "\\\""
        case 92: text += "\\\\"
        case 32...126: text.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = String(byte, radix: 16)
            text += "\\x" + (hex.count == 1 ? "0" : "") + hex
        }
    }
    text += "\""
    if bytes.count > limit { text += "… (\(bytes.count) bytes)" }
    return text
}

extension Array where Element == UInt8 {
    public func hasPrefix(_ prefix: [UInt8]) -> Bool { count >= prefix.count && self[0..<prefix.count].elementsEqual(prefix) }
    public func hasSuffix(_ suffix: [UInt8]) -> Bool { count >= suffix.count && self[(count - suffix.count)...].elementsEqual(suffix) }
}
