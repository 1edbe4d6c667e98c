import ProxyProtocol
import Wire
import XCTest

final class ProxyHeaderParserTests: XCTestCase {
    private func ip(_ text: String) -> IPAddress { IPAddress(text)! }

    private func endpoints(_ source: String, _ sourcePort: UInt16, _ destination: String, _ destinationPort: UInt16) -> ProxyHeader.Endpoints {
        ProxyHeader.Endpoints(source: ip(source), sourcePort: sourcePort, destination: ip(destination), destinationPort: destinationPort)
    }

    /// Parses `bytes` whole, one byte at a time and in chunks of 3, and checks the three agree.
    private func parse(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> ProxyHeaderParser.Step {
        var whole = ProxyHeaderParser()
        let expected = whole.parse(bytes)
        for size in [1, 3] {
            var parser = ProxyHeaderParser()
            var outcome = ProxyHeaderParser.Step.needMore
            var rest: [UInt8] = []
            var start = 0
            while start < bytes.count {
                let chunk = bytes[start..<min(bytes.count, start + size)]
                start += size
                switch outcome {
                case .needMore:
                    outcome = parser.parse(chunk)
                case .header:
                    rest += chunk
                case .failed:
                    break
                }
            }
            if case .header(let header, let first) = outcome { outcome = .header(header, rest: first + rest) }
            XCTAssertEqual(outcome, expected, "split into \(size)-byte reads", file: file, line: line)
            XCTAssertLessThanOrEqual(parser.bufferedCount, 16 + ProxyHeaderParser.maxV2PayloadLength, file: file, line: line)
        }
        return expected
    }

    private func v1(_ line: String, then rest: [UInt8] = []) -> ProxyHeaderParser.Step { parse(Array(line.utf8) + rest) }

    // MARK: v1

    func testV1TCP4() {
        let pipelined = Array("CAPA\r\n".utf8)
        XCTAssertEqual(v1("PROXY TCP4 192.0.2.1 198.51.100.2 50812 995\r\n", then: pipelined),
                       .header(ProxyHeader(version: .v1, endpoints: endpoints("192.0.2.1", 50812, "198.51.100.2", 995), length: 45), rest: pipelined))
        XCTAssertEqual(v1("PROXY TCP4 255.255.255.255 0.0.0.0 65535 0\r\n"),
                       .header(ProxyHeader(version: .v1, endpoints: endpoints("255.255.255.255", 65535, "0.0.0.0", 0), length: 44), rest: []))
    }

    func testV1TCP6() {
        XCTAssertEqual(v1("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n"),
                       .header(ProxyHeader(version: .v1, endpoints: endpoints("2001:db8::1", 1, "2001:db8::2", 2), length: 40), rest: []))
        let longest = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"
        XCTAssertEqual(longest.utf8.count, 104)
        guard case .header(let header, _) = v1(longest) else { return XCTFail("\(v1(longest))") }
        XCTAssertEqual(header.endpoints?.source.description, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        // IPv4-mapped IPv6 is an IPv6 address: allowed with TCP6.
        guard case .header(let mapped, _) = v1("PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n") else { return XCTFail() }
        XCTAssertEqual(mapped.endpoints?.source.ipv4, 0xC000_0201)
    }

    func testV1Unknown() {
        XCTAssertEqual(v1("PROXY UNKNOWN\r\n", then: [0x16, 3, 1]), .header(ProxyHeader(version: .v1, endpoints: nil, length: 15), rest: [0x16, 3, 1]))
        // "the receiver must ignore anything presented before the CRLF is found"
        let worst = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"
        XCTAssertEqual(worst.utf8.count, ProxyHeaderParser.maxV1Length)
        XCTAssertEqual(v1(worst), .header(ProxyHeader(version: .v1, endpoints: nil, length: 107), rest: []))
        XCTAssertEqual(v1("PROXY UNKNOWN whatever\r\n"), .header(ProxyHeader(version: .v1, endpoints: nil, length: 24), rest: []))
    }

    func testV1Bounds() {
        let tooLong = "PROXY UNKNOWN " + String(repeating: "f", count: 92) + "\r\n"
        XCTAssertEqual(tooLong.utf8.count, 108)
        XCTAssertEqual(v1(tooLong), .failed(.v1TooLong))
        // No CRLF at all: fails at byte 107, without waiting for more.
        var parser = ProxyHeaderParser()
        XCTAssertEqual(parser.parse(Array(("PROXY TCP4 " + String(repeating: "1", count: 95)).utf8)), .needMore)
        XCTAssertEqual(parser.parse([UInt8(ascii: "1")]), .failed(.v1TooLong))
        XCTAssertEqual(parser.parse(Array("\r\n".utf8)), .failed(.v1TooLong), "a failed parser stays failed")
    }

    func testV1SyntaxErrors() {
        let cases: [(String, String)] = [
            ("PROXY TCP4 192.0.2.1 198.51.100.2 50812 995\n", "LF without CR"),
            ("PROXY TCP4 192.0.2.1 198.51.100.2 50812 995\rX", "CR without LF"),
            ("PROXY TCP4 192.0.2.1  198.51.100.2 50812 995\r\n", "expected TCP4 source destination source-port destination-port, separated by single spaces"),
            ("PROXY TCP4 192.0.2.1 198.51.100.2 50812\r\n", "expected TCP4 source destination source-port destination-port, separated by single spaces"),
            ("PROXY TCP4 192.0.2.1 198.51.100.2 50812 995 \r\n", "expected TCP4 source destination source-port destination-port, separated by single spaces"),
            ("PROXY TCP4 192.0.2.01 198.51.100.2 50812 995\r\n", "address: leading zeros are not allowed in an IPv4 address (octal to some tools)"),
            ("PROXY TCP4 2001:db8::1 198.51.100.2 50812 995\r\n", "TCP4 with an address of the other family"),
            ("PROXY TCP6 192.0.2.1 2001:db8::1 50812 995\r\n", "TCP6 with an address of the other family"),
            ("PROXY TCP6 fe80::1%eth0 2001:db8::1 50812 995\r\n", "address: zone identifiers (\"%\" and an interface) are not supported"),
            ("PROXY TCP4 192.0.2.1 198.51.100.2 050812 995\r\n", "a port must be 0...65535 without leading zeros"),
            ("PROXY TCP4 192.0.2.1 198.51.100.2 65536 995\r\n", "a port must be 0...65535 without leading zeros"),
            ("PROXY TCP4 192.0.2.1 198.51.100.2 -1 995\r\n", "a port must be 0...65535 without leading zeros"),
            ("PROXY TCP5 192.0.2.1 198.51.100.2 1 2\r\n", "protocol \"TCP5\", expected TCP4, TCP6 or UNKNOWN"),
            ("PROXY tcp4 192.0.2.1 198.51.100.2 1 2\r\n", "protocol \"tcp4\", expected TCP4, TCP6 or UNKNOWN"),
            ("PROXY \r\n", "protocol \"\", expected TCP4, TCP6 or UNKNOWN"),
            ("PROXY TCP4 192.0.2.1\t198.51.100.2 1 2\r\n", "a byte that is not printable ASCII"),
        ]
        for (line, reason) in cases {
            XCTAssertEqual(v1(line), .failed(.v1Syntax(reason)), line.debugDescription)
        }
    }

    func testGarbageFailsOnTheFirstWrongByte() {
        var parser = ProxyHeaderParser()
        XCTAssertEqual(parser.parse(Array("USER alice\r\n".utf8)), .failed(.signature))
        parser = ProxyHeaderParser()
        XCTAssertEqual(parser.parse([0x16, 0x03, 0x01]), .failed(.signature), "a TLS ClientHello sent straight to a PROXY listener")
        parser = ProxyHeaderParser()
        XCTAssertEqual(parser.parse(Array("PROX".utf8)), .needMore)
        XCTAssertEqual(parser.parse(Array("Z".utf8)), .failed(.signature))
        XCTAssertEqual(v1("PROXY"), .needMore)
        XCTAssertEqual(v1("proxy TCP4"), .failed(.signature))
        XCTAssertEqual(parse([]), .needMore)
        XCTAssertEqual(ProxyHeaderError.signature.description, "not a PROXY protocol header (neither \"PROXY \" nor the v2 signature)")
    }

    // MARK: v2

    private let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]

    private func v2(command: UInt8 = 0x21, family: UInt8, payload: [UInt8], lengthField: Int? = nil) -> [UInt8] {
        let length = lengthField ?? payload.count
        return signature + [command, family, UInt8(length >> 8), UInt8(length & 0xFF)] + payload
    }

    func testV2TCP4() {
        let payload: [UInt8] = [192, 0, 2, 1, 198, 51, 100, 2, 0xC6, 0x7C, 0x03, 0xE3]
        let hello: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0x05]
        XCTAssertEqual(parse(v2(family: 0x11, payload: payload) + hello),
                       .header(ProxyHeader(version: .v2, endpoints: endpoints("192.0.2.1", 50812, "198.51.100.2", 995), length: 28), rest: hello))
    }

    func testV2TCP6WithTLVs() {
        let source = ip("2001:db8::1").bytes, destination = ip("2001:db8::2").bytes
        // PP2_TYPE_ALPN "pop3" and a PP2_TYPE_NOOP of 200 bytes: skipped.
        let tlvs: [UInt8] = [0x01, 0x00, 0x04] + Array("pop3".utf8) + [0x04, 0x00, 200] + [UInt8](repeating: 0, count: 200)
        let bytes = v2(family: 0x21, payload: source + destination + [0, 1, 0, 2] + tlvs)
        XCTAssertEqual(parse(bytes + Array("CAPA\r\n".utf8)),
                       .header(ProxyHeader(version: .v2, endpoints: endpoints("2001:db8::1", 1, "2001:db8::2", 2), length: bytes.count), rest: Array("CAPA\r\n".utf8)))
    }

    func testV2LocalUsesTheRealPeer() {
        // HAProxy's `check send-proxy-v2`: LOCAL, AF_UNSPEC, no addresses.
        XCTAssertEqual(parse(v2(command: 0x20, family: 0x00, payload: []) + [0x2A]),
                       .header(ProxyHeader(version: .v2, endpoints: nil, length: 16), rest: [0x2A]))
        // LOCAL ignores whatever address block it carries, also one too short for its family.
        XCTAssertEqual(parse(v2(command: 0x20, family: 0x11, payload: [1, 2, 3])),
                       .header(ProxyHeader(version: .v2, endpoints: nil, length: 19), rest: []))
    }

    func testV2UnsupportedFamiliesFallBackToTheRealPeer() {
        // AF_UNSPEC, AF_UNIX (stream and datagram), UDP over IPv4/IPv6: "falls back to the UNSPEC mode".
        XCTAssertEqual(parse(v2(family: 0x00, payload: [])), .header(ProxyHeader(version: .v2, endpoints: nil, length: 16), rest: []))
        for family: UInt8 in [0x31, 0x32] {
            XCTAssertEqual(parse(v2(family: family, payload: [UInt8](repeating: 0x41, count: 216))),
                           .header(ProxyHeader(version: .v2, endpoints: nil, length: 232), rest: []))
        }
        XCTAssertEqual(parse(v2(family: 0x12, payload: [UInt8](repeating: 1, count: 12))), .header(ProxyHeader(version: .v2, endpoints: nil, length: 28), rest: []))
        XCTAssertEqual(parse(v2(family: 0x22, payload: [UInt8](repeating: 1, count: 36))), .header(ProxyHeader(version: .v2, endpoints: nil, length: 52), rest: []))
    }

    func testV2Errors() {
        XCTAssertEqual(parse(v2(command: 0x11, family: 0x11, payload: [])), .failed(.v2Version(1)))
        XCTAssertEqual(parse(v2(command: 0x31, family: 0x11, payload: [])), .failed(.v2Version(3)))
        XCTAssertEqual(parse(v2(command: 0x22, family: 0x11, payload: [])), .failed(.v2Command(2)))
        XCTAssertEqual(parse(v2(family: 0x41, payload: [])), .failed(.v2FamilyProtocol(0x41)))
        XCTAssertEqual(parse(v2(family: 0x13, payload: [])), .failed(.v2FamilyProtocol(0x13)))
        XCTAssertEqual(parse(v2(family: 0x11, payload: [UInt8](repeating: 0, count: 11))), .failed(.v2AddressLength(family: 1, length: 11)))
        XCTAssertEqual(parse(v2(family: 0x21, payload: [UInt8](repeating: 0, count: 12))), .failed(.v2AddressLength(family: 2, length: 12)))
        XCTAssertEqual(parse(v2(family: 0x31, payload: [UInt8](repeating: 0, count: 36))), .failed(.v2AddressLength(family: 3, length: 36)))
        // The bound: 16 + 520 bytes is the longest header; the length field alone decides, before any payload.
        XCTAssertEqual(parse(v2(family: 0x11, payload: [], lengthField: 521)), .failed(.v2TooLong(521)))
        XCTAssertEqual(parse(v2(family: 0x11, payload: [], lengthField: 65535)), .failed(.v2TooLong(65535)))
        let longest = v2(family: 0x11, payload: [UInt8](repeating: 7, count: 520))
        guard case .header(let header, let rest) = parse(longest) else { return XCTFail() }
        XCTAssertEqual(header.length, 536)
        XCTAssertEqual(rest, [])
        // A wrong signature byte anywhere in the 12 fails on that byte.
        for position in 1..<12 {
            var bytes = v2(family: 0x11, payload: [UInt8](repeating: 0, count: 12))
            bytes[position] ^= 0x20
            var parser = ProxyHeaderParser()
            XCTAssertEqual(parser.parse(bytes[...position]), .failed(.signature), "byte \(position)")
        }
        XCTAssertEqual(ProxyHeaderError.v2TooLong(600).description, "PROXY v2: 600 bytes of addresses and TLVs, more than the 520 accepted")
    }

    func testV2NeedsTheWholePayload() {
        var parser = ProxyHeaderParser()
        let bytes = v2(family: 0x11, payload: [10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2])
        XCTAssertEqual(parser.parse(bytes.dropLast()), .needMore)
        XCTAssertEqual(parser.bufferedCount, 27)
        guard case .header(let header, let rest) = parser.parse(bytes.suffix(1) + [9, 9]) else { return XCTFail() }
        XCTAssertEqual(header.endpoints, endpoints("10.0.0.1", 1, "10.0.0.2", 2))
        XCTAssertEqual(rest, [9, 9])
        XCTAssertEqual(parser.bufferedCount, 0)
        // Later input is all `rest`, with the same header.
        XCTAssertEqual(parser.parse([1, 2]), .header(header, rest: [1, 2]))
    }
}
