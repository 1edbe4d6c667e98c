import Wire

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

    public init(_ address: IPAddress) {
        if let v4 = address.ipv4 {
            // IPv4, and ::ffff:a.b.c.d (a dual-stack socket's IPv4 peer).
            storage = .v4(v4)
        } else {
            storage = .v6Prefix(address.bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) })
        }
    }

    /// - Parameter addressBytes: 4 bytes (IPv4) or 16 bytes (IPv6), in network byte order, as in `sockaddr_in` /
    ///   `sockaddr_in6`. Anything else is not an address and gives nil.
    public init?(addressBytes: [UInt8]) {
        guard let address = IPAddress(bytes: addressBytes) else { return nil }
        self.init(address)
    }

    /// The key of a textual IPv4 or IPv6 address (`Wire.IPAddress`'s syntax); nil for anything else.
    public init?(host: String) {
        guard let address = IPAddress(host) else { return nil }
        self.init(address)
    }

    /// For logs (`client=` field): dotted quad for IPv4 (`203.0.113.7`), the prefix in RFC 5952 canonical form for
    /// IPv6 (`2001:db8:1:2::/64`, `IPAddress.description`).
    public var description: String {
        switch storage {
        case .v4(let address):
            return IPAddress(v4: address).description
        case .v6Prefix(let prefix):
            return IPAddress(v6High: prefix, low: 0).description + "/64"
        }
    }
}
