import Glibc
import Systemd
import XCTest

/// sd_listen_fds hands over fds starting at 3 and reads LISTEN_PID / LISTEN_FDS / LISTEN_FDNAMES, so these
/// tests put real sockets at fds 3… (saving and restoring whatever the test process had there) and set the
/// variables themselves.
final class SocketActivationTests: XCTestCase {
    private let variables = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]

    override func setUp() {
        super.setUp()
        variables.forEach { unsetenv($0) }
    }

    override func tearDown() {
        variables.forEach { unsetenv($0) }
        super.tearDown()
    }

    /// Moves `sockets` to fds 3, 4, … for the duration of `body`, then closes them and puts back what was there.
    private func withSocketsAtListenFDs(_ sockets: [Int32], _ body: () throws -> Void) throws {
        let targets = sockets.indices.map { Int32(3 + $0) }
        let saved = targets.map { fcntl($0, F_GETFD) >= 0 ? fcntl($0, F_DUPFD_CLOEXEC, 100) : -1 }
        for (socket, target) in zip(sockets, targets) {
            XCTAssertEqual(dup2(socket, target), target)
            close(socket)
        }
        defer {
            for (target, original) in zip(targets, saved) {
                close(target)
                if original >= 0 {
                    dup2(original, target)
                    close(original)
                }
            }
        }
        try body()
    }

    func testNotActivatedWithoutVariables() throws {
        XCTAssertNil(try SocketActivation.passedSockets())
    }

    /// systemd never sets LISTEN_FDS=0 (it leaves the variables out); libsystemd rejects the value as EINVAL,
    /// and this module does not read the environment to second-guess it.
    func testListenFDsZeroIsRejectedByLibsystemd() {
        setenv("LISTEN_PID", "\(getpid())", 1)
        setenv("LISTEN_FDS", "0", 1)
        XCTAssertThrowsError(try SocketActivation.passedSockets()) { error in
            XCTAssertEqual(error as? SystemdError, SystemdError(call: "sd_listen_fds_with_names", errno: EINVAL))
        }
        XCTAssertNil(environment("LISTEN_FDS"))
    }

    func testNotActivatedWhenListenPIDIsAnotherProcess() throws {
        setenv("LISTEN_PID", "\(getpid() + 1)", 1)
        setenv("LISTEN_FDS", "1", 1)
        XCTAssertNil(try SocketActivation.passedSockets())
        XCTAssertNil(environment("LISTEN_FDS"), "unset_environment=1 clears the variables even when they are not ours")
    }

    func testNamedSocketIsPassedAndEnvironmentUnset() throws {
        let listener = try makeTCPSocket(listening: true)
        try withSocketsAtListenFDs([listener]) {
            setenv("LISTEN_FDS", "1", 1)
            setenv("LISTEN_PID", "\(getpid())", 1)
            setenv("LISTEN_FDNAMES", "pop3", 1)

            let sockets = try SocketActivation.passedSockets()

            XCTAssertEqual(sockets, [SocketActivation.PassedSocket(name: "pop3", fd: 3)])
            XCTAssertNil(environment("LISTEN_FDS"))
            XCTAssertNil(environment("LISTEN_PID"))
            XCTAssertNil(environment("LISTEN_FDNAMES"))
            XCTAssertNotEqual(fcntl(3, F_GETFD) & FD_CLOEXEC, 0, "libsystemd marks passed fds close-on-exec")
            var accepting: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            XCTAssertEqual(getsockopt(3, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length), 0)
            XCTAssertEqual(accepting, 1, "fd 3 is the listening socket")
            XCTAssertNil(try SocketActivation.passedSockets(), "a second call finds the environment gone")
        }
    }

    func testTwoSocketsInFDOrderAndUnknownNameWithoutFDNames() throws {
        let first = try makeTCPSocket(listening: true)
        let second = try makeTCPSocket(listening: true)
        try withSocketsAtListenFDs([first, second]) {
            setenv("LISTEN_FDS", "2", 1)
            setenv("LISTEN_PID", "\(getpid())", 1)
            XCTAssertEqual(try SocketActivation.passedSockets(), [
                SocketActivation.PassedSocket(name: "unknown", fd: 3),
                SocketActivation.PassedSocket(name: "unknown", fd: 4),
            ])
        }
    }

    func testTwoNamedSockets() throws {
        let first = try makeTCPSocket(listening: true)
        let second = try makeTCPSocket(listening: true)
        try withSocketsAtListenFDs([first, second]) {
            setenv("LISTEN_FDS", "2", 1)
            setenv("LISTEN_PID", "\(getpid())", 1)
            setenv("LISTEN_FDNAMES", "pop3:pop3s", 1)
            XCTAssertEqual(try SocketActivation.passedSockets(), [
                SocketActivation.PassedSocket(name: "pop3", fd: 3),
                SocketActivation.PassedSocket(name: "pop3s", fd: 4),
            ])
        }
    }

    func testMalformedListenFDsThrows() {
        setenv("LISTEN_PID", "\(getpid())", 1)
        setenv("LISTEN_FDS", "three", 1)
        XCTAssertThrowsError(try SocketActivation.passedSockets()) { error in
            XCTAssertEqual(error as? SystemdError, SystemdError(call: "sd_listen_fds_with_names", errno: EINVAL))
        }
    }
}
