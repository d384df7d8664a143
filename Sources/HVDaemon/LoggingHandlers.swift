import HVServiceKit
import HVSystem
import Logging
import Synchronization

/// The daemon's log level, shared by every handler it makes, so that a reload (SIGHUP) changes
/// the level of loggers already handed out (each component keeps its own copy of a `Logger`).
/// Read on every log call: one relaxed atomic load.
public final class LogLevelSetting: Sendable {
    private let raw: Atomic<UInt8>

    public init(_ level: Logger.Level) { raw = Atomic(Self.code(level)) }

    public var level: Logger.Level { Self.level(raw.load(ordering: .relaxed)) }

    public func set(_ level: Logger.Level) { raw.store(Self.code(level), ordering: .relaxed) }

    private static func code(_ level: Logger.Level) -> UInt8 {
        switch level {
        case .trace: return 0
        case .debug: return 1
        case .info: return 2
        case .notice: return 3
        case .warning: return 4
        case .error: return 5
        case .critical: return 6
        }
    }

    private static func level(_ code: UInt8) -> Logger.Level {
        switch code {
        case 0: return .trace
        case 1: return .debug
        case 2: return .info
        case 3: return .notice
        case 4: return .warning
        case 5: return .error
        default: return .critical
        }
    }
}

/// A handler's level: the shared setting's, unless a level was set on this handler (a copy of
/// a `Logger`) or no setting was given.
struct HandlerLevel: Sendable {
    private var own: Logger.Level?
    private let shared: LogLevelSetting?

    init(_ level: Logger.Level, shared: LogLevelSetting?) {
        self.shared = shared
        own = shared == nil ? level : nil
    }

    var value: Logger.Level {
        get { own ?? shared?.level ?? .info }
        set { own = newValue }
    }
}

/// A swift-log handler that writes structured entries to journald (`sd_journal_sendv`).
///
/// Metadata keys that are journal field names (`HV_SERVICE`, `HV_OP`, …; see `LogField`) become
/// fields, so `journalctl HV_SERVICE=kvp` works. Every write goes through the `LogGate`, so
/// nothing is written while VSS holds filesystems frozen.
public struct JournalLogHandler: LogHandler {
    /// Delivers one entry's fields; throws when journald refused it.
    public typealias Sender = @Sendable ([String]) throws -> Void

    public var logLevel: Logger.Level {
        get { level.value }
        set { level.value = newValue }
    }
    private var level: HandlerLevel
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public let label: String
    /// `SYSLOG_IDENTIFIER`; `hvguestd` for the daemon.
    public let identifier: String
    private let gate: LogGate
    private let sender: Sender

    /// - Parameters:
    ///   - sender: tests record fields here; the default sends to journald and, when that
    ///     fails (journald restarting), writes the entry to stderr instead of losing it.
    ///   - levelSetting: when given, the level follows it (and `level` is not used).
    public init(
        label: String, level: Logger.Level = .info, levelSetting: LogLevelSetting? = nil, identifier: String = "hvguestd",
        gate: LogGate = .shared, metadataProvider: Logger.MetadataProvider? = nil, sender: Sender? = nil
    ) {
        self.label = label
        self.level = HandlerLevel(level, shared: levelSetting)
        self.identifier = identifier
        self.gate = gate
        self.metadataProvider = metadataProvider
        self.sender = sender ?? { fields in try Journal.send(fields) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = LogEntryFormat.mergedMetadata(handler: metadata, provider: metadataProvider, event: event)
        let level = event.level
        let message = event.message.description
        let fields = LogEntryFormat.journalFields(
            level: level, message: message, metadata: merged, identifier: identifier,
            file: event.file, function: event.function, line: event.line)
        let sender = self.sender
        gate.submit {
            do {
                try sender(fields)
            } catch {
                writeToStandardError(LogEntryFormat.stderrLine(level: level, message: message, metadata: merged, timestamp: nil))
            }
        }
    }
}

/// A swift-log handler that writes one line per entry to standard error (terminals, tests, and
/// systemd without a journal socket). Timestamps are left out when systemd runs the daemon,
/// because the journal adds its own.
public struct StderrLogHandler: LogHandler {
    public var logLevel: Logger.Level {
        get { level.value }
        set { level.value = newValue }
    }
    private var level: HandlerLevel
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public let label: String
    private let timestamps: Bool
    private let gate: LogGate
    private let write: @Sendable (String) -> Void

    /// - Parameters:
    ///   - timestamps: prefix each line with UTC time; default: unless under systemd.
    ///   - write: receives each finished line; default: `write(2)` to fd 2.
    ///   - levelSetting: when given, the level follows it (and `level` is not used).
    public init(
        label: String, level: Logger.Level = .info, levelSetting: LogLevelSetting? = nil, timestamps: Bool? = nil,
        gate: LogGate = .shared, metadataProvider: Logger.MetadataProvider? = nil, write: (@Sendable (String) -> Void)? = nil
    ) {
        self.label = label
        self.level = HandlerLevel(level, shared: levelSetting)
        self.timestamps = timestamps ?? !Journal.isUnderSystemd
        self.gate = gate
        self.metadataProvider = metadataProvider
        self.write = write ?? { writeToStandardError($0) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = LogEntryFormat.mergedMetadata(handler: metadata, provider: metadataProvider, event: event)
        // The time of the event, not of the (possibly delayed) write.
        let line = LogEntryFormat.stderrLine(
            level: event.level, message: event.message.description, metadata: merged,
            timestamp: timestamps ? utcTimestamp() : nil)
        let write = self.write
        gate.submit { write(line) }
    }
}

/// Chooses and installs the daemon's log handler.
public enum HVLogging {
    /// `auto` resolved: journald when systemd runs the daemon and journald's socket exists.
    public static func resolvedTarget(_ target: DaemonSettings.LogTarget) -> DaemonSettings.LogTarget {
        switch target {
        case .journal, .stderr: return target
        case .auto: return Journal.isUnderSystemd && Journal.isSocketPresent ? .journal : .stderr
        }
    }

    /// A handler for `label` as `settings` ask (target; level from `levelSetting` when given,
    /// else `settings.logLevel`).
    public static func makeHandler(label: String, settings: DaemonSettings, levelSetting: LogLevelSetting? = nil) -> any LogHandler {
        switch resolvedTarget(settings.logTarget) {
        case .journal: return JournalLogHandler(label: label, level: settings.logLevel, levelSetting: levelSetting)
        case .auto, .stderr: return StderrLogHandler(label: label, level: settings.logLevel, levelSetting: levelSetting)
        }
    }

    /// Installs the handler process-wide; returns the level every logger follows (SIGHUP sets
    /// it from the re-read configuration). swift-log allows this once per process: call it
    /// from `main` only (tests build handlers with `makeHandler` or the initialisers).
    @discardableResult
    public static func bootstrap(settings: DaemonSettings) -> LogLevelSetting {
        let level = LogLevelSetting(settings.logLevel)
        LoggingSystem.bootstrap { label in makeHandler(label: label, settings: settings, levelSetting: level) }
        return level
    }
}
