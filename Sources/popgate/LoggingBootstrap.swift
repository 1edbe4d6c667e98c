import Config
import Foundation
import Logging
import Systemd

/// Log-level plumbing: the handler chosen by `log.target` (journal or logfmt on stderr) and the
/// `log.level` a reload can change.
enum LoggingBootstrap {
    static func bootstrap(_ config: PopGateConfig) -> Logger {
        let level = Logger.Level(rawValue: config.logLevel) ?? .info
        let journal: Bool
        switch config.logTarget {
        case .journal: journal = true
        case .stderr: journal = false
        case .auto: journal = JournalStream.stderrIsJournal(journalStream: ProcessInfo.processInfo.environment["JOURNAL_STREAM"])
        }
        LogLevelSwitch.shared.level = level
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = journal ? JournalLogHandler(label: label) : LogfmtLogHandler(label: label)
            handler.logLevel = .trace
            return ReloadableLevelHandler(inner: handler)
        }
        return Logger(label: "popgate")
    }
}

/// The configured `log.level`, changeable by a reload (loggers copy their handler, so the level
/// lives in one shared place that every handler reads).
final class LogLevelSwitch: @unchecked Sendable {
    static let shared = LogLevelSwitch()
    private let lock = NSLock()
    private var current = Logger.Level.info  // guarded by `lock`

    var level: Logger.Level {
        get { lock.withLock { current } }
        set { lock.withLock { current = newValue } }
    }
}

/// Forwards to the real handler; its level is the shared switch's.
struct ReloadableLevelHandler: LogHandler {
    var inner: any LogHandler

    var logLevel: Logger.Level {
        get { LogLevelSwitch.shared.level }
        set { LogLevelSwitch.shared.level = newValue }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        inner.log(event: event)
    }
}

