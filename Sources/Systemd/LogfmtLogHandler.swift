import Glibc
import Logging

/// A swift-log handler that writes one logfmt line per event, for stderr when it is not the journal:
///
/// ```
/// time=2026-11-28T05:25:16.123Z level=info msg="session ended" retrieved_bytes=5120 session=udm-3 user=alice
/// ```
///
/// `time` (UTC, milliseconds), `level` and `msg` come first, then the metadata keys in sorted order so
/// the same event always renders the same way. See `format(level:message:metadata:time:)` for quoting.
public struct LogfmtLogHandler: LogHandler {
    public let label: String
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?

    private let write: @Sendable (String) -> Void

    /// - Parameter write: receives each complete line, terminating `"\n"` included, in one call.
    public init(label: String, write: @escaping @Sendable (String) -> Void = LogfmtLogHandler.standardError) {
        self.label = label
        self.write = write
        self.metadataProvider = LoggingSystem.metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let metadata = EffectiveMetadata.merge(
            base: self.metadata,
            provider: self.metadataProvider,
            explicit: event.metadata,
            error: event.error
        )
        let line = Self.format(
            level: event.level,
            message: event.message.description,
            metadata: metadata,
            time: Self.currentTimestamp()
        )
        self.write(line + "\n")
    }

    /// Writes the line to fd 2 with a single write(2), so lines from concurrent loggers never interleave
    /// (stderr is a pipe or the journal stream; writes up to PIPE_BUF are atomic). A short write, which
    /// only happens for very long lines, is completed with further writes.
    public static let standardError: @Sendable (String) -> Void = { line in
        var line = line
        line.withUTF8 { bytes in
            guard var next = bytes.baseAddress else { return }
            var remaining = bytes.count
            while remaining > 0 {
                let written = Glibc.write(2, next, remaining)
                if written < 0 {
                    if errno == EINTR { continue }
                    return  // nowhere left to report a failing stderr
                }
                next += written
                remaining -= written
            }
        }
    }

    /// Renders one event without the trailing newline.
    ///
    /// A value is quoted when it is empty or contains a space, `=`, `"` or a control character (as
    /// `LogEscaping.isControl(_:)` defines it, which includes C1 controls and U+2028/U+2029); inside quotes
    /// the value is written by `LogEscaping.escaped(_:quote:)`, so `"` and `\` are backslash-escaped,
    /// newline, carriage return and tab become `\n`, `\r`, `\t` and other controls `\u001b` style
    /// (escapes a JSON-style logfmt reader understands). An unquoted value is literal, so a backslash there
    /// stays single. So an event is always exactly one line of printable text. Keys are not quoted: a
    /// character a key cannot hold (space, `=`, `"`, control) becomes `_`, and an empty key is `_`.
    public static func format(level: Logger.Level, message: String, metadata: Logger.Metadata, time: String) -> String {
        var line = "time="
        appendValue(time, to: &line)
        line += " level="
        line += level.rawValue
        line += " msg="
        appendValue(message, to: &line)
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            line += " "
            appendKey(key, to: &line)
            line += "="
            appendValue(value.description, to: &line)
        }
        return line
    }

    /// RFC 3339 UTC with milliseconds, e.g. `2026-11-28T05:25:16.123Z`.
    public static func timestamp(secondsSinceEpoch: Int, nanoseconds: Int) -> String {
        var seconds = time_t(secondsSinceEpoch)
        var parts = tm()
        guard gmtime_r(&seconds, &parts) != nil else {
            return "\(secondsSinceEpoch)"
        }
        var text = ""
        text.reserveCapacity(24)
        appendPadded(Int(parts.tm_year) + 1900, width: 4, to: &text)
        text += "-"
        appendPadded(Int(parts.tm_mon) + 1, width: 2, to: &text)
        text += "-"
        appendPadded(Int(parts.tm_mday), width: 2, to: &text)
        text += "T"
        appendPadded(Int(parts.tm_hour), width: 2, to: &text)
        text += ":"
        appendPadded(Int(parts.tm_min), width: 2, to: &text)
        text += ":"
        appendPadded(Int(parts.tm_sec), width: 2, to: &text)
        text += "."
        appendPadded(nanoseconds / 1_000_000, width: 3, to: &text)
        text += "Z"
        return text
    }

    static func currentTimestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return timestamp(secondsSinceEpoch: Int(now.tv_sec), nanoseconds: Int(now.tv_nsec))
    }

    private static func appendPadded(_ value: Int, width: Int, to text: inout String) {
        let digits = String(value)
        if digits.utf8.count < width {
            text += String(repeating: "0", count: width - digits.utf8.count)
        }
        text += digits
    }

    private static func needsQuoting(_ scalar: Unicode.Scalar) -> Bool {
        scalar == " " || scalar == "=" || scalar == "\"" || LogEscaping.isControl(scalar)
    }

    private static func appendKey(_ key: String, to line: inout String) {
        guard !key.isEmpty else {
            line += "_"
            return
        }
        guard key.unicodeScalars.contains(where: needsQuoting) else {
            line += key
            return
        }
        var cleaned = String.UnicodeScalarView()
        for scalar in key.unicodeScalars {
            cleaned.append(needsQuoting(scalar) ? "_" : scalar)
        }
        line += String(cleaned)
    }

    private static func appendValue(_ value: String, to line: inout String) {
        guard value.isEmpty || value.unicodeScalars.contains(where: needsQuoting) else {
            line += value
            return
        }
        line += "\""
        line += LogEscaping.escaped(value, quote: "\"")
        line += "\""
    }
}
