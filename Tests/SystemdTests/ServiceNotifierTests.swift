import Glibc
import Systemd
import XCTest

/// Plays systemd's side of NOTIFY_SOCKET: a unix datagram socket in a temporary directory; every
/// notification must arrive as one datagram with exactly the expected text.
final class ServiceNotifierTests: XCTestCase {
    private var directory = ""
    private var receiver: DatagramReceiver?

    override func setUpWithError() throws {
        try super.setUpWithError()
        directory = try makeTemporaryDirectory()
        receiver = try DatagramReceiver(path: directory + "/notify")
        setenv("NOTIFY_SOCKET", directory + "/notify", 1)
    }

    override func tearDown() {
        unsetenv("NOTIFY_SOCKET")
        unsetenv("WATCHDOG_USEC")
        unsetenv("WATCHDOG_PID")
        receiver?.close()
        rmdir(directory)
        super.tearDown()
    }

    private func received() -> String? { receiver?.receiveString() }

    func testReadyWithStatus() {
        ServiceNotifier.ready(status: "listening on pop3s")
        XCTAssertEqual(received(), "READY=1\nSTATUS=listening on pop3s")
    }

    func testReadyWithoutStatus() {
        ServiceNotifier.ready()
        XCTAssertEqual(received(), "READY=1")
    }

    func testStatus() {
        ServiceNotifier.status("3 sessions")
        XCTAssertEqual(received(), "STATUS=3 sessions")
    }

    func testStatusCannotInjectAssignments() {
        ServiceNotifier.status("draining\nSTOPPING=1")
        XCTAssertEqual(received(), "STATUS=draining STOPPING=1")
        ServiceNotifier.ready(status: "a\rb\tc")
        XCTAssertEqual(received(), "READY=1\nSTATUS=a b c")
    }

    func testStopping() {
        ServiceNotifier.stopping()
        XCTAssertEqual(received(), "STOPPING=1")
    }

    func testReloading() {
        ServiceNotifier.reloading(monotonicMicroseconds: 1_234_567_890)
        XCTAssertEqual(received(), "RELOADING=1\nMONOTONIC_USEC=1234567890")
    }

    func testWatchdogPing() {
        ServiceNotifier.watchdogPing()
        XCTAssertEqual(received(), "WATCHDOG=1")
    }

    func testSequenceArrivesInOrder() {
        ServiceNotifier.ready(status: "up")
        ServiceNotifier.watchdogPing()
        ServiceNotifier.stopping()
        XCTAssertEqual(received(), "READY=1\nSTATUS=up")
        XCTAssertEqual(received(), "WATCHDOG=1")
        XCTAssertEqual(received(), "STOPPING=1")
    }

    func testNotifyReportsWhetherSent() {
        XCTAssertTrue(ServiceNotifier.notify("EXTEND_TIMEOUT_USEC=5000000"))
        XCTAssertEqual(received(), "EXTEND_TIMEOUT_USEC=5000000")
        unsetenv("NOTIFY_SOCKET")
        XCTAssertFalse(ServiceNotifier.notify("READY=1"))
        ServiceNotifier.stopping()  // a no-op, not a crash
    }

    func testNotifyDoesNotUnsetNotifySocket() {
        ServiceNotifier.ready()
        XCTAssertEqual(environment("NOTIFY_SOCKET"), directory + "/notify")
        XCTAssertEqual(received(), "READY=1")
    }

    func testWatchdogInterval() {
        XCTAssertNil(ServiceNotifier.watchdogInterval())
        setenv("WATCHDOG_USEC", "3000000", 1)
        setenv("WATCHDOG_PID", "\(getpid())", 1)
        XCTAssertEqual(ServiceNotifier.watchdogInterval(), .seconds(3))
        setenv("WATCHDOG_PID", "\(getpid() + 1)", 1)
        XCTAssertNil(ServiceNotifier.watchdogInterval(), "the watchdog is for another process")
        unsetenv("WATCHDOG_PID")
        setenv("WATCHDOG_USEC", "250000", 1)
        XCTAssertEqual(ServiceNotifier.watchdogInterval(), .milliseconds(250))
    }

    func testMonotonicMicrosecondsAdvances() {
        let before = ServiceNotifier.monotonicMicroseconds()
        usleep(20_000)
        let after = ServiceNotifier.monotonicMicroseconds()
        XCTAssertGreaterThanOrEqual(after - before, 20_000)
        XCTAssertLessThan(after - before, 5_000_000)
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let reference = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
        XCTAssertLessThanOrEqual(after, reference)
        XCTAssertLessThan(reference - after, 1_000_000)
    }
}
