import HVServiceKit

/// Who answers an IC: the kernel's hv_utils (default) or hvguestd over uio_hv_generic.
public enum ICMode: String, Sendable, Equatable, CaseIterable {
    case kernel, userspace
}

/// The `[shutdown]` section (docs/ICS.md).
public struct ShutdownConfiguration: Sendable, Equatable {
    public var mode: ICMode
    /// Hook executables, run in name order before the power action; default `<config>/shutdown.d`.
    public var hooksDirectory: String
    /// Time limit of one hook run (its process group is killed when exceeded).
    public var hookTimeoutSeconds: Double
    /// Kernel mode: watch the kernel log for hv_utils' "shutdown request received" and run the
    /// hooks before the system goes down.
    public var watchKernelLog: Bool

    public static let defaultHookTimeoutSeconds: Double = 30
    public static let knownKeys: Set<String> = ["mode", "hooks_directory", "hook_timeout_seconds", "watch_kernel_log"]

    public init(
        mode: ICMode = .kernel, hooksDirectory: String, hookTimeoutSeconds: Double = defaultHookTimeoutSeconds,
        watchKernelLog: Bool = true
    ) {
        self.mode = mode
        self.hooksDirectory = hooksDirectory
        self.hookTimeoutSeconds = hookTimeoutSeconds
        self.watchKernelLog = watchKernelLog
    }

    public init(section: ConfigSection, configDirectory: String) throws(ConfigError) {
        try section.checkKnownKeys(Self.knownKeys)
        let base = configDirectory.hasSuffix("/") ? String(configDirectory.dropLast()) : configDirectory
        let mode = ICMode(rawValue: try section.choice("mode", allowed: ["kernel", "userspace"], default: "kernel")) ?? .kernel
        let dir = try section.string("hooks_directory", default: base + "/shutdown.d")
        guard dir.hasPrefix("/") else { throw section.error("hooks_directory", "\"\(dir)\" is not an absolute path") }
        self.init(
            mode: mode, hooksDirectory: dir,
            // The host waits for the power action only as long as its own shutdown timeout.
            hookTimeoutSeconds: try section.seconds("hook_timeout_seconds", default: Self.defaultHookTimeoutSeconds, range: 0.1...600),
            watchKernelLog: try section.bool("watch_kernel_log", default: true))
    }
}
