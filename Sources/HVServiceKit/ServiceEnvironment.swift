import Logging

/// Where a service lives: the paths it may use and whether it runs against the real machine.
public struct ServiceEnvironment: Sendable {
    /// Root under which device paths are resolved (`/` on a real system).
    public var deviceRoot: String
    /// Persistent state (KVP pool files); `/var/lib/hyperv` on a real system.
    public var stateDirectory: String
    /// Runtime state (status socket, frozen-filesystem record); `/run/hvguest` on a real system,
    /// `<state-dir>/run` when `--state-dir` is given.
    public var runtimeDirectory: String
    /// Configuration directory (hooks live below it); `/etc/hvguest` on a real system.
    public var configDirectory: String
    public var logger: Logger

    public init(deviceRoot: String, stateDirectory: String, runtimeDirectory: String, configDirectory: String, logger: Logger) {
        self.deviceRoot = deviceRoot
        self.stateDirectory = stateDirectory
        self.runtimeDirectory = runtimeDirectory
        self.configDirectory = configDirectory
        self.logger = logger
    }

    /// True when the device root is not `/`: the daemon then never touches the real machine
    /// (DESIGN.md, "safety when emulated"): VSS freezes only its allow-list, the clock is never
    /// set, power actions are logged, file copies go only under configured roots.
    public var isEmulated: Bool { deviceRoot != "/" }

    /// `deviceRoot` + `relative` (`relative` has no leading slash).
    public func devicePath(_ relative: String) -> String {
        deviceRoot == "/" ? "/" + relative : (deviceRoot.hasSuffix("/") ? deviceRoot : deviceRoot + "/") + relative
    }
}

/// Journal field names (DESIGN.md, "Names"). Use them as swift-log metadata keys; the journald
/// handler sends them as fields, the stderr handler prints them as `KEY=value`.
public enum LogField {
    public static let service = "HV_SERVICE"
    public static let operation = "HV_OP"
    public static let pool = "HV_POOL"
    public static let status = "HV_STATUS"
    public static let durationMicroseconds = "HV_DURATION_USEC"
}
