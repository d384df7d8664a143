import HVFileCopy
import HVHeartbeat
import HVKVP
import HVServiceKit
import HVShutdown
import HVTimeSync
import HVVSS

/// The whole configuration, validated: every section is parsed up front so a bad value stops
/// the daemon at start (with file, line and key) instead of surfacing at 3 a.m. on first use.
public struct DaemonConfiguration: Sendable {
    public var document: ConfigDocument
    public var settings: DaemonSettings
    public var kvp: KVPConfiguration
    public var vss: VSSConfiguration
    public var fcopy: FileCopyConfiguration
    public var shutdown: ShutdownConfiguration
    public var timeSync: TimeSyncConfiguration
    public var heartbeat: HeartbeatConfiguration

    /// Sections hvguestd understands (`daemon` and `log` are always known).
    public static let knownSections: Set<String> = ["kvp", "vss", "fcopy", "shutdown", "timesync", "heartbeat"]

    public init(document: ConfigDocument, configDirectory: String) throws(ConfigError) {
        self.document = document
        settings = try DaemonSettings(document: document)
        kvp = try KVPConfiguration(section: document.section("kvp"))
        vss = try VSSConfiguration(section: document.section("vss"), configDirectory: configDirectory)
        fcopy = try FileCopyConfiguration(section: document.section("fcopy"))
        shutdown = try ShutdownConfiguration(section: document.section("shutdown"), configDirectory: configDirectory)
        timeSync = try TimeSyncConfiguration(section: document.section("timesync"))
        heartbeat = try HeartbeatConfiguration(section: document.section("heartbeat"))
    }

    /// Loads `options`' configuration file and drop-ins and validates everything.
    public static func load(_ options: DaemonOptions) throws(ConfigError) -> DaemonConfiguration {
        let doc = try ConfigDocument.load(path: options.configFile, knownSections: knownSections)
        return try DaemonConfiguration(document: doc, configDirectory: options.configDirectory)
    }
}
