/// An IPv4 or IPv6 address: the one parser and printer of textual addresses in PopGate (configuration,
/// peers reported by `accept`, PROXY protocol headers, per-client keys).
///
/// Text accepted (`init(parsing:)`):
/// - IPv4: exactly four decimal parts 0...255 separated by dots, without leading zeros (`010.0.0.1` could mean
///   octal to some tools and is refused, as glibc's `inet_pton` and the PROXY protocol refuse it);
/// - IPv6: RFC 4291 §2.2: eight groups of 1...4 hex digits (either case), at most one `::` for one or more
///   zero groups, optionally ending in a dotted IPv4 address for the last 32 bits (`::ffff:192.0.2.1`).
///   Zone identifiers (`fe80::1%eth0`, RFC 4007 §11) are refused: a zone names an interface of one host and
///   means nothing in a client key, a trusted network or a forwarded address. Brackets are not part of an
///   address (see `HostPort`).
///
/// `description` is canonical: dotted quad for IPv4, RFC 5952 for IPv6 (lowercase, no leading zeros, the
/// longest run of two or more zero groups, the first on a tie, as `::`), and IPv4-mapped addresses as
/// `::ffff:192.0.2.1` (RFC 5952 §5). Parsing a description gives the same address back.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    public enum Family: Sendable, Equatable {
        case v4, v6
    }

    private enum Storage: Hashable, Sendable {
        case v4(UInt32)
        case v6(high: UInt64, low: UInt64)
    }

    private let storage: Storage

    public init(v4 value: UInt32) {
        storage = .v4(value)
    }

    /// The 128 bits of an IPv6 address, the first eight bytes in `high`.
    public init(v6High high: UInt64, low: UInt64) {
        storage = .v6(high: high, low: low)
    }

    /// 4 bytes (IPv4) or 16 bytes (IPv6) in network byte order, as in `sockaddr_in` / `sockaddr_in6` or a PROXY
    /// protocol v2 header; nil for any other count.
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        switch bytes.count {
        case 4:
            storage = .v4(bytes.reduce(0) { $0 << 8 | UInt32($1) })
        case 16:
            var high: UInt64 = 0, low: UInt64 = 0
            for (offset, byte) in bytes.enumerated() {
                if offset < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
            }
            storage = .v6(high: high, low: low)
        default:
            return nil
        }
    }

    /// Parses the text forms described on the type; the error says what is wrong.
    public init(parsing text: some StringProtocol) throws(IPAddressError) {
        self = try Self.parse(ascii: text.utf8)
    }

    /// nil where `init(parsing:)` throws.
    public init?(_ text: some StringProtocol) {
        guard let address = try? Self.parse(ascii: text.utf8) else { return nil }
        self = address
    }

    /// The same as `init(parsing:)` for ASCII bytes (a PROXY protocol v1 line), without making a String.
    public init<C: Collection>(parsingASCII bytes: C) throws(IPAddressError) where C.Element == UInt8 {
        self = try Self.parse(ascii: bytes)
    }

    public var family: Family {
        switch storage {
        case .v4: .v4
        case .v6: .v6
        }
    }

    /// Network byte order: 4 or 16 bytes.
    public var bytes: [UInt8] {
        switch storage {
        case .v4(let value):
            return (0..<4).map { UInt8(truncatingIfNeeded: value >> (24 - 8 * $0)) }
        case .v6(let high, let low):
            return (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
                + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
        }
    }

    /// The IPv4 address, for IPv4 and for IPv4-mapped IPv6 (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2, which is how a
    /// dual-stack socket reports IPv4 peers); nil for any other IPv6 address.
    public var ipv4: UInt32? {
        switch storage {
        case .v4(let value):
            return value
        case .v6(let high, let low):
            return high == 0 && low >> 32 == 0xFFFF ? UInt32(truncatingIfNeeded: low) : nil
        }
    }

    /// IPv4-mapped IPv6 as the IPv4 address it carries; every other address unchanged.
    public var unmapped: IPAddress {
        if case .v6 = storage, let v4 = ipv4 { return IPAddress(v4: v4) }
        return self
    }

    /// The address in the IPv6 space: IPv4 as its IPv4-mapped form. One space for comparing networks.
    var bits128: (high: UInt64, low: UInt64) {
        switch storage {
        case .v4(let value): (0, 0xFFFF << 32 | UInt64(value))
        case .v6(let high, let low): (high, low)
        }
    }

    public var description: String {
        switch storage {
        case .v4(let value):
            return Self.dotted(value)
        case .v6(let high, let low):
            if let v4 = ipv4 { return "::ffff:" + Self.dotted(v4) }
            var groups: [UInt16] = []
            for shift in stride(from: 48, through: 0, by: -16) { groups.append(UInt16(truncatingIfNeeded: high >> UInt64(shift))) }
            for shift in stride(from: 48, through: 0, by: -16) { groups.append(UInt16(truncatingIfNeeded: low >> UInt64(shift))) }
            return Self.rfc5952(groups)
        }
    }

    private static func dotted(_ value: UInt32) -> String {
        "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
    }

    /// RFC 5952 §4 text for eight 16-bit groups.
    private static func rfc5952(_ groups: [UInt16]) -> String {
        // Longest run of zero groups; §4.2.2: a single zero group is not shortened; §4.2.3: the first on a tie.
        var bestStart = -1, bestLength = 0
        var index = 0
        while index < groups.count {
            guard groups[index] == 0 else { index += 1; continue }
            let start = index
            while index < groups.count && groups[index] == 0 { index += 1 }
            if index - start > bestLength { bestStart = start; bestLength = index - start }
        }
        if bestLength < 2 { bestStart = -1; bestLength = 0 }
        var text = ""
        index = 0
        while index < groups.count {
            if index == bestStart {
                text += "::"
                index += bestLength
                continue
            }
            if !text.isEmpty && !text.hasSuffix(":") { text += ":" }
            text += String(groups[index], radix: 16)
            index += 1
        }
        return text
    }

    // MARK: Parsing

    /// Longer text is no address (the longest, `ffff:…:255.255.255.255`, has 45 characters).
    static let maximumTextLength = 45

    private static func parse<C: Collection>(ascii text: C) throws(IPAddressError) -> IPAddress where C.Element == UInt8 {
        guard !text.isEmpty else { throw IPAddressError("the address is empty") }
        if text.contains(UInt8(ascii: "%")) {
            throw IPAddressError("zone identifiers (\"%\" and an interface) are not supported")
        }
        guard text.count <= maximumTextLength else { throw IPAddressError("too long for an IP address") }
        let bytes = Array(text)
        if bytes.contains(UInt8(ascii: ":")) {
            let (high, low) = try parseIPv6(bytes)
            return IPAddress(v6High: high, low: low)
        }
        return IPAddress(v4: try parseIPv4(bytes[...]))
    }

    private static func parseIPv4(_ bytes: ArraySlice<UInt8>) throws(IPAddressError) -> UInt32 {
        var value: UInt32 = 0
        var parts = 0
        var index = bytes.startIndex
        while true {
            let start = index
            var part: UInt32 = 0
            while index < bytes.endIndex, ASCII.isDigit(bytes[index]), index - start < 4 {
                part = part * 10 + UInt32(bytes[index] - 48)
                index += 1
            }
            let digits = index - start
            guard digits > 0 else {
                if index < bytes.endIndex, bytes[index] != UInt8(ascii: ".") {
                    throw IPAddressError("unexpected character \(Self.quoted(bytes[index])) in an IPv4 address")
                }
                throw IPAddressError("an IPv4 address is four numbers separated by dots, e.g. 192.0.2.1")
            }
            guard part <= 255, digits <= 3 else { throw IPAddressError("each part of an IPv4 address must be 0...255") }
            guard digits == 1 || bytes[start] != UInt8(ascii: "0") else {
                throw IPAddressError("leading zeros are not allowed in an IPv4 address (octal to some tools)")
            }
            value = value << 8 | part
            parts += 1
            if index == bytes.endIndex { break }
            guard bytes[index] == UInt8(ascii: "."), parts < 4 else {
                if bytes[index] == UInt8(ascii: ".") {
                    throw IPAddressError("an IPv4 address is four numbers separated by dots, e.g. 192.0.2.1")
                }
                throw IPAddressError("unexpected character \(Self.quoted(bytes[index])) in an IPv4 address")
            }
            index += 1
        }
        guard parts == 4 else { throw IPAddressError("an IPv4 address is four numbers separated by dots, e.g. 192.0.2.1") }
        return value
    }

    private static func parseIPv6(_ bytes: [UInt8]) throws(IPAddressError) -> (UInt64, UInt64) {
        var head: [UInt16] = [], tail: [UInt16] = []
        var compressed = false
        var index = 0
        let colon = UInt8(ascii: ":")
        if bytes[0] == colon {
            guard bytes.count > 1, bytes[1] == colon else { throw IPAddressError("an IPv6 address cannot start with a single \":\"") }
            compressed = true
            index = 2
        }
        while index < bytes.count {
            let start = index
            var group: UInt32 = 0
            while index < bytes.count, let digit = hexValue(bytes[index]) {
                group = group << 4 | UInt32(digit)
                index += 1
                guard index - start <= 4 else { throw IPAddressError("an IPv6 group has at most four hex digits") }
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
                // The last 32 bits as a dotted IPv4 address.
                let v4 = try parseIPv4(bytes[start...])
                let pair: [UInt16] = [UInt16(truncatingIfNeeded: v4 >> 16), UInt16(truncatingIfNeeded: v4)]
                if compressed { tail += pair } else { head += pair }
                index = bytes.count
                break
            }
            guard index > start else {
                if bytes[index] == colon { throw IPAddressError("an IPv6 address has at most one \"::\"") }
                throw IPAddressError("unexpected character \(Self.quoted(bytes[index])) in an IPv6 address")
            }
            if compressed { tail.append(UInt16(group)) } else { head.append(UInt16(group)) }
            if index == bytes.count { break }
            guard bytes[index] == colon else {
                throw IPAddressError("unexpected character \(Self.quoted(bytes[index])) in an IPv6 address")
            }
            index += 1
            guard index < bytes.count else { throw IPAddressError("an IPv6 address cannot end with a single \":\"") }
            if bytes[index] == colon {
                guard !compressed else { throw IPAddressError("an IPv6 address has at most one \"::\"") }
                compressed = true
                index += 1
            }
            guard head.count + tail.count < 8 else { throw IPAddressError("an IPv6 address has eight groups") }
        }
        let count = head.count + tail.count
        if compressed {
            guard count <= 7 else { throw IPAddressError("an IPv6 address has eight groups (\"::\" stands for at least one)") }
        } else {
            guard count == 8 else { throw IPAddressError("an IPv6 address has eight groups, or fewer with \"::\"") }
        }
        let groups = head + [UInt16](repeating: 0, count: 8 - count) + tail
        var high: UInt64 = 0, low: UInt64 = 0
        for group in groups[0..<4] { high = high << 16 | UInt64(group) }
        for group in groups[4..<8] { low = low << 16 | UInt64(group) }
        return (high, low)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 48...57: byte - 48
        case 65...70: byte - 55
        case 97...102: byte - 87
        default: nil
        }
    }

    private static func quoted(_ byte: UInt8) -> String {
        byte >= 0x21 && byte < 0x7F ? "\"\(Character(Unicode.Scalar(byte)))\"" : "0x" + String(byte, radix: 16)
    }
}

/// Why text is not an IP address, a network or a `host:port`: one sentence, without the text itself.
public struct IPAddressError: Error, Equatable, Sendable, CustomStringConvertible {
    public let reason: String

    public init(_ reason: String) {
        self.reason = reason
    }

    public var description: String { reason }
}

/// An address prefix in CIDR notation (RFC 4632 §3.1, RFC 4291 §2.3): `10.0.0.0/8`, `2001:db8::/32`, or a single
/// address (`192.0.2.7` is `192.0.2.7/32`, `::1` is `::1/128`).
///
/// Bits after the prefix must be zero (`10.0.0.1/8` is refused, naming `10.0.0.0/8`): a typo in a trusted network
/// should not silently widen or narrow it. IPv4 and IPv4-mapped IPv6 are one space: `127.0.0.0/8` contains
/// `::ffff:127.0.0.1`, as a dual-stack socket reports that peer, and `::/0` contains every IPv4 address.
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    /// nil when `prefixLength` is outside 0...32 (IPv4) or 0...128 (IPv6) or `address` has bits set after it.
    public init?(address: IPAddress, prefixLength: Int) {
        let limit = address.family == .v4 ? 32 : 128
        guard prefixLength >= 0, prefixLength <= limit else { return nil }
        self.address = address
        self.prefixLength = prefixLength
        guard Self.masked(address.bits128, mappedPrefixLength) == address.bits128 else { return nil }
    }

    public init(parsing text: some StringProtocol) throws(IPAddressError) {
        let utf8 = Array(text.utf8)
        let slash = utf8.firstIndex(of: UInt8(ascii: "/"))
        let address = try IPAddress(parsingASCII: utf8[..<(slash ?? utf8.endIndex)])
        let limit = address.family == .v4 ? 32 : 128
        var length = limit
        if let slash {
            let digits = utf8[(slash + 1)...]
            guard !digits.isEmpty, digits.count <= 3, digits.allSatisfy(ASCII.isDigit),
                  digits.count == 1 || digits.first != UInt8(ascii: "0") else {
                throw IPAddressError("the prefix length after \"/\" must be a number 0...\(limit)")
            }
            length = digits.reduce(0) { $0 * 10 + Int($1 - 48) }
            guard length <= limit else { throw IPAddressError("the prefix length after \"/\" must be a number 0...\(limit)") }
        }
        guard let network = IPNetwork(address: address, prefixLength: length) else {
            let bits = Self.masked(address.bits128, address.family == .v4 ? 96 + length : length)
            let base = address.family == .v4 ? IPAddress(v4: UInt32(truncatingIfNeeded: bits.low)) : IPAddress(v6High: bits.high, low: bits.low)
            throw IPAddressError("bits are set after the /\(length) prefix (the network is \(base)/\(length))")
        }
        self = network
    }

    /// The prefix length in the IPv6 space (IPv4 networks sit under ::ffff:0:0/96).
    private var mappedPrefixLength: Int { address.family == .v4 ? 96 + prefixLength : prefixLength }

    public func contains(_ other: IPAddress) -> Bool {
        let length = mappedPrefixLength
        return Self.masked(other.bits128, length) == Self.masked(address.bits128, length)
    }

    private static func masked(_ bits: (high: UInt64, low: UInt64), _ length: Int) -> (high: UInt64, low: UInt64) {
        func mask(_ ones: Int) -> UInt64 { ones <= 0 ? 0 : ones >= 64 ? .max : ~(UInt64.max >> UInt64(ones)) }
        return (bits.high & mask(length), bits.low & mask(length - 64))
    }

    public var description: String { "\(address)/\(prefixLength)" }
}
