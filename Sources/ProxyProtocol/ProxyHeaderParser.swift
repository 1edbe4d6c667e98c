import Wire

/// What a PROXY protocol header (HAProxy's "PROXY protocol" specification, versions 1 and 2) says about the
/// connection a proxy relayed.
public struct ProxyHeader: Equatable, Sendable {
    public enum Version: Sendable, Equatable {
        /// The text line, `PROXY TCP4 192.0.2.1 198.51.100.2 50812 995\r\n`.
        case v1
        /// The binary header after the 12-byte signature.
        case v2
    }

    /// The relayed connection: the client (`source`) and the address it connected to (`destination`).
    public struct Endpoints: Equatable, Sendable {
        public var source: IPAddress
        public var sourcePort: UInt16
        public var destination: IPAddress
        public var destinationPort: UInt16

        public init(source: IPAddress, sourcePort: UInt16, destination: IPAddress, destinationPort: UInt16) {
            self.source = source
            self.sourcePort = sourcePort
            self.destination = destination
            self.destinationPort = destinationPort
        }
    }

    public var version: Version
    /// nil: use the connection's own endpoints. That is what the specification asks for v2 `LOCAL` (the
    /// proxy's own connection, e.g. a health check), v1 `UNKNOWN`, and v2 `PROXY` with a family or protocol
    /// the receiver does not implement (AF_UNSPEC, AF_UNIX, UDP: "falls back to the UNSPEC mode").
    public var endpoints: Endpoints?
    /// Bytes the header took on the wire (v1 line with its CRLF; v2 16 + length, TLVs included).
    public var length: Int

    public init(version: Version, endpoints: Endpoints?, length: Int) {
        self.version = version
        self.endpoints = endpoints
        self.length = length
    }
}

/// Why the first bytes of a connection are not a PROXY protocol header this receiver accepts. The specification:
/// "Any sequence which does not exactly match the protocol must be discarded and cause the receiver to abort
/// the connection."
public enum ProxyHeaderError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Neither `PROXY ` (v1) nor the v2 signature: a client that speaks to the listener directly, or a proxy
    /// not configured to send the header.
    case signature
    /// No CRLF in the first 107 bytes (the longest valid line).
    case v1TooLong
    /// A v1 line that does not match the grammar; the reason names the part.
    case v1Syntax(String)
    /// The version nibble of byte 13 is not 2.
    case v2Version(UInt8)
    /// The command nibble of byte 13 is neither LOCAL (0) nor PROXY (1).
    case v2Command(UInt8)
    /// Byte 14: a family above AF_UNIX (3) or a protocol above DGRAM (2).
    case v2FamilyProtocol(UInt8)
    /// Fewer address bytes than the family needs (12 for TCP4, 36 for TCP6, 216 for UNIX).
    case v2AddressLength(family: UInt8, length: Int)
    /// The length field is above `ProxyHeaderParser.maxV2PayloadLength`.
    case v2TooLong(Int)

    public var description: String {
        switch self {
        case .signature: "not a PROXY protocol header (neither \"PROXY \" nor the v2 signature)"
        case .v1TooLong: "PROXY v1 line without CRLF in its first \(ProxyHeaderParser.maxV1Length) bytes"
        case .v1Syntax(let reason): "PROXY v1: \(reason)"
        case .v2Version(let version): "PROXY v2: version \(version), only 2 is defined"
        case .v2Command(let command): "PROXY v2: command \(command), only LOCAL (0) and PROXY (1) are defined"
        case .v2FamilyProtocol(let byte): "PROXY v2: undefined address family/protocol byte 0x\(String(byte, radix: 16))"
        case .v2AddressLength(let family, let length): "PROXY v2: \(length) address bytes, too few for family \(family)"
        case .v2TooLong(let length): "PROXY v2: \(length) bytes of addresses and TLVs, more than the \(ProxyHeaderParser.maxV2PayloadLength) accepted"
        }
    }
}

/// Reads a PROXY protocol header (v1 or v2, whichever the first byte announces) off the start of a connection.
///
/// A pure state machine: feed it the bytes as they arrive, in any split (one byte at a time works), and it
/// answers `.needMore`, `.header(_, rest:)` with the bytes that followed the header in the same input (a
/// pipelined TLS ClientHello or POP3 command: the caller must process them), or `.failed`. It holds at most
/// `maxV1Length` or 16 + `maxV2PayloadLength` bytes, and fails as soon as a byte cannot belong to a valid
/// header (a client that talks POP3 or TLS to a PROXY listener fails on its first byte). It never reads past
/// the header. After `.header` every later input is returned as `rest` with the same header; after `.failed`
/// the same error comes back.
public struct ProxyHeaderParser: Sendable {
    /// The longest v1 line, CRLF included (`PROXY UNKNOWN` with two full IPv6 addresses and ports).
    public static let maxV1Length = 107
    /// The most bytes of addresses and TLVs accepted after a v2 header's 16 fixed bytes. The specification allows
    /// 65535; 520 holds the largest address block (AF_UNIX, 216 bytes) and a few hundred bytes of TLVs (TLS
    /// details, ALPN, a unique id), which are skipped. A whole v2 header is at most 536 bytes.
    public static let maxV2PayloadLength = 520

    public enum Step: Equatable, Sendable {
        case needMore
        case header(ProxyHeader, rest: [UInt8])
        case failed(ProxyHeaderError)
    }

    private enum State: Sendable {
        case reading
        case done(ProxyHeader)
        case failed(ProxyHeaderError)
    }

    static let v1Prefix: [UInt8] = Array("PROXY ".utf8)
    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    private var state = State.reading
    private var buffer: [UInt8] = []

    public init() {}

    /// Bytes held so far (never more than a header can have).
    public var bufferedCount: Int { buffer.count }

    public mutating func parse<C: Collection>(_ bytes: C) -> Step where C.Element == UInt8 {
        switch state {
        case .done(let header): return .header(header, rest: Array(bytes))
        case .failed(let error): return .failed(error)
        case .reading: break
        }
        var index = bytes.startIndex
        while index != bytes.endIndex {
            buffer.append(bytes[index])
            bytes.formIndex(after: &index)
            switch advance() {
            case nil:
                continue
            case .success(let header):
                state = .done(header)
                buffer = []
                return .header(header, rest: Array(bytes[index...]))
            case .failure(let error):
                state = .failed(error)
                buffer = []
                return .failed(error)
            }
        }
        return .needMore
    }

    /// Looks at the byte just appended: nil while the header may still be valid and is not complete.
    private func advance() -> Result<ProxyHeader, ProxyHeaderError>? {
        let count = buffer.count
        let byte = buffer[count - 1]
        switch buffer[0] {
        case Self.v1Prefix[0]:
            if count <= Self.v1Prefix.count {
                return byte == Self.v1Prefix[count - 1] ? nil : .failure(.signature)
            }
            return advanceV1(byte, count)
        case Self.v2Signature[0]:
            if count <= Self.v2Signature.count {
                return byte == Self.v2Signature[count - 1] ? nil : .failure(.signature)
            }
            return advanceV2(byte, count)
        default:
            return .failure(.signature)
        }
    }

    // MARK: v1

    private func advanceV1(_ byte: UInt8, _ count: Int) -> Result<ProxyHeader, ProxyHeaderError>? {
        let previous = buffer[count - 2]
        if previous == ASCII.cr && byte != ASCII.lf { return .failure(.v1Syntax("CR without LF")) }
        if byte == ASCII.lf {
            guard previous == ASCII.cr else { return .failure(.v1Syntax("LF without CR")) }
            return Self.parseV1(buffer[Self.v1Prefix.count..<(count - 2)], length: count)
        }
        guard byte == ASCII.cr || (byte >= 0x20 && byte < 0x7F) else {
            return .failure(.v1Syntax("a byte that is not printable ASCII"))
        }
        return count >= Self.maxV1Length ? .failure(.v1TooLong) : nil
    }

    /// `TCP4|TCP6 SP src SP dst SP srcport SP dstport`, or `UNKNOWN` with anything after it.
    private static func parseV1(_ line: ArraySlice<UInt8>, length: Int) -> Result<ProxyHeader, ProxyHeaderError> {
        let fields = line.split(separator: ASCII.space, omittingEmptySubsequences: false)
        let proto = String(decoding: fields[0], as: UTF8.self)
        if proto == "UNKNOWN" { return .success(ProxyHeader(version: .v1, endpoints: nil, length: length)) }
        let family: IPAddress.Family
        switch proto {
        case "TCP4": family = .v4
        case "TCP6": family = .v6
        default: return .failure(.v1Syntax("protocol \"\(ASCII.sanitized(fields[0], limit: 16))\", expected TCP4, TCP6 or UNKNOWN"))
        }
        guard fields.count == 5 else {
            return .failure(.v1Syntax("expected \(proto) source destination source-port destination-port, separated by single spaces"))
        }
        let source: IPAddress, destination: IPAddress
        do {
            source = try IPAddress(parsingASCII: fields[1])
            destination = try IPAddress(parsingASCII: fields[2])
        } catch {
            return .failure(.v1Syntax("address: \(error.reason)"))
        }
        guard source.family == family, destination.family == family else {
            return .failure(.v1Syntax("\(proto) with an address of the other family"))
        }
        guard let sourcePort = port(fields[3]), let destinationPort = port(fields[4]) else {
            return .failure(.v1Syntax("a port must be 0...65535 without leading zeros"))
        }
        let endpoints = ProxyHeader.Endpoints(source: source, sourcePort: sourcePort, destination: destination, destinationPort: destinationPort)
        return .success(ProxyHeader(version: .v1, endpoints: endpoints, length: length))
    }

    private static func port(_ text: ArraySlice<UInt8>) -> UInt16? {
        guard !text.isEmpty, text.count <= 5, text.allSatisfy(ASCII.isDigit),
              text.count == 1 || text.first != UInt8(ascii: "0") else { return nil }
        let value = text.reduce(0) { $0 * 10 + Int($1 - 48) }
        return value <= 65_535 ? UInt16(value) : nil
    }

    // MARK: v2

    private func advanceV2(_ byte: UInt8, _ count: Int) -> Result<ProxyHeader, ProxyHeaderError>? {
        switch count {
        case 13:
            guard byte >> 4 == 2 else { return .failure(.v2Version(byte >> 4)) }
            guard byte & 0x0F <= 1 else { return .failure(.v2Command(byte & 0x0F)) }
            return nil
        case 14:
            guard byte >> 4 <= 3, byte & 0x0F <= 2 else { return .failure(.v2FamilyProtocol(byte)) }
            return nil
        case 15:
            return nil
        default:
            let payload = Int(buffer[14]) << 8 | Int(buffer[15])
            if count == 16 {
                guard payload <= Self.maxV2PayloadLength else { return .failure(.v2TooLong(payload)) }
                let isProxy = buffer[12] & 0x0F == 1
                let family = buffer[13] >> 4
                let needed = [0, 12, 36, 216][Int(family)]
                // LOCAL ignores the address block, whatever it holds.
                if isProxy && payload < needed { return .failure(.v2AddressLength(family: family, length: payload)) }
            }
            return count == 16 + payload ? .success(decodeV2(payloadLength: payload)) : nil
        }
    }

    private func decodeV2(payloadLength: Int) -> ProxyHeader {
        let length = 16 + payloadLength
        let isProxy = buffer[12] & 0x0F == 1
        let familyProtocol = buffer[13]
        guard isProxy, familyProtocol == 0x11 || familyProtocol == 0x21 else {
            // LOCAL, or a family/protocol this receiver does not implement: the connection's own endpoints.
            return ProxyHeader(version: .v2, endpoints: nil, length: length)
        }
        let size = familyProtocol == 0x11 ? 4 : 16
        let start = 16
        // Lengths were checked at byte 16: both addresses and both ports are there; what follows are TLVs.
        let source = IPAddress(bytes: buffer[start..<(start + size)])!
        let destination = IPAddress(bytes: buffer[(start + size)..<(start + 2 * size)])!
        let ports = start + 2 * size
        let sourcePort = UInt16(buffer[ports]) << 8 | UInt16(buffer[ports + 1])
        let destinationPort = UInt16(buffer[ports + 2]) << 8 | UInt16(buffer[ports + 3])
        let endpoints = ProxyHeader.Endpoints(source: source, sourcePort: sourcePort, destination: destination, destinationPort: destinationPort)
        return ProxyHeader(version: .v2, endpoints: endpoints, length: length)
    }
}
