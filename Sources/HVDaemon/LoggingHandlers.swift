import HVServiceKit
import HVSystem
import Logging

/// A swift-log handler that writes structured entries to journald (`sd_journal_sendv`).
///
/// Metadata keys that are journal field names (`HV_SERVICE`, `HV_OP`, …; see `LogField`) become
/// fields, so `journalctl HV_SERVICE=kvp` works. Every write goes through the `LogGate`, so
/// nothing is written while VSS holds filesystems frozen.
public struct JournalLogHandler: LogHandler {
    /// Delivers one entry's fields; throws when journald refused it.
    public typealias Sender = @Sendable ([String]) throws -> Void

    public var logLevel: Logger.Level
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
    public init(
        label: String, level: Logger.Level = .info, identifier: String = "hvguestd", gate: LogGate = .shared,
        metadataProvider: Logger.MetadataProvider? = nil, sender: Sender? = nil
    ) {
        self.label = label
        self.logLevel = level
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
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public let label: String
    private let timestamps: Bool
    private let gate: LogGate
    private let write: @Sendable (String) -> Void

    /// - Parameters:
    ///   - timestamps: prefix each line with UTC time; default: unless under systemd.
    ///   - write: receives each finished line; default: `write(2)` to fd 2.
    public init(
        label: String, level: Logger.Level = .info, timestamps: Bool? = nil, gate: LogGate = .shared,
        metadataProvider: Logger.MetadataProvider? = nil, write: (@Sendable (String) -> Void)? = nil
    ) {
        self.label = label
        self.logLevel = level
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

    /// A handler for `label` as `settings` ask (level and target).
    public static func makeHandler(label: String, settings: DaemonSettings) -> any LogHandler {
        switch resolvedTarget(settings.logTarget) {
        case .journal: return JournalLogHandler(label: label, level: settings.logLevel)
        case .auto, .stderr: return StderrLogHandler(label: label, level: settings.logLevel)
        }
    }

    /// Installs the handler process-wide. swift-log allows this once per process: call it
    /// from `main` only (tests build handlers with `makeHandler` or the initialisers).
    public static func bootstrap(settings: DaemonSettings) {
        LoggingSystem.bootstrap { label in makeHandler(label: label, settings: settings) }
    }
}
