import FrontDoor
import XCTest

/// 16 network-order bytes from eight 16-bit groups.
func ipv6(_ groups: [UInt16]) -> [UInt8] {
    precondition(groups.count == 8)
    return groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
}

final class ClientKeyTests: XCTestCase {
    func testIPv4KeyAndDescription() throws {
        let key = try XCTUnwrap(ClientKey(addressBytes: [203, 0, 113, 7]))
        XCTAssertEqual(key.description, "203.0.113.7")
        XCTAssertEqual("\(key)", "203.0.113.7")
        XCTAssertEqual(ClientKey(addressBytes: [0, 0, 0, 0])?.description, "0.0.0.0")
        XCTAssertEqual(ClientKey(addressBytes: [255, 255, 255, 255])?.description, "255.255.255.255")
        XCTAssertEqual(ClientKey(addressBytes: [203, 0, 113, 7]), key)
        XCTAssertNotEqual(ClientKey(addressBytes: [203, 0, 113, 8]), key)
        XCTAssertNotEqual(ClientKey(addressBytes: [7, 113, 0, 203]), key)
    }

    func testIPv6KeyIsTheSlash64Prefix() throws {
        let key = try XCTUnwrap(ClientKey(addressBytes: ipv6([0x2001, 0x0DB8, 1, 2, 0xAAAA, 0xBBBB, 0xCCCC, 0xDDDD])))
        XCTAssertEqual(key.description, "2001:db8:1:2::/64")
    }

    func testTwoAddressesInOneSlash64AreOneKey() {
        let a = ClientKey(addressBytes: ipv6([0x2001, 0xDB8, 1, 2, 0, 0, 0, 1]))
        let b = ClientKey(addressBytes: ipv6([0x2001, 0xDB8, 1, 2, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF]))
        XCTAssertNotNil(a)
        XCTAssertEqual(a, b)
        XCTAssertEqual(Set([a, b]).count, 1)
        XCTAssertEqual(a?.hashValue, b?.hashValue)
    }

    func testDifferentSlash64sDiffer() {
        let base = ClientKey(addressBytes: ipv6([0x2001, 0xDB8, 1, 2, 0, 0, 0, 1]))
        XCTAssertNotEqual(base, ClientKey(addressBytes: ipv6([0x2001, 0xDB8, 1, 3, 0, 0, 0, 1])))
        XCTAssertNotEqual(base, ClientKey(addressBytes: ipv6([0x2001, 0xDB9, 1, 2, 0, 0, 0, 1])))
        XCTAssertNotEqual(base, ClientKey(addressBytes: ipv6([0x3001, 0xDB8, 1, 2, 0, 0, 0, 1])))
        XCTAssertEqual(Set([base, ClientKey(addressBytes: ipv6([0x2001, 0xDB8, 1, 3, 0, 0, 0, 1]))]).count, 2)
    }

    func testIPv4MappedIPv6IsIPv4() throws {
        let mapped = try XCTUnwrap(ClientKey(addressBytes: ipv6([0, 0, 0, 0, 0, 0xFFFF, 0xCB00, 0x7107])))
        let plain = try XCTUnwrap(ClientKey(addressBytes: [203, 0, 113, 7]))
        XCTAssertEqual(mapped, plain)
        XCTAssertEqual(mapped.hashValue, plain.hashValue)
        XCTAssertEqual(mapped.description, "203.0.113.7")
        // Another mapped address in the same /96 is another IPv4 client, not the same /64.
        XCTAssertNotEqual(mapped, ClientKey(addressBytes: ipv6([0, 0, 0, 0, 0, 0xFFFF, 0xCB00, 0x7108])))
        // Almost mapped (0xfffe, or a nonzero leading byte) is plain IPv6.
        XCTAssertEqual(ClientKey(addressBytes: ipv6([0, 0, 0, 0, 0, 0xFFFE, 0xCB00, 0x7107]))?.description, "::/64")
        XCTAssertEqual(ClientKey(addressBytes: ipv6([1, 0, 0, 0, 0, 0xFFFF, 0xCB00, 0x7107]))?.description, "1::/64")
    }

    func testIPv4AndIPv6KeysWithTheSameBitsDiffer() {
        // ::/64 against 0.0.0.0: both all-zero payloads, still different clients.
        XCTAssertNotEqual(ClientKey(addressBytes: [0, 0, 0, 0]), ClientKey(addressBytes: ipv6([0, 0, 0, 0, 0, 0, 0, 1])))
    }

    func testRejectsOtherLengths() {
        for count in [0, 1, 3, 5, 6, 8, 15, 17, 32] {
            XCTAssertNil(ClientKey(addressBytes: [UInt8](repeating: 1, count: count)), "\(count) bytes")
        }
    }

    func testRFC5952Descriptions() {
        let cases: [([UInt16], String)] = [
            ([0x2001, 0xDB8, 0, 0, 9, 9, 9, 9], "2001:db8::/64"),
            ([0, 0, 0, 0, 0, 0, 0, 1], "::/64"),  // ::1
            ([0xFE80, 0, 0, 0, 0x1234, 0, 0, 1], "fe80::/64"),
            ([0x2001, 0xDB8, 0, 1, 1, 1, 1, 1], "2001:db8:0:1::/64"),  // one zero group is not shortened
            ([0x2001, 0, 0, 1, 0, 0, 0, 0], "2001:0:0:1::/64"),  // the longer run (the host half) gets the ::
            ([0, 0, 0, 1, 0, 0, 0, 0], "0:0:0:1::/64"),
            ([0x2001, 0x0DB8, 0x00AB, 0x0CDE, 0, 0, 0, 0], "2001:db8:ab:cde::/64"),  // no leading zeros
            ([0xABCD, 0xEF01, 0x2345, 0x6789, 0xFFFF, 0, 0, 0], "abcd:ef01:2345:6789::/64"),  // lowercase
            ([0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF], "ffff:ffff:ffff:ffff::/64"),
        ]
        for (groups, expected) in cases {
            XCTAssertEqual(ClientKey(addressBytes: ipv6(groups))?.description, expected)
        }
    }
}
