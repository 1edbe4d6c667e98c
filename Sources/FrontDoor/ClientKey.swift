/// Who a client is, for per-client limits (connections, login penalty, refusal logging).
///
/// An IPv4 address is one key. For IPv6 the key is the /64 prefix: interface identifiers are 64 bits (RFC 4291
/// §2.5.1) and SLAAC (RFC 4862) needs a whole /64 per link, so one customer or host usually gets at least a /64 and
/// counting per address would let a single attacker use 2^64 identities. (Dovecot's auth penalty masks IPv6 even
/// wider, to /48; /64 is the narrowest prefix that cannot be split further by an ordinary end site.) An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2), as a dual-stack socket reports IPv4
/// peers, is the same key as the plain IPv4 address.
public struct ClientKey: Hashable, Sendable, CustomStringConvertible {
    /// Packed so a key is cheap to hash and store: the table keeps up to `trackedClients` of them.
    private enum Storage: Hashable, Sendable {
        case v4(UInt32)
        /// The upper 64 bits of the address, in host order.
        case v6Prefix(UInt64)
    }

    private let storage: Storage

    /// - Parameter addressBytes: 4 bytes (IPv4) or 16 bytes (IPv6), in network byte order, as in `sockaddr_in` /
    ///   `sockaddr_in6`. Anything else is not an address and gives nil.
    public init?(addressBytes: [UInt8]) {
        switch addressBytes.count {
        case 4:
            storage = .v4(Self.uint32(addressBytes, from: 0))
        case 16:
            // ::ffff:a.b.c.d: ten zero bytes, then 0xff 0xff, then the IPv4 address.
            if addressBytes[0..<10].allSatisfy({ $0 == 0 }) && addressBytes[10] == 0xFF && addressBytes[11] == 0xFF {
                storage = .v4(Self.uint32(addressBytes, from: 12))
            } else {
                var prefix: UInt64 = 0
                for byte in addressBytes[0..<8] { prefix = prefix << 8 | UInt64(byte) }
                storage = .v6Prefix(prefix)
            }
        default:
            return nil
        }
    }

    private static func uint32(_ bytes: [UInt8], from start: Int) -> UInt32 {
        UInt32(bytes[start]) << 24 | UInt32(bytes[start + 1]) << 16 | UInt32(bytes[start + 2]) << 8
            | UInt32(bytes[start + 3])
    }

    /// For logs (`client=` field): dotted quad for IPv4 (`203.0.113.7`), the prefix in RFC 5952 canonical form for
    /// IPv6 (`2001:db8:1:2::/64`): lowercase hex without leading zeros, the longest run of two or more zero groups
    /// (the first on a tie) written as `::`.
    public var description: String {
        switch storage {
        case .v4(let address):
            return "\(address >> 24).\(address >> 16 & 0xFF).\(address >> 8 & 0xFF).\(address & 0xFF)"
        case .v6Prefix(let prefix):
            let groups: [UInt16] = [
                UInt16(truncatingIfNeeded: prefix >> 48), UInt16(truncatingIfNeeded: prefix >> 32),
                UInt16(truncatingIfNeeded: prefix >> 16), UInt16(truncatingIfNeeded: prefix), 0, 0, 0, 0,
            ]
            return Self.rfc5952(groups) + "/64"
        }
    }

    /// RFC 5952 §4 text for eight 16-bit groups.
    private static func rfc5952(_ groups: [UInt16]) -> String {
        // Longest run of zero groups; §4.2.2: a single zero group is not shortened.
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
}
