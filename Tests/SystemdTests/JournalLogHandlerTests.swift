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
            #"POPGATE_BACKEND=imap\nexample"#,
            "POPGATE_RETRIEVED_BYTES=5120",
            "POPGATE_SESSION=udm-3",
        ])
        XCTAssertEqual(fields[6], JournalLogHandler.Field(name: "POPGATE_BACKEND", value: Array(#"imap\nexample"#.utf8)))
    }

    // MARK: escaping

    /// The AUTH identity a POP3 client sends becomes `user` metadata and part of the session summary.
    func testClientControlledTextIsEscapedInEntry() {
        let expected: [(String, [String])] = [
            ("alice\r\nsession ended: user=root", [
                #"MESSAGE=session ended: user=alice\r\nsession ended: user=root ending=quit"#,
                #"POPGATE_USER=alice\r\nsession ended: user=root"#,
            ]),
            ("\u{1b}[31mred", [
                #"MESSAGE=session ended: user=\u001b[31mred ending=quit"#,
                #"POPGATE_USER=\u001b[31mred"#,
            ]),
        ]
        for (user, escaped) in expected {
            let fields = JournalLogHandler.entry(
                level: .info,
                message: "session ended: user=\(user) ending=quit",
                metadata: ["user": .string(user)],
                identifier: "popgate",
                file: "Server/SessionDriver.swift",
                function: "logSummary(_:)",
                line: 251
            )
            XCTAssertEqual(fields.map(\.description), [
                escaped[0],
                "PRIORITY=6",
                "SYSLOG_IDENTIFIER=popgate",
                "CODE_FILE=Server/SessionDriver.swift",
                "CODE_LINE=251",
                "CODE_FUNC=logSummary(_:)",
                escaped[1],
            ], user.debugDescription)
            XCTAssertEqual(fields[0].value, Array(escaped[0].utf8.dropFirst("MESSAGE=".utf8.count)))
            XCTAssertEqual(fields[6].value, Array(escaped[1].utf8.dropFirst("POPGATE_USER=".utf8.count)))
        }
    }

    /// The rules of the escaping shared with LogfmtLogHandler, applied to the message and to a metadata
    /// value alike. Unlike logfmt the journal has no quoting, so `"` and spaces stay as they are.
    func testEscapingRules() {
        let cases: [(String, String)] = [
            ("plain", "plain"),
            ("", ""),
            (#"two words "quoted" a=b"#, #"two words "quoted" a=b"#),
            (#"back\slash"#, #"back\\slash"#),
            (#"not\na newline"#, #"not\\na newline"#),  // stays distinguishable from an escaped newline
            ("line1\nline2", #"line1\nline2"#),
            ("cr\rlf", #"cr\rlf"#),
            ("crlf\r\n", #"crlf\r\n"#),
            ("tab\there", #"tab\there"#),
            ("esc\u{1B}[31m", #"esc\u001b[31m"#),
            ("nul\u{0}", #"nul\u0000"#),
            ("vt\u{0B}ff\u{0C}us\u{1F}", #"vt\u000bff\u000cus\u001f"#),
            ("del\u{7F}", #"del\u007f"#),
            ("c1\u{80}\u{85}\u{9B}\u{9F}", #"c1\u0080\u0085\u009b\u009f"#),
            ("ls\u{2028}ps\u{2029}", #"ls\u2028ps\u2029"#),
            ("nbsp\u{A0}grüße😀", "nbsp\u{A0}grüße😀"),
            ("2001:db8::1", "2001:db8::1"),
        ]
        for (text, escaped) in cases {
            let fields = JournalLogHandler.entry(
                level: .info, message: text, metadata: ["k": .string(text)], identifier: "popgate", file: "f", function: "g", line: 1
            )
            XCTAssertEqual(fields.first, JournalLogHandler.Field(name: "MESSAGE", value: escaped), text.debugDescription)
            XCTAssertEqual(fields.last, JournalLogHandler.Field(name: "POPGATE_K", value: escaped), text.debugDescription)
        }
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

    func testEntryArrivesOnJournalSocketInNativeProtocol() throws {
        let journal = try FakeJournalSocket()
        defer { journal.close() }

        var logger = Logger(label: "journal-test") { JournalLogHandler(label: $0, identifier: "popgate-test") }
        logger[metadataKey: "session"] = "udm-3"
        logger.notice("session ended", metadata: ["retrieved_bytes": "5120", "reason": "line one\nline two"]); let line = #line
        logger.debug("below the level: never sent")
        logger.critical("second")

        let datagram = try XCTUnwrap(journal.receive(), "no datagram on \(FakeJournalSocket.path)")
        let fields = try NativeJournalProtocol.parse(datagram)
        XCTAssertEqual(fields.map(\.description), [
            "MESSAGE=session ended",
            "PRIORITY=5",
            "SYSLOG_IDENTIFIER=popgate-test",
            "CODE_FILE=SystemdTests/JournalLogHandlerTests.swift",
            "CODE_LINE=\(line)",
            "CODE_FUNC=testEntryArrivesOnJournalSocketInNativeProtocol()",
            #"POPGATE_REASON=line one\nline two"#,
            "POPGATE_RETRIEVED_BYTES=5120",
            "POPGATE_SESSION=udm-3",
        ])
        // Escaped, the value has no newline left, so libsystemd sends it in the plain `NAME=value\n` form
        // rather than the binary one (name, "\n", 64-bit little-endian length, bytes).
        let plain = Array(#"POPGATE_REASON=line one\nline two"#.utf8) + [UInt8(ascii: "\n")]
        XCTAssertNotNil(Self.range(of: plain, in: datagram), "plain field encoding not found")

        let second = try NativeJournalProtocol.parse(try XCTUnwrap(journal.receive()))
        XCTAssertEqual(second.first?.description, "MESSAGE=second")
        XCTAssertEqual(second.dropFirst().first?.description, "PRIORITY=2")
    }

    /// A POP3 client chooses its AUTH PLAIN identity; the session logs it as `user` metadata and inside the
    /// summary message. Through the real handler and libsystemd, every byte of the datagram must be
    /// printable apart from the newline that ends each field.
    func testClientControlledTextIsEscapedOnJournalSocket() throws {
        let journal = try FakeJournalSocket()
        defer { journal.close() }

        var logger = Logger(label: "journal-test") { JournalLogHandler(label: $0, identifier: "popgate-test") }
        let user = "alice\r\nsession ended: user=root"
        logger[metadataKey: "user"] = .string(user)
        logger.info("session ended: user=\(user) ending=quit"); let firstLine = #line
        logger.warning("login failed: user=\u{1b}[31mred", metadata: ["user": "\u{1b}[31mred"]); let secondLine = #line

        let expected: [(message: String, priority: String, line: Int, user: String)] = [
            (#"MESSAGE=session ended: user=alice\r\nsession ended: user=root ending=quit"#, "PRIORITY=6", firstLine,
             #"POPGATE_USER=alice\r\nsession ended: user=root"#),
            (#"MESSAGE=login failed: user=\u001b[31mred"#, "PRIORITY=4", secondLine, #"POPGATE_USER=\u001b[31mred"#),
        ]
        for entry in expected {
            let datagram = try XCTUnwrap(journal.receive(), "no datagram on \(FakeJournalSocket.path)")
            let fields = try NativeJournalProtocol.parse(datagram)
            XCTAssertEqual(fields.map(\.description), [
                entry.message,
                entry.priority,
                "SYSLOG_IDENTIFIER=popgate-test",
                "CODE_FILE=SystemdTests/JournalLogHandlerTests.swift",
                "CODE_LINE=\(entry.line)",
                "CODE_FUNC=testClientControlledTextIsEscapedOnJournalSocket()",
                entry.user,
            ])
            XCTAssertFalse(datagram.contains { ($0 < 0x20 && $0 != UInt8(ascii: "\n")) || $0 == 0x7F }, "control byte on the wire")
            XCTAssertEqual(datagram.filter { $0 == UInt8(ascii: "\n") }.count, fields.count, "a field in binary form")
        }
    }

    private static func range(of needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        return (0...(haystack.count - needle.count)).first { haystack[$0..<($0 + needle.count)].elementsEqual(needle) }
    }
}

/// sd_journal_sendv always sends to the fixed path /run/systemd/journal/socket, so a unit test cannot
/// redirect it. Instead, when journald is not running (as on the development machine and in CI), a test
/// binds a unix datagram socket at that path itself with this class, logs through JournalLogHandler,
/// receives the datagram libsystemd sent and parses the native journal protocol (`KEY=value\n`, or
/// `KEY\n<u64 LE length><bytes>\n` for values containing a newline). `close()` removes the socket and any
/// directory it created.
///
/// `init` throws XCTSkip (skipping the test) when a live socket is at the path (a real journald: we must
/// not steal its entries), when something other than a socket is there, or when we may not create it. A
/// stale socket file (nobody listening: connect says ECONNREFUSED) is replaced. Entries this small go as one plain datagram;
/// libsystemd only falls back to a memfd passed with SCM_RIGHTS for entries too big for a datagram.
final class FakeJournalSocket {
    static let path = "/run/systemd/journal/socket"

    private let receiver: DatagramReceiver
    private var createdDirectories: [String] = []

    init() throws {
        var created: [String] = []
        do {
            for directory in ["/run/systemd", "/run/systemd/journal"] where access(directory, F_OK) != 0 {
                guard mkdir(directory, 0o755) == 0 else {
                    throw XCTSkip("cannot create \(directory): \(String(cString: strerror(errno)))")
                }
                created.append(directory)
            }
            var status = stat()
            if lstat(Self.path, &status) == 0 {
                guard status.st_mode & S_IFMT == S_IFSOCK else { throw XCTSkip("\(Self.path) exists and is not a socket") }
                if try Self.socketIsLive(Self.path) { throw XCTSkip("journald is running at \(Self.path)") }
                unlink(Self.path)
            }
            do {
                self.receiver = try DatagramReceiver(path: Self.path)
            } catch {
                throw XCTSkip("cannot bind \(Self.path): \(error)")
            }
        } catch {
            created.reversed().forEach { rmdir($0) }
            throw error
        }
        self.createdDirectories = created
    }

    func receive() -> [UInt8]? {
        self.receiver.receive()
    }

    func close() {
        self.receiver.close()
        self.createdDirectories.reversed().forEach { rmdir($0) }
        self.createdDirectories = []
    }

    deinit { self.close() }

    private static func socketIsLive(_ path: String) throws -> Bool {
        let probe = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard probe >= 0 else { throw TestSupportError.system("socket", errno) }
        defer { Glibc.close(probe) }
        return try withUnixAddress(path) { connect(probe, $0, $1) } == 0
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
