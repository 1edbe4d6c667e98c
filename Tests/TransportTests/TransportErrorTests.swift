import Glibc
@testable import Transport
import XCTest

final class TransportErrorTests: XCTestCase {
    func testDescriptions() {
        XCTAssertEqual(TransportError.system(call: "bind", errno: EADDRINUSE, message: "Address already in use").description,
                       "bind: Address already in use")
        XCTAssertEqual(TransportError.resolve(host: "nowhere.invalid", message: "Name or service not known").description,
                       "cannot resolve nowhere.invalid: Name or service not known")
        XCTAssertEqual(TransportError.connectTimeout.description, "connect timed out")
        XCTAssertEqual(TransportError.closed.description, "connection closed")
    }

    func testSystemErrorCarriesTheSystemMessage() {
        XCTAssertEqual(TransportError.system("connect", errno: ECONNREFUSED),
                       .system(call: "connect", errno: ECONNREFUSED, message: "Connection refused"))
    }
}
