import HVServiceKit
import Logging

/// The daemon's own settings: the `[daemon]` and `[log]` sections.
public struct DaemonSettings: Sendable, Equatable {
    /// Where log output goes (`log.target`).
    public enum LogTarget: String, Sendable, CaseIterable {
        /// journald when systemd runs the daemon and the journal socket exists, else stderr.
        case auto
        /// journald's native protocol (structured fields). Without a running journald, entries
        /// are dropped (libsystemd ignores a missing socket): prefer `auto`.
        case journal
        /// One line per entry on standard error.
        case stderr
    }

    /// The sections this struct reads; always accepted by `ConfigDocument`.
    public static let sectionNames: Set<String> = ["daemon", "log"]

    /// `log.target`: `"auto"` (default), `"journal"` or `"stderr"`.
    public var logTarget: LogTarget = .auto
    /// `log.level`: `"debug"`, `"info"` (default), `"notice"`, `"warning"` or `"error"`.
    public var logLevel: Logger.Level = .info
    /// `daemon.reconnect_max_seconds`: the cap of the back-off between attempts to reopen a
    /// channel that went away. Default 30, range 1…3600 (decimals allowed).
    public var reconnectMaxSeconds: Double = 30
    /// `daemon.watchdog`: answer systemd's watchdog (`WatchdogSec=`) when it asks. Default true.
    public var watchdog: Bool = true

    /// All defaults.
    public init() {}

    /// Reads and validates both sections; unknown keys are errors.
    public init(daemon: ConfigSection, log: ConfigSection) throws(ConfigError) {
        try daemon.checkKnownKeys(["reconnect_max_seconds", "watchdog"])
        try log.checkKnownKeys(["target", "level"])
        let target = try log.choice("target", allowed: LogTarget.allCases.map(\.rawValue), default: "auto")
        logTarget = LogTarget(rawValue: target) ?? .auto
        let levels: [(String, Logger.Level)] = [("debug", .debug), ("info", .info), ("notice", .notice), ("warning", .warning), ("error", .error)]
        let level = try log.choice("level", allowed: levels.map(\.0), default: "info")
        logLevel = levels.first { $0.0 == level }?.1 ?? .info
        reconnectMaxSeconds = try daemon.seconds("reconnect_max_seconds", default: 30, range: 1...3600)
        watchdog = try daemon.bool("watchdog", default: true)
    }

    /// Reads the `[daemon]` and `[log]` sections of `document`.
    public init(document: ConfigDocument) throws(ConfigError) {
        try self.init(daemon: document.section("daemon"), log: document.section("log"))
    }
}
