import Glibc
import Systemd
import XCTest

final class SystemdErrorTests: XCTestCase {
    func testDescriptionNamesCallAndErrno() {
        let error = SystemdError(call: "sd_listen_fds_with_names", errno: EINVAL)
        XCTAssertEqual(error.description, "sd_listen_fds_with_names failed: Invalid argument (errno \(EINVAL))")
    }

    func testEquality() {
        XCTAssertEqual(SystemdError(call: "a", errno: 1), SystemdError(call: "a", errno: 1))
        XCTAssertNotEqual(SystemdError(call: "a", errno: 1), SystemdError(call: "a", errno: 2))
        XCTAssertNotEqual(SystemdError(call: "a", errno: 1), SystemdError(call: "b", errno: 1))
    }
}
