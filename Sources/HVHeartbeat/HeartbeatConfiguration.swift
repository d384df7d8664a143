import HVServiceKit

/// The `[heartbeat]` section: only who answers.
public struct HeartbeatConfiguration: Sendable, Equatable {
    public enum Mode: String, Sendable, Equatable { case kernel, userspace }
    public var mode: Mode
    public static let knownKeys: Set<String> = ["mode"]

    public init(mode: Mode = .kernel) { self.mode = mode }

    public init(section: ConfigSection) throws(ConfigError) {
        try section.checkKnownKeys(Self.knownKeys)
        self.init(mode: Mode(rawValue: try section.choice("mode", allowed: ["kernel", "userspace"], default: "kernel")) ?? .kernel)
    }
}
