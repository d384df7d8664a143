import HVFileCopy
import HVKVP
import HVServiceKit
import HVVSS

/// The whole configuration, validated: every section is parsed up front so a bad value stops
/// the daemon at start (with file, line and key) instead of surfacing at 3 a.m. on first use.
public struct DaemonConfiguration: Sendable {
    public var document: ConfigDocument
    public var settings: DaemonSettings
    public var kvp: KVPConfiguration
    public var vss: VSSConfiguration
    public var fcopy: FileCopyConfiguration

    /// Sections hvguestd understands (`daemon` and `log` are always known).
    public static let knownSections: Set<String> = ["kvp", "vss", "fcopy", "shutdown", "timesync", "heartbeat"]

    /// Keys of the sections whose services have not landed yet: accepted so configuration
    /// written for them does not break the daemon.
    static let reservedKeys: [String: Set<String>] = [
        "shutdown": ["mode", "hooks_directory", "hook_timeout_seconds"],
        "timesync": ["mode"],
        "heartbeat": ["mode"],
    ]

    public init(document: ConfigDocument, configDirectory: String) throws(ConfigError) {
        self.document = document
        settings = try DaemonSettings(document: document)
        kvp = try KVPConfiguration(section: document.section("kvp"))
        vss = try VSSConfiguration(section: document.section("vss"), configDirectory: configDirectory)
        fcopy = try FileCopyConfiguration(section: document.section("fcopy"))
        for (name, keys) in Self.reservedKeys {
            let s = document.section(name)
            try s.checkKnownKeys(keys)
            _ = try s.choice("mode", allowed: ["kernel", "userspace"], default: "kernel")
        }
    }

    /// Loads `options`' configuration file and drop-ins and validates everything.
    public static func load(_ options: DaemonOptions) throws(ConfigError) -> DaemonConfiguration {
        let doc = try ConfigDocument.load(path: options.configFile, knownSections: knownSections)
        return try DaemonConfiguration(document: doc, configDirectory: options.configDirectory)
    }
}
