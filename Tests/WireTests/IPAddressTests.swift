import Wire
import XCTest

final class IPAddressTests: XCTestCase {
    private func parse(_ text: String) -> IPAddress? { IPAddress(text) }

    private func error(_ text: String) -> String? {
        do {
            _ = try IPAddress(parsing: text)
            return nil
        } catch {
            return error.reason
        }
    }

    // MARK: IPv4

    func testIPv4() throws {
        let address = try XCTUnwrap(parse("203.0.113.7"))
        XCTAssertEqual(address.family, .v4)
        XCTAssertEqual(address.bytes, [203, 0, 113, 7])
        XCTAssertEqual(address.ipv4, 0xCB00_7107)
        XCTAssertEqual(address.description, "203.0.113.7")
        XCTAssertEqual(parse("0.0.0.0")?.bytes, [0, 0, 0, 0])
        XCTAssertEqual(parse("255.255.255.255")?.bytes, [255, 255, 255, 255])
        XCTAssertEqual(parse("10.0.100.1")?.description, "10.0.100.1")
    }

    func testIPv4Errors() {
        XCTAssertEqual(error("010.0.0.1"), "leading zeros are not allowed in an IPv4 address (octal to some tools)")
        XCTAssertEqual(error("1.2.3.00"), "leading zeros are not allowed in an IPv4 address (octal to some tools)")
        XCTAssertEqual(error("256.0.0.1"), "each part of an IPv4 address must be 0...255")
        XCTAssertEqual(error("1.2.3.1000"), "each part of an IPv4 address must be 0...255")
        for text in ["1.2.3", "1.2.3.4.5", "1..2.3", ".1.2.3", "1.2.3.", "1"] {
            XCTAssertEqual(error(text), "an IPv4 address is four numbers separated by dots, e.g. 192.0.2.1", text)
        }
        XCTAssertEqual(error("1.2.3.4 "), "unexpected character 0x20 in an IPv4 address")
        XCTAssertEqual(error("1.2.x.4"), "unexpected character \"x\" in an IPv4 address")
        XCTAssertEqual(error("localhost"), "unexpected character \"l\" in an IPv4 address")
        XCTAssertEqual(error(""), "the address is empty")
        XCTAssertEqual(error("-1.2.3.4"), "unexpected character \"-\" in an IPv4 address")
        XCTAssertEqual(error("+1.2.3.4"), "unexpected character \"+\" in an IPv4 address")
    }

    // MARK: IPv6

    func testIPv6Forms() throws {
        let full = try XCTUnwrap(parse("2001:0DB8:0000:0000:0000:0000:0000:0001"))
        XCTAssertEqual(full.family, .v6)
        XCTAssertEqual(full, parse("2001:db8::1"))
        XCTAssertEqual(full.description, "2001:db8::1")
        XCTAssertEqual(full.bytes, [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1])
        XCTAssertEqual(parse("::")?.bytes, [UInt8](repeating: 0, count: 16))
        XCTAssertEqual(parse("::1")?.description, "::1")
        XCTAssertEqual(parse("1::")?.description, "1::")
        XCTAssertEqual(parse("1:2:3:4:5:6:7::")?.description, "1:2:3:4:5:6:7:0")
        XCTAssertEqual(parse("::2:3:4:5:6:7:8")?.description, "0:2:3:4:5:6:7:8")
        XCTAssertEqual(parse("1:2:3:4:5:6:7:8")?.description, "1:2:3:4:5:6:7:8")
        XCTAssertEqual(parse("fe80::1:2")?.description, "fe80::1:2")
        XCTAssertEqual(parse("::1.2.3.4")?.description, "::102:304")
        XCTAssertEqual(parse("64:ff9b::192.0.2.33")?.description, "64:ff9b::c000:221")
        XCTAssertNil(full.ipv4)
    }

    /// RFC 5952 §4: lowercase, no leading zeros, the longest zero run (first on a tie), never a single group.
    func testCanonicalText() {
        let cases = [
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
            ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
            ("2001:DB8:AAAA:BBBB:CCCC:DDDD:EEEE:0001", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1"),
            ("0:0:0:0:0:0:0:0", "::"),
        ]
        for (input, expected) in cases {
            XCTAssertEqual(parse(input)?.description, expected, input)
        }
    }

    func testIPv4MappedIPv6() throws {
        let mapped = try XCTUnwrap(parse("::ffff:203.0.113.7"))
        XCTAssertEqual(mapped.family, .v6)
        XCTAssertEqual(mapped.description, "::ffff:203.0.113.7")
        XCTAssertEqual(mapped.ipv4, 0xCB00_7107)
        XCTAssertEqual(mapped.unmapped, parse("203.0.113.7"))
        XCTAssertNotEqual(mapped, parse("203.0.113.7"), "two families, two addresses; ClientKey and IPNetwork join them")
        XCTAssertEqual(parse("::FFFF:cb00:7107"), mapped)
        XCTAssertEqual(IPAddress(bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 127, 0, 0, 1])?.description, "::ffff:127.0.0.1")
        // ::fffe:… and 1::ffff:… are not mapped.
        XCTAssertNil(parse("::fffe:203.0.113.7")?.ipv4)
        XCTAssertNil(parse("1::ffff:203.0.113.7")?.ipv4)
        XCTAssertEqual(parse("::fffe:203.0.113.7")?.unmapped.family, .v6)
    }

    func testZoneIdentifiersAreRefused() {
        for text in ["fe80::1%eth0", "fe80::1%1", "fe80::1%", "::1%lo"] {
            XCTAssertEqual(error(text), "zone identifiers (\"%\" and an interface) are not supported", text)
        }
    }

    func testIPv6Errors() {
        XCTAssertEqual(error(":1::2"), "an IPv6 address cannot start with a single \":\"")
        XCTAssertEqual(error("1::2:"), "an IPv6 address cannot end with a single \":\"")
        XCTAssertEqual(error("1::2::3"), "an IPv6 address has at most one \"::\"")
        XCTAssertEqual(error(":::"), "an IPv6 address has at most one \"::\"")
        XCTAssertEqual(error("1:2:3:4:5:6:7:8:9"), "an IPv6 address has eight groups")
        XCTAssertEqual(error("1:2:3:4:5:6:7:8::"), "an IPv6 address has eight groups")
        XCTAssertEqual(error("1:2:3:4:5:6:7"), "an IPv6 address has eight groups, or fewer with \"::\"")
        XCTAssertEqual(error("1:2:3:4::5:6:7:8"), "an IPv6 address has eight groups (\"::\" stands for at least one)")
        XCTAssertEqual(error("12345::"), "an IPv6 group has at most four hex digits")
        XCTAssertEqual(error("2001:db8::g"), "unexpected character \"g\" in an IPv6 address")
        XCTAssertEqual(error("[::1]"), "unexpected character \"[\" in an IPv6 address")
        XCTAssertEqual(error("::1.2.3"), "an IPv4 address is four numbers separated by dots, e.g. 192.0.2.1")
        XCTAssertEqual(error("::1.2.3.4:5"), "unexpected character \":\" in an IPv4 address")
        XCTAssertEqual(error("1:2:3:4:5:6:7:1.2.3.4"), "an IPv6 address has eight groups, or fewer with \"::\"")
        XCTAssertEqual(error("::256.1.1.1"), "each part of an IPv4 address must be 0...255")
        XCTAssertEqual(error(String(repeating: "1:", count: 23) + "1"), "too long for an IP address")
    }

    func testBytesRoundTrip() {
        XCTAssertNil(IPAddress(bytes: [1, 2, 3]))
        XCTAssertNil(IPAddress(bytes: [UInt8](repeating: 0, count: 15)))
        let bytes: [UInt8] = [0x20, 0x01, 0x0D, 0xB8, 0, 1, 0, 2, 0xAA, 0xAA, 0xBB, 0xBB, 0xCC, 0xCC, 0xDD, 0xDD]
        XCTAssertEqual(IPAddress(bytes: bytes)?.bytes, bytes)
        XCTAssertEqual(IPAddress(bytes: bytes)?.description, "2001:db8:1:2:aaaa:bbbb:cccc:dddd")
    }

    /// Every description parses back to the same address (deterministic pseudo-random addresses).
    func testDescriptionRoundTrips() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state
        }
        for round in 0..<2000 {
            // Zero some groups so that compression is exercised.
            var high = next(), low = next()
            let zeros = next()
            for group in 0..<4 where zeros >> UInt64(group) & 1 == 1 { high &= ~(0xFFFF << UInt64(16 * group)) }
            for group in 0..<4 where zeros >> UInt64(group + 4) & 1 == 1 { low &= ~(0xFFFF << UInt64(16 * group)) }
            let v6 = IPAddress(v6High: high, low: low)
            XCTAssertEqual(IPAddress(v6.description), v6, "round \(round): \(v6)")
            let v4 = IPAddress(v4: UInt32(truncatingIfNeeded: next()))
            XCTAssertEqual(IPAddress(v4.description), v4)
        }
    }

    // MARK: Networks

    private func network(_ text: String) -> IPNetwork? { try? IPNetwork(parsing: text) }

    private func networkError(_ text: String) -> String? {
        do {
            _ = try IPNetwork(parsing: text)
            return nil
        } catch {
            return error.reason
        }
    }

    func testNetworks() throws {
        let loopback = try XCTUnwrap(network("127.0.0.0/8"))
        XCTAssertEqual(loopback.description, "127.0.0.0/8")
        XCTAssertTrue(loopback.contains(parse("127.0.0.1")!))
        XCTAssertTrue(loopback.contains(parse("127.255.255.255")!))
        XCTAssertFalse(loopback.contains(parse("128.0.0.1")!))
        XCTAssertTrue(loopback.contains(parse("::ffff:127.0.0.2")!), "a dual-stack socket's IPv4 peer")
        XCTAssertFalse(loopback.contains(parse("::1")!))

        let single = try XCTUnwrap(network("192.0.2.7"))
        XCTAssertEqual(single.prefixLength, 32)
        XCTAssertTrue(single.contains(parse("192.0.2.7")!))
        XCTAssertFalse(single.contains(parse("192.0.2.8")!))

        let v6 = try XCTUnwrap(network("2001:db8::/32"))
        XCTAssertTrue(v6.contains(parse("2001:db8:ffff::1")!))
        XCTAssertFalse(v6.contains(parse("2001:db9::1")!))
        XCTAssertFalse(v6.contains(parse("32.1.13.184")!))
        XCTAssertEqual(network("::1")?.prefixLength, 128)
        XCTAssertTrue(network("::1")!.contains(parse("::1")!))

        XCTAssertTrue(network("0.0.0.0/0")!.contains(parse("8.8.8.8")!))
        XCTAssertFalse(network("0.0.0.0/0")!.contains(parse("2001:db8::1")!))
        XCTAssertTrue(network("::/0")!.contains(parse("8.8.8.8")!), "::/0 is every address")
        XCTAssertTrue(network("::ffff:0:0/96")!.contains(parse("10.1.2.3")!))
        XCTAssertTrue(network("10.1.2.0/23")!.contains(parse("10.1.3.255")!))
        XCTAssertFalse(network("10.1.2.0/23")!.contains(parse("10.1.4.0")!))
        XCTAssertTrue(network("2001:db8:0:0:8000::/65")!.contains(parse("2001:db8::ffff:0:0:1")!))
        XCTAssertFalse(network("2001:db8:0:0:8000::/65")!.contains(parse("2001:db8::7fff:0:0:1")!))
    }

    func testNetworkErrors() {
        XCTAssertEqual(networkError("10.0.0.1/8"), "bits are set after the /8 prefix (the network is 10.0.0.0/8)")
        XCTAssertEqual(networkError("2001:db8::1/32"), "bits are set after the /32 prefix (the network is 2001:db8::/32)")
        XCTAssertEqual(networkError("10.0.0.0/33"), "the prefix length after \"/\" must be a number 0...32")
        XCTAssertEqual(networkError("::/129"), "the prefix length after \"/\" must be a number 0...128")
        XCTAssertEqual(networkError("10.0.0.0/"), "the prefix length after \"/\" must be a number 0...32")
        XCTAssertEqual(networkError("10.0.0.0/08"), "the prefix length after \"/\" must be a number 0...32")
        XCTAssertEqual(networkError("10.0.0.0/-1"), "the prefix length after \"/\" must be a number 0...32")
        XCTAssertEqual(networkError("10.0.0.0/8/8"), "the prefix length after \"/\" must be a number 0...32")
        XCTAssertEqual(networkError("10.0.0/8"), "an IPv4 address is four numbers separated by dots, e.g. 192.0.2.1")
        XCTAssertEqual(networkError("fe80::%eth0/64"), "zone identifiers (\"%\" and an interface) are not supported")
        XCTAssertEqual(networkError("/8"), "the address is empty")
        XCTAssertNil(IPNetwork(address: parse("10.0.0.0")!, prefixLength: 33))
        XCTAssertNil(IPNetwork(address: parse("10.0.0.0")!, prefixLength: -1))
        XCTAssertNil(IPNetwork(address: parse("10.0.0.1")!, prefixLength: 31))
        XCTAssertNotNil(IPNetwork(address: parse("10.0.0.1")!, prefixLength: 32))
    }

    // MARK: host:port

    private func hostPort(_ text: String) -> HostPort? { try? HostPort(parsing: text) }

    private func hostPortError(_ text: String) -> String? {
        do {
            _ = try HostPort(parsing: text)
            return nil
        } catch {
            return error.reason
        }
    }

    func testHostPort() {
        XCTAssertEqual(hostPort("0.0.0.0:110"), HostPort(host: "0.0.0.0", port: 110))
        XCTAssertEqual(hostPort("[::]:995"), HostPort(host: "::", port: 995))
        XCTAssertEqual(hostPort("[::ffff:127.0.0.1]:993"), HostPort(host: "::ffff:127.0.0.1", port: 993))
        XCTAssertEqual(hostPort("imap.example.org:00993"), HostPort(host: "imap.example.org", port: 993))
        XCTAssertEqual(hostPort("h:0"), HostPort(host: "h", port: 0))
        XCTAssertEqual(hostPort("[2001:db8::1]:1")?.address, IPAddress("2001:db8::1"))
        XCTAssertNil(hostPort("localhost:1")?.address)
        // A zone is for binding and connecting (getaddrinfo); the host is then no IPAddress.
        XCTAssertEqual(hostPort("[fe80::1%eth0]:993"), HostPort(host: "fe80::1%eth0", port: 993))
        XCTAssertNil(hostPort("[fe80::1%eth0]:993")?.address)
        XCTAssertEqual(HostPort(host: "::1", port: 995).description, "[::1]:995")
        XCTAssertEqual(HostPort(host: "10.0.0.1", port: 995).description, "10.0.0.1:995")
    }

    func testHostPortErrors() {
        XCTAssertEqual(hostPortError("[fe80::1%eth 0]:993"), "invalid zone \"eth 0\" (an interface name or number after \"%\")")
        XCTAssertEqual(hostPortError("[fe80::1%]:993"), "invalid zone \"\" (an interface name or number after \"%\")")
        XCTAssertEqual(hostPortError("[fe80::1%a%b]:993"), "invalid zone \"a%b\" (an interface name or number after \"%\")")
        XCTAssertEqual(hostPortError("[fe80::g%eth0]:993"), "invalid IPv6 address \"fe80::g%eth0\": unexpected character \"g\" in an IPv6 address")
        XCTAssertEqual(hostPortError("[::g]:993"), "invalid IPv6 address \"::g\": unexpected character \"g\" in an IPv6 address")
        XCTAssertEqual(hostPortError("300.0.0.1:110"), "invalid IPv4 address \"300.0.0.1\": each part of an IPv4 address must be 0...255")
        XCTAssertEqual(hostPortError("10.0.0:110"), "invalid IPv4 address \"10.0.0\": an IPv4 address is four numbers separated by dots, e.g. 192.0.2.1")
        XCTAssertEqual(hostPortError("::1:110"), "put an IPv6 address in brackets, e.g. [::1]:110")
        XCTAssertEqual(hostPortError("[localhost]:110"), "only IPv6 addresses go in brackets")
        XCTAssertEqual(hostPortError("h:65536"), "the port must be 0...65535")
        XCTAssertEqual(hostPortError("h:123456"), "the port \"123456\" is not a number")
        XCTAssertEqual(hostPortError(":110"), "the host is empty")
    }
}
