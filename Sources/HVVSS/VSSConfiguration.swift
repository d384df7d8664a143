import HVServiceKit

/// The `[vss]` section of the configuration (docs/VSS.md, "Configuration").
public struct VSSConfiguration: Sendable, Equatable {
    /// The allow-list. When non-empty, these mountpoints are the only candidates for freezing
    /// (other rules still apply). Required when the daemon runs emulated.
    public var mountpoints: [String]
    /// Mountpoints never frozen; excluding one mount of a filesystem excludes the filesystem.
    public var excludeMountpoints: [String]
    /// Filesystem types never frozen (added to the built-in list of types that cannot freeze).
    public var excludeFileSystemTypes: [String]
    /// Sources (`/dev/sdb1`, `/dev/mapper/vg-lv`) never frozen.
    public var excludeSources: [String]
    /// Seconds from the end of a successful FREEZE until the daemon thaws on its own if no THAW
    /// arrived. Default 120 s; at most 900 (the kernel's FREEZE timeout).
    public var thawDeadlineSeconds: Double
    /// Time limit for one hook run; the hook's process group is killed when it is exceeded.
    public var hookTimeoutSeconds: Double
    /// When true (default) a failing `freeze` hook fails the backup (the host sees E_FAIL).
    public var failOnHookError: Bool
    /// Directory of hook executables; default `<configDirectory>/freeze.d`.
    public var hooksDirectory: String

    public static let defaultThawDeadlineSeconds: Double = 120
    public static let defaultHookTimeoutSeconds: Double = 60
    /// FREEZE may take at most this long in the kernel (VSS_FREEZE_TIMEOUT); no freeze window
    /// of ours is allowed to be longer.
    public static let kernelFreezeTimeoutSeconds: Double = 900

    public static let knownKeys: Set<String> = [
        "mountpoints", "exclude_mountpoints", "exclude_fstypes", "exclude_sources",
        "thaw_deadline_seconds", "hook_timeout_seconds", "fail_on_hook_error", "hooks_directory",
    ]

    public init(
        mountpoints: [String] = [], excludeMountpoints: [String] = [], excludeFileSystemTypes: [String] = [],
        excludeSources: [String] = [], thawDeadlineSeconds: Double = defaultThawDeadlineSeconds,
        hookTimeoutSeconds: Double = defaultHookTimeoutSeconds, failOnHookError: Bool = true,
        hooksDirectory: String
    ) {
        self.mountpoints = mountpoints
        self.excludeMountpoints = excludeMountpoints
        self.excludeFileSystemTypes = excludeFileSystemTypes
        self.excludeSources = excludeSources
        self.thawDeadlineSeconds = thawDeadlineSeconds
        self.hookTimeoutSeconds = hookTimeoutSeconds
        self.failOnHookError = failOnHookError
        self.hooksDirectory = hooksDirectory
    }

    /// Builds the configuration from the `[vss]` section; unknown keys and bad values throw
    /// a `ConfigError` naming the file, line and key.
    public init(section: ConfigSection, configDirectory: String) throws(ConfigError) {
        try section.checkKnownKeys(Self.knownKeys)
        let base = configDirectory.hasSuffix("/") ? String(configDirectory.dropLast()) : configDirectory
        self.init(
            mountpoints: try section.absolutePaths("mountpoints", default: []),
            excludeMountpoints: try section.absolutePaths("exclude_mountpoints", default: []),
            excludeFileSystemTypes: try section.stringArray("exclude_fstypes", default: []),
            excludeSources: try section.stringArray("exclude_sources", default: []),
            thawDeadlineSeconds: try section.seconds(
                "thaw_deadline_seconds", default: Self.defaultThawDeadlineSeconds,
                range: 1...Self.kernelFreezeTimeoutSeconds),
            hookTimeoutSeconds: try section.seconds(
                "hook_timeout_seconds", default: Self.defaultHookTimeoutSeconds, range: 0.1...3600),
            failOnHookError: try section.bool("fail_on_hook_error", default: true),
            hooksDirectory: try section.string("hooks_directory", default: base + "/freeze.d"))
        guard hooksDirectory.hasPrefix("/") else {
            throw section.error("hooks_directory", "\"\(hooksDirectory)\" is not an absolute path")
        }
    }
}
