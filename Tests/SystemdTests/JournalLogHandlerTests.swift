import Glibc
import Logging
import Systemd
import XCTest

final class JournalLogHandlerTests: XCTestCase {
    // MARK: mapping

    func testPriorityMapping() {
        let expected: [(Logger.Level, Int)] = [
            (.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2),
        ]
        XCTAssertEqual(expected.count, Logger.Level.allCases.count)
        for (level, priority) in expected {
            XCTAssertEqual(JournalLogHandler.priority(level), priority, "\(level)")
        }
    }

    func testFieldNameMapping() {
        let expected: [(String, String)] = [
            ("session", "POPGATE_SESSION"),
            ("retrieved_bytes", "POPGATE_RETRIEVED_BYTES"),
            ("user", "POPGATE_USER"),
            ("tls.version", "POPGATE_TLS_VERSION"),
            ("Mixed-Case9", "POPGATE_MIXED_CASE9"),
            ("ALREADY_UPPER", "POPGATE_ALREADY_UPPER"),
            ("a b=c", "POPGATE_A_B_C"),
            ("grüße", "POPGATE_GR__E"),  // one "_" per character, no Unicode case mapping (ß would become SS)
            ("", "POPGATE_"),
            ("0", "POPGATE_0"),
        ]
        for (key, name) in expected {
            XCTAssertEqual(JournalLogHandler.fieldName(metadataKey: key), name, key)
        }
    }

    func testFieldNameIsCutToJournaldLimit() {
        let name = JournalLogHandler.fieldName(metadataKey: String(repeating: "k", count: 100))
        XCTAssertEqual(name, "POPGATE_" + String(repeating: "K", count: 56))
        XCTAssertEqual(name.utf8.count, 64)
    }

    func testEntryFields() {
        let fields = JournalLogHandler.entry(
            level: .warning,
            message: "slow backend",
            metadata: ["session": "udm-3", "retrieved_bytes": "5120", "backend": "imap\nexample"],
            identifier: "popgate",
            file: "Server/SessionDriver.swift",
            function: "finish()",
            line: 212
        )
        XCTAssertEqual(fields.map(\.description), [
            "MESSAGE=slow backend",
            "PRIORITY=4",
            "SYSLOG_IDENTIFIER=popgate",
            "CODE_FILE=Server/SessionDriver.swift",
            "CODE_LINE=212",
            "CODE_FUNC=finish()",
            "POPGATE_BACKEND=imap\nexample",
            "POPGATE_RETRIEVED_BYTES=5120",
            "POPGATE_SESSION=udm-3",
        ])
        XCTAssertEqual(fields[6], JournalLogHandler.Field(name: "POPGATE_BACKEND", value: Array("imap\nexample".utf8)))
    }

    func testHandlerMetadataStorage() {
        var handler = JournalLogHandler(label: "test")
        XCTAssertEqual(handler.identifier, "popgate")
        XCTAssertEqual(handler.logLevel, .info)
        handler[metadataKey: "session"] = "s1"
        XCTAssertEqual(handler.metadata, ["session": "s1"])
        handler[metadataKey: "session"] = nil
        XCTAssertEqual(handler.metadata, [:])
    }

    // MARK: integration with the native protocol

    /// sd_journal_sendv always sends to the fixed path /run/systemd/journal/socket, so a unit test cannot
    /// redirect it. Instead, when journald is not running (as on the development machine and in CI), this
    /// test binds a unix datagram socket at that path itself, logs through JournalLogHandler, receives the
    /// datagram libsystemd sent and parses the native journal protocol (`KEY=value\n`, or
    /// `KEY\n<u64 LE length><bytes>\n` for values containing a newline). It then removes the socket and any
    /// directory it created.
    ///
    /// Skipped when a live socket is at the path (a real journald: we must not steal its entries), when
    /// something other than a socket is there, or when we may not create it. A stale socket file (nobody
    /// listening: connect says ECONNREFUSED) is replaced. Entries this small go as one plain datagram;
    /// libsystemd only falls back to a memfd passed with SCM_RIGHTS for entries too big for a datagram.
    func testEntryArrivesOnJournalSocketInNativeProtocol() throws {
        let socketPath = "/run/systemd/journal/socket"
        var createdDirectories: [String] = []
        defer { createdDirectories.reversed().forEach { rmdir($0) } }
        for directory in ["/run/systemd", "/run/systemd/journal"] where access(directory, F_OK) != 0 {
            guard mkdir(directory, 0o755) == 0 else {
                throw XCTSkip("cannot create \(directory): \(String(cString: strerror(errno)))")
            }
            createdDirectories.append(directory)
        }
        var status = stat()
        if lstat(socketPath, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFSOCK else { throw XCTSkip("\(socketPath) exists and is not a socket") }
            if try Self.socketIsLive(socketPath) { throw XCTSkip("journald is running at \(socketPath)") }
            unlink(socketPath)
        }
        let journal: DatagramReceiver
        do {
            journal = try DatagramReceiver(path: socketPath)
        } catch {
            throw XCTSkip("cannot bind \(socketPath): \(error)")
        }
        defer { journal.close() }

        var logger = Logger(label: "journal-test") { JournalLogHandler(label: $0, identifier: "popgate-test") }
        logger[metadataKey: "session"] = "udm-3"
        logger.notice("session ended", metadata: ["retrieved_bytes": "5120", "reason": "line one\nline two"]); let line = #line
        logger.debug("below the level: never sent")
        logger.critical("second")

        let datagram = try XCTUnwrap(journal.receive(), "no datagram on \(socketPath)")
        let fields = try NativeJournalProtocol.parse(datagram)
        XCTAssertEqual(fields.map(\.description), [
            "MESSAGE=session ended",
            "PRIORITY=5",
            "SYSLOG_IDENTIFIER=popgate-test",
            "CODE_FILE=SystemdTests/JournalLogHandlerTests.swift",
            "CODE_LINE=\(line)",
            "CODE_FUNC=testEntryArrivesOnJournalSocketInNativeProtocol()",
            "POPGATE_REASON=line one\nline two",
            "POPGATE_RETRIEVED_BYTES=5120",
            "POPGATE_SESSION=udm-3",
        ])
        // The newline value must have used the binary form: name, "\n", 64-bit little-endian length, bytes.
        let binary = Array("POPGATE_REASON\n".utf8) + [17, 0, 0, 0, 0, 0, 0, 0] + Array("line one\nline two\n".utf8)
        XCTAssertNotNil(Self.range(of: binary, in: datagram), "binary field encoding not found")

        let second = try NativeJournalProtocol.parse(try XCTUnwrap(journal.receive()))
        XCTAssertEqual(second.first?.description, "MESSAGE=second")
        XCTAssertEqual(second.dropFirst().first?.description, "PRIORITY=2")
    }

    private static func socketIsLive(_ path: String) throws -> Bool {
        let probe = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard probe >= 0 else { throw TestSupportError.system("socket", errno) }
        defer { close(probe) }
        return try withUnixAddress(path) { connect(probe, $0, $1) } == 0
    }

    private static func range(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        return (0...(haystack.count - needle.count)).first { haystack[$0..<($0 + needle.count)].elementsEqual(needle) }
    }
}

/// A reader for journald's native protocol (systemd's `JOURNAL_NATIVE_PROTOCOL`), enough to check what
/// libsystemd put on the wire.
enum NativeJournalProtocol {
    struct Malformed: Error, CustomStringConvertible {
        var offset: Int
        var description: String { "malformed native journal datagram at byte \(offset)" }
    }

    static func parse(_ bytes: [UInt8]) throws -> [JournalLogHandler.Field] {
        var fields: [JournalLogHandler.Field] = []
        var index = 0
        while index < bytes.count {
            guard let end = bytes[index...].firstIndex(where: { $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "\n") }) else {
                throw Malformed(offset: index)
            }
            let name = String(decoding: bytes[index..<end], as: UTF8.self)
            if bytes[end] == UInt8(ascii: "=") {
                guard let newline = bytes[end...].firstIndex(of: UInt8(ascii: "\n")) else { throw Malformed(offset: end) }
                fields.append(.init(name: name, value: Array(bytes[(end + 1)..<newline])))
                index = newline + 1
            } else {
                let lengthStart = end + 1
                guard lengthStart + 8 <= bytes.count else { throw Malformed(offset: lengthStart) }
                var length: UInt64 = 0
                for (shift, byte) in bytes[lengthStart..<(lengthStart + 8)].enumerated() {
                    length |= UInt64(byte) << (8 * UInt64(shift))
                }
                let valueStart = lengthStart + 8
                guard length <= UInt64(bytes.count - valueStart), valueStart + Int(length) < bytes.count,
                      bytes[valueStart + Int(length)] == UInt8(ascii: "\n")
                else { throw Malformed(offset: valueStart) }
                fields.append(.init(name: name, value: Array(bytes[valueStart..<(valueStart + Int(length))])))
                index = valueStart + Int(length) + 1
            }
        }
        return fields
    }
}

final class NativeJournalProtocolTests: XCTestCase {
    func testParserReadsBothForms() throws {
        let bytes = Array("A=1\nB\n".utf8) + [3, 0, 0, 0, 0, 0, 0, 0] + Array("x\ny\nC=\n".utf8)
        XCTAssertEqual(try NativeJournalProtocol.parse(bytes).map(\.description), ["A=1", "B=x\ny", "C="])
    }

    func testParserRejectsTruncation() {
        XCTAssertThrowsError(try NativeJournalProtocol.parse(Array("A=1".utf8)))
        XCTAssertThrowsError(try NativeJournalProtocol.parse(Array("B\n".utf8) + [9, 0, 0, 0, 0, 0, 0, 0] + Array("short\n".utf8)))
    }
}
