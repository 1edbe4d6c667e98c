import Wire

/// The value of the first field in a header block as `BODY[HEADER.FIELDS (NAME)]` returns it
/// (RFC 3501 §6.4.5: the matching field lines, then a blank line), read from the body's bytes as they
/// stream in (`fetchBodyBytes`).
///
///     X-UIDL: 1b7c2a55f0e4b9d8\r\n
///     \r\n
///
/// gives `1b7c2a55f0e4b9d8` for `X-UIDL`. Bounded: only the first `capacity` bytes are kept, so a
/// hostile or broken header costs no more memory than that. A first line that does not end within them,
/// a folded value (the next line starts with a space or tab) or another field first give nil: the
/// caller then has no value, never a cut or joined one.
public struct HeaderFieldScanner: Sendable, Equatable {
    /// More than any value a POP3 UIDL may have (70 octets, RFC 1939 §7) with its field name and spacing.
    public static let capacity = 256

    private var kept: [UInt8] = []
    /// All bytes fed, kept or not.
    public private(set) var byteCount = 0

    public init() {}

    public mutating func feed(_ bytes: some Collection<UInt8>) {
        byteCount += bytes.count
        let room = Self.capacity - kept.count
        guard room > 0 else { return }
        kept.append(contentsOf: bytes.prefix(room))
    }

    /// The first line's value when it is the field `name` (matched case-insensitively, RFC 5322 §1.2.2),
    /// with the spaces and tabs around it removed; nil when there is none or it cannot be read whole.
    public func value(of name: String) -> ArraySlice<UInt8>? {
        let bytes = kept[...]
        guard let lf = bytes.firstIndex(of: ASCII.lf), lf > bytes.startIndex, bytes[lf - 1] == ASCII.cr else { return nil }
        // The byte after the line must be known: a space or tab there would continue (fold) the value.
        if lf + 1 < bytes.endIndex {
            let next = bytes[lf + 1]
            if next == ASCII.space || next == Self.tab { return nil }
        } else if byteCount > kept.count {
            return nil
        }
        let line = bytes[..<(lf - 1)]
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        var fieldName = line[..<colon]
        while let last = fieldName.last, last == ASCII.space || last == Self.tab { fieldName = fieldName.dropLast() }
        guard ASCII.equalsIgnoringCase(fieldName, name.utf8) else { return nil }
        var value = line[(colon + 1)...]
        while let first = value.first, first == ASCII.space || first == Self.tab { value = value.dropFirst() }
        while let last = value.last, last == ASCII.space || last == Self.tab { value = value.dropLast() }
        return value
    }

    static let tab: UInt8 = 0x09
}
