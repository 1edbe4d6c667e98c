import Glibc
import Transport
import XCTest

final class OpenFilesLimitTests: XCTestCase {
    func testSoftLimitIsRaisedToTheHardLimit() throws {
        var original = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &original), 0)
        defer { _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &original) }
        let hard = UInt64(original.rlim_max)
        try XCTSkipIf(hard < 512, "hard limit \(hard) leaves no room to lower the soft limit for the test")
        var lowered = original
        lowered.rlim_cur = 256
        XCTAssertEqual(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lowered), 0)

        let outcome = try XCTUnwrap(OpenFilesLimit.raiseToHardLimit(ceiling: 1 << 20))
        XCTAssertEqual(outcome.before, 256)
        XCTAssertEqual(outcome.hard, hard)
        XCTAssertEqual(outcome.after, min(hard, 1 << 20))
        var now = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &now), 0)
        XCTAssertEqual(UInt64(now.rlim_cur), outcome.after, "the process's soft limit itself changed")
    }

    func testCeilingCapsTheRaise() throws {
        var original = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &original), 0)
        defer { _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &original) }
        try XCTSkipIf(original.rlim_max < 1024, "hard limit too low")
        var lowered = original
        lowered.rlim_cur = 256
        XCTAssertEqual(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lowered), 0)
        let outcome = try XCTUnwrap(OpenFilesLimit.raiseToHardLimit(ceiling: 600))
        XCTAssertEqual(outcome.after, 600)
    }

    func testTwoDescriptorsPerSessionPlusSpare() {
        XCTAssertEqual(OpenFilesLimit.needed(forConnections: 10_000), 20_064)
        XCTAssertEqual(OpenFilesLimit.needed(forConnections: 0), 64)
    }
}
