import CSystemd
import Glibc
import Logging

/// A swift-log handler that writes native journal entries (`sd_journal_sendv(3)`), keeping metadata as
/// searchable fields instead of flattening it into text:
///
/// ```
/// MESSAGE=session ended
/// PRIORITY=6
/// SYSLOG_IDENTIFIER=popgate
/// CODE_FILE=Server/SessionDriver.swift
/// CODE_LINE=212
/// CODE_FUNC=finish()
/// POPGATE_RETRIEVED_BYTES=5120
/// POPGATE_SESSION=udm-3
/// ```
///
/// so `journalctl POPGATE_SESSION=udm-3` shows one session. The message and every value pass through
/// `LogEscaping.escaped(_:quote:)` (a newline becomes `\n`, ESC `\u001b`, a backslash `\\`): part of them
/// comes from POP3 clients (the user name), and a raw line break or terminal escape sequence would let a
/// client fake entries for log scanners or drive the terminal of an operator running journalctl. One event
/// is thus one line of printable text, in the journal as in logfmt. Field names are safe by construction
/// (see `fieldName(metadataKey:)`).
/// Sending failures (journald not running) are ignored: logging never fails the caller.
public struct JournalLogHandler: LogHandler {
    /// One `NAME=value` assignment of an entry.
    public struct Field: Sendable, Equatable, CustomStringConvertible {
        public var name: String
        public var value: [UInt8]

        public init(name: String, value: [UInt8]) {
            self.name = name
            self.value = value
        }

        public init(name: String, value: String) {
            self.init(name: name, value: Array(value.utf8))
        }

        public var description: String { "\(self.name)=\(String(decoding: self.value, as: UTF8.self))" }
    }

    public let label: String
    /// `SYSLOG_IDENTIFIER=` of every entry.
    public let identifier: String
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?

    public init(label: String, identifier: String = "popgate") {
        self.label = label
        self.identifier = identifier
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
        let fields = Self.entry(
            level: event.level,
            message: event.message.description,
            metadata: metadata,
            identifier: self.identifier,
            file: event.file,
            function: event.function,
            line: event.line
        )
        _ = Self.send(fields)
    }

    /// The fields of one entry: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, CODE_FILE, CODE_LINE, CODE_FUNC,
    /// then one `POPGATE_<KEY>` per metadata key, ordered by field name. Every value made from a string is
    /// escaped here, the one place the handler builds entries, so nothing it sends is unescaped.
    public static func entry(
        level: Logger.Level,
        message: String,
        metadata: Logger.Metadata,
        identifier: String,
        file: String,
        function: String,
        line: UInt
    ) -> [Field] {
        // Identifier, file and function are not from clients, but escaping them too costs nothing for
        // ordinary text and leaves no value to reason about separately.
        var fields = [
            Field(name: "MESSAGE", value: LogEscaping.escaped(message)),
            Field(name: "PRIORITY", value: String(priority(level))),
            Field(name: "SYSLOG_IDENTIFIER", value: LogEscaping.escaped(identifier)),
            Field(name: "CODE_FILE", value: LogEscaping.escaped(file)),
            Field(name: "CODE_LINE", value: String(line)),
            Field(name: "CODE_FUNC", value: LogEscaping.escaped(function)),
        ]
        let custom = metadata
            .map { Field(name: fieldName(metadataKey: $0.key), value: LogEscaping.escaped($0.value.description)) }
            .sorted { $0.name < $1.name || ($0.name == $1.name && $0.value.lexicographicallyPrecedes($1.value)) }
        fields.append(contentsOf: custom)
        return fields
    }

    /// syslog priority (`syslog(3)`) of a swift-log level: trace and debug 7, info 6, notice 5,
    /// warning 4, error 3, critical 2.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace: 7
        case .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// `POPGATE_` followed by the key with ASCII letters uppercased and every other character outside
    /// `[A-Z0-9_]` replaced by `_` (`retrieved_bytes` → `POPGATE_RETRIEVED_BYTES`, `tls.version` →
    /// `POPGATE_TLS_VERSION`). Cut to journald's 64-character limit for field names.
    ///
    /// So a name needs no escaping: it is only `[A-Z0-9_]` (never `=`, a newline or a control, which would
    /// break the native protocol's framing), never empty, and the prefix keeps it from starting with a
    /// digit or with `_`, which journald reserves for fields it sets itself.
    public static func fieldName(metadataKey key: String) -> String {
        var name = "POPGATE_"
        for scalar in key.unicodeScalars {
            guard name.utf8.count < maximumFieldNameLength else { break }
            switch scalar {
            case "A"..."Z", "0"..."9", "_": name.unicodeScalars.append(scalar)
            case "a"..."z": name.unicodeScalars.append(Unicode.Scalar(scalar.value - 0x20)!)
            default: name += "_"
            }
        }
        return name
    }

    /// journald drops fields with longer names.
    static let maximumFieldNameLength = 64

    /// Hands the entry to libsystemd as one iovec per field. Returns sd_journal_sendv's result
    /// (0, or a negative errno such as -ENOENT when journald's socket is missing).
    static func send(_ fields: [Field]) -> Int32 {
        var buffer: [UInt8] = []
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(fields.count)
        for field in fields {
            let start = buffer.count
            buffer.append(contentsOf: field.name.utf8)
            buffer.append(UInt8(ascii: "="))
            buffer.append(contentsOf: field.value)
            ranges.append(start..<buffer.count)
        }
        return buffer.withUnsafeMutableBytes { raw -> Int32 in
            guard let base = raw.baseAddress else { return -EINVAL }
            var vectors = ranges.map { iovec(iov_base: base + $0.lowerBound, iov_len: $0.count) }
            return sd_journal_sendv(&vectors, Int32(vectors.count))
        }
    }
}
