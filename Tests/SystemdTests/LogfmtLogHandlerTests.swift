import Logging
import Synchronization
import Systemd
import XCTest

final class LogfmtLogHandlerTests: XCTestCase {
    private let time = "2026-11-28T05:25:16.123Z"

    private func format(_ level: Logger.Level = .info, _ message: String, _ metadata: Logger.Metadata = [:]) -> String {
        LogfmtLogHandler.format(level: level, message: message, metadata: metadata, time: time)
    }

    // MARK: format

    func testSessionEndedLine() {
        XCTAssertEqual(
            format(.info, "session ended", ["session": "udm-3", "user": "alice", "retrieved_bytes": "5120"]),
            #"time=2026-11-28T05:25:16.123Z level=info msg="session ended" retrieved_bytes=5120 session=udm-3 user=alice"#
        )
    }

    func testPlainMessageIsNotQuoted() {
        XCTAssertEqual(format(.notice, "started"), "time=2026-11-28T05:25:16.123Z level=notice msg=started")
    }

    func testEveryLevelName() {
        let expected: [(Logger.Level, String)] = [
            (.trace, "trace"), (.debug, "debug"), (.info, "info"), (.notice, "notice"),
            (.warning, "warning"), (.error, "error"), (.critical, "critical"),
        ]
        for (level, name) in expected {
            XCTAssertEqual(format(level, "x"), "time=\(time) level=\(name) msg=x")
        }
    }

    func testKeysAreSortedAfterFixedFields() {
        let metadata: Logger.Metadata = ["zeta": "1", "alpha": "2", "Beta": "3", "mid_key": "4", "alpha2": "5"]
        XCTAssertEqual(format(.info, "m", metadata), "time=\(time) level=info msg=m Beta=3 alpha=2 alpha2=5 mid_key=4 zeta=1")
    }

    func testQuotingRules() {
        let cases: [(String, String)] = [
            ("plain", "plain"),
            ("", #""""#),
            ("two words", #""two words""#),
            ("a=b", #""a=b""#),
            (#"say "hi""#, #""say \"hi\"""#),
            (#"back\slash"#, #"back\slash"#),          // a backslash alone does not force quotes
            (#"C:\dir x"#, #""C:\\dir x""#),            // but is escaped inside quotes
            ("line1\nline2", #""line1\nline2""#),
            ("cr\rlf", #""cr\rlf""#),
            ("tab\there", #""tab\there""#),
            ("esc\u{1B}[31m", #""esc\u001b[31m""#),
            ("nul\u{0}", #""nul\u0000""#),
            ("del\u{7F}", #""del\u007f""#),
            ("c1\u{85}", #""c1\u0085""#),
            ("grüße", "grüße"),
            ("2001:db8::1", "2001:db8::1"),
            ("[::1]:995", "[::1]:995"),
            ("=", #""=""#),
            (#"""#, #""\"""#),
        ]
        for (value, rendered) in cases {
            XCTAssertEqual(format(.info, "m", ["k": .string(value)]), "time=\(time) level=info msg=m k=\(rendered)", value.debugDescription)
            XCTAssertEqual(format(.info, value), "time=\(time) level=info msg=\(rendered)", value.debugDescription)
        }
    }

    func testEveryEventIsOneLine() {
        let line = format(.error, "multi\nline\r\nmessage", ["body": "a\nb", "k\nx": "v"])
        XCTAssertFalse(line.contains("\n"))
        XCTAssertFalse(line.contains("\r"))
        XCTAssertEqual(line, #"time=2026-11-28T05:25:16.123Z level=error msg="multi\nline\r\nmessage" body="a\nb" k_x=v"#)
    }

    func testKeysAreSanitisedNotQuoted() {
        XCTAssertEqual(
            format(.info, "m", ["a b": "1", "c=d": "2", #"e"f"#: "3", "": "4", "tls.version": "TLSv1.3"]),
            #"time=2026-11-28T05:25:16.123Z level=info msg=m _=4 a_b=1 c_d=2 e_f=3 tls.version=TLSv1.3"#
        )
    }

    // MARK: escaping

    /// The AUTH identity a POP3 client sends becomes `user` metadata and part of the session summary.
    func testClientControlledTextIsEscaped() {
        XCTAssertEqual(
            format(.info, "session ended: user=alice\r\nsession ended: user=root ending=quit", ["user": "alice\r\nsession ended: user=root"]),
            #"time=2026-11-28T05:25:16.123Z level=info msg="session ended: user=alice\r\nsession ended: user=root ending=quit" user="alice\r\nsession ended: user=root""#
        )
        XCTAssertEqual(
            format(.info, "session ended: user=\u{1b}[31mred ending=quit", ["user": "\u{1b}[31mred"]),
            #"time=2026-11-28T05:25:16.123Z level=info msg="session ended: user=\u001b[31mred ending=quit" user="\u001b[31mred""#
        )
    }

    /// What testQuotingRules leaves out: the rest of the shared escaping (LogEscaping), which quotes and
    /// escapes Unicode line separators and C1 controls too, and the literal backslash of an unquoted value.
    func testMoreEscapingRules() {
        let cases: [(String, String)] = [
            ("ls\u{2028}ps\u{2029}", #""ls\u2028ps\u2029""#),
            ("csi\u{9B}31m\u{80}\u{9F}", #""csi\u009b31m\u0080\u009f""#),
            ("vt\u{0B}ff\u{0C}us\u{1F}", #""vt\u000bff\u000cus\u001f""#),
            ("crlf\r\n", #""crlf\r\n""#),
            (#"not\nanewline"#, #"not\nanewline"#),         // unquoted, so literal: no escape can be meant
            (#"not\n a newline"#, #""not\\n a newline""#),  // quoted, so the backslash is escaped
            ("nbsp\u{A0}grüße😀", "nbsp\u{A0}grüße😀"),
        ]
        for (value, rendered) in cases {
            XCTAssertEqual(format(.info, "m", ["k": .string(value)]), "time=\(time) level=info msg=m k=\(rendered)", value.debugDescription)
            XCTAssertEqual(format(.info, value), "time=\(time) level=info msg=\(rendered)", value.debugDescription)
        }
        XCTAssertEqual(
            format(.info, "m", ["k\u{2028}x": "1", "\u{1b}[31m": "2", "c1\u{85}": "3"]),
            "time=\(time) level=info msg=m _[31m=2 c1_=3 k_x=1"
        )
    }

    func testNonStringMetadataUsesDescription() {
        XCTAssertEqual(
            format(.info, "m", ["count": .stringConvertible(42), "list": ["a", "b"]]),
            #"time=2026-11-28T05:25:16.123Z level=info msg=m count=42 list="[\"a\", \"b\"]""#
        )
    }

    func testTimeIsQuotedIfItEverNeedsIt() {
        XCTAssertEqual(
            LogfmtLogHandler.format(level: .info, message: "m", metadata: [:], time: ""),
            #"time="" level=info msg=m"#
        )
    }

    // MARK: timestamp

    func testTimestamp() {
        XCTAssertEqual(LogfmtLogHandler.timestamp(secondsSinceEpoch: 1_795_843_516, nanoseconds: 123_456_789), "2026-11-28T05:25:16.123Z")
        XCTAssertEqual(LogfmtLogHandler.timestamp(secondsSinceEpoch: 0, nanoseconds: 0), "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(LogfmtLogHandler.timestamp(secondsSinceEpoch: 951_782_400, nanoseconds: 5_000_000), "2000-02-29T00:00:00.005Z")
        XCTAssertEqual(LogfmtLogHandler.timestamp(secondsSinceEpoch: 1_795_843_516, nanoseconds: 999_999_999), "2026-11-28T05:25:16.999Z")
    }

    // MARK: handler

    private final class Lines: Sendable {
        let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }
        func append(_ line: String) { lines.withLock { $0.append(line) } }
    }

    /// The handler's line without its variable `time=…` field.
    private func withoutTime(_ line: String) throws -> String {
        let prefix = try XCTUnwrap(line.split(separator: " ", maxSplits: 1).first)
        XCTAssertTrue(prefix.hasPrefix("time="))
        XCTAssertEqual(prefix.count, "time=2026-11-28T05:25:16.123Z".count)
        XCTAssertTrue(prefix.hasSuffix("Z"))
        return String(line.dropFirst(prefix.count + 1))
    }

    func testHandlerWritesOneTerminatedLinePerEvent() throws {
        let lines = Lines()
        var logger = Logger(label: "test") { LogfmtLogHandler(label: $0, write: { lines.append($0) }) }
        logger[metadataKey: "session"] = "udm-3"
        logger[metadataKey: "user"] = "bob"

        logger.info("session ended", metadata: ["user": "alice", "retrieved_bytes": "5120"])
        logger.debug("not at the default level")
        logger.warning("slow\nbackend")

        let all = lines.all
        XCTAssertEqual(all.count, 2)
        XCTAssertTrue(all.allSatisfy { $0.hasSuffix("\n") && $0.filter { $0 == "\n" }.count == 1 })
        XCTAssertEqual(try withoutTime(all[0]), "level=info msg=\"session ended\" retrieved_bytes=5120 session=udm-3 user=alice\n")
        XCTAssertEqual(try withoutTime(all[1]), "level=warning msg=\"slow\\nbackend\" session=udm-3 user=bob\n")
    }

    func testHandlerEscapesClientControlledText() throws {
        let lines = Lines()
        var logger = Logger(label: "test") { LogfmtLogHandler(label: $0, write: { lines.append($0) }) }
        let user = "alice\r\nsession ended: user=root"
        logger[metadataKey: "user"] = .string(user)
        logger.info("session ended: user=\(user) ending=quit")
        logger.warning("login failed: user=\u{1b}[31mred", metadata: ["user": "\u{1b}[31mred"])

        let all = lines.all
        XCTAssertEqual(all.count, 2)
        XCTAssertEqual(
            try withoutTime(all[0]),
            #"level=info msg="session ended: user=alice\r\nsession ended: user=root ending=quit" user="alice\r\nsession ended: user=root""# + "\n"
        )
        XCTAssertEqual(try withoutTime(all[1]), #"level=warning msg="login failed: user=\u001b[31mred" user="\u001b[31mred""# + "\n")
        for line in all {
            let controls = String(line.unicodeScalars.filter { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) })
            XCTAssertEqual(controls, "\n", line.debugDescription)
        }
    }

    func testHandlerLevelAndProviderAndError() throws {
        struct Refused: Error, CustomStringConvertible { var description: String { "connection refused" } }
        let lines = Lines()
        var handler = LogfmtLogHandler(label: "test", write: { lines.append($0) })
        handler.logLevel = .trace
        handler.metadataProvider = Logger.MetadataProvider { ["listener": "pop3s", "session": "provided"] }
        handler[metadataKey: "session"] = "own"
        XCTAssertEqual(handler[metadataKey: "session"], "own")

        handler.log(event: LogEvent(
            level: .error, message: "backend failed", error: Refused(), metadata: ["backend": "imap.example"],
            source: nil, file: #fileID, function: #function, line: #line
        ))
        handler.log(event: LogEvent(
            level: .trace, message: "x", error: Refused(), metadata: ["error": "explicit"],
            source: nil, file: #fileID, function: #function, line: #line
        ))

        let all = lines.all
        XCTAssertEqual(all.count, 2)
        XCTAssertEqual(
            try withoutTime(all[0]),
            "level=error msg=\"backend failed\" backend=imap.example error=\"connection refused\" listener=pop3s session=provided\n"
        )
        XCTAssertEqual(try withoutTime(all[1]), "level=trace msg=x error=explicit listener=pop3s session=provided\n")
    }

    func testTimeOfHandlerLineIsNow() throws {
        let lines = Lines()
        let handler = LogfmtLogHandler(label: "test", write: { lines.append($0) })
        var before = timespec()
        clock_gettime(CLOCK_REALTIME, &before)
        handler.log(event: LogEvent(level: .info, message: "m", metadata: nil, source: nil, file: #fileID, function: #function, line: #line))
        var after = timespec()
        clock_gettime(CLOCK_REALTIME, &after)
        let stamp = try XCTUnwrap(lines.all.first?.split(separator: " ").first).dropFirst("time=".count)
        let low = LogfmtLogHandler.timestamp(secondsSinceEpoch: Int(before.tv_sec), nanoseconds: Int(before.tv_nsec))
        let high = LogfmtLogHandler.timestamp(secondsSinceEpoch: Int(after.tv_sec), nanoseconds: Int(after.tv_nsec))
        XCTAssertLessThanOrEqual(low, String(stamp))  // same-width ISO 8601 strings sort by time
        XCTAssertLessThanOrEqual(String(stamp), high)
    }
}

final class LogfmtStandardErrorTests: XCTestCase {
    /// Points fd 2 at a pipe for a moment and checks the bytes that arrive there.
    func testStandardErrorWritesTheLineToFD2() throws {
        var pipeFDs: [Int32] = [-1, -1]
        XCTAssertEqual(pipe(&pipeFDs), 0)
        defer { close(pipeFDs[0]) }
        let savedStderr = dup(2)
        XCTAssertGreaterThanOrEqual(savedStderr, 0)
        dup2(pipeFDs[1], 2)
        close(pipeFDs[1])
        LogfmtLogHandler.standardError("time=x level=info msg=\"grüße\"\n")
        dup2(savedStderr, 2)
        close(savedStderr)

        var buffer = [UInt8](repeating: 0, count: 256)
        let count = buffer.withUnsafeMutableBytes { read(pipeFDs[0], $0.baseAddress, $0.count) }
        XCTAssertEqual(Array(buffer[0..<max(count, 0)]), Array("time=x level=info msg=\"grüße\"\n".utf8))
    }
}
