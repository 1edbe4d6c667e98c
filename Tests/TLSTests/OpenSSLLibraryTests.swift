import TLS
import XCTest

final class OpenSSLLibraryTests: XCTestCase {
    func testVersionIsTheRuntimeLibrarysOpenSSL3() {
        let version = OpenSSLLibrary.version
        XCTAssertTrue(version.hasPrefix("OpenSSL 3."), version)
        XCTAssertFalse(version.contains("\n"), version)
    }
}
