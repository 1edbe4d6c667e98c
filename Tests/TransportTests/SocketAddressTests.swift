import Transport
import XCTest

final class SocketAddressTests: XCTestCase {
    func testParsesConfigurationForms() {
        XCTAssertTrue(SocketAddress.parse("0.0.0.0:110")! == ("0.0.0.0", 110))
        XCTAssertTrue(SocketAddress.parse("[::]:995")! == ("::", 995))
        XCTAssertTrue(SocketAddress.parse("127.0.0.1:0")! == ("127.0.0.1", 0))
        XCTAssertTrue(SocketAddress.parse("localhost:143")! == ("localhost", 143))
        XCTAssertTrue(SocketAddress.parse("[::1]:65535")! == ("::1", 65535))
        XCTAssertTrue(SocketAddress.parse("[fe80::1%eth0]:993")! == ("fe80::1%eth0", 993))
        XCTAssertTrue(SocketAddress.parse("imap.example.org:00993")! == ("imap.example.org", 993))
    }

    func testRejectsMalformedText() {
        for text in ["", ":110", "localhost", "localhost:", "localhost:65536", "localhost:99999", "localhost:-1",
                     "localhost:+1", "localhost:1a", "localhost:123456", "::1:995", "[::1]", "[::1]995", "[::1:995",
                     "[]:1", "host name:1", "host\t:1", "a]:1", "[::1]:", " localhost:1",
                     "[fe80::1%]:993", "[localhost]:1", "256.0.0.1:1", "[::g]:1"] {
            XCTAssertNil(SocketAddress.parse(text), "\(text.debugDescription) should not parse")
        }
    }

    func testDescriptionBracketsIPv6() {
        XCTAssertEqual(SocketAddress(host: "127.0.0.1", port: 995).description, "127.0.0.1:995")
        XCTAssertEqual(SocketAddress(host: "::1", port: 995).description, "[::1]:995")
        XCTAssertEqual("\(SocketAddress(host: "localhost", port: 0))", "localhost:0")
    }

    func testDescriptionRoundTripsThroughParse() {
        for address in [SocketAddress(host: "10.1.2.3", port: 110), SocketAddress(host: "2001:db8::7", port: 995)] {
            let parsed = SocketAddress.parse(address.description)
            XCTAssertEqual(parsed.map { SocketAddress(host: $0.host, port: $0.port) }, address)
        }
    }

    func testEquality() {
        XCTAssertEqual(SocketAddress(host: "::1", port: 1), SocketAddress(host: "::1", port: 1))
        XCTAssertNotEqual(SocketAddress(host: "::1", port: 1), SocketAddress(host: "::1", port: 2))
        XCTAssertNotEqual(SocketAddress(host: "::1", port: 1), SocketAddress(host: "127.0.0.1", port: 1))
    }
}
