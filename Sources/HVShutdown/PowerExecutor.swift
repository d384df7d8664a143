import HVSystem
import Logging

/// What the host asked for (PROTOCOL.md §5.2 flags without `force`).
public enum PowerAction: String, Sendable, Equatable, CaseIterable {
    case poweroff, reboot, hibernate
}

/// How a power action was carried out.
public enum PowerOutcome: Sendable, Equatable, CustomStringConvertible {
    /// systemd accepted the job.
    case started
    /// Emulated run: logged, not performed.
    case loggedOnly
    case failed(String)

    public var description: String {
        switch self {
        case .started: return "started"
        case .loggedOnly: return "logged only (emulated)"
        case .failed(let why): return "failed: \(why)"
        }
    }
}

/// Carries out a power action. Live: systemd; tests: a recorder. Nothing else in hvguest powers
/// the machine off.
public protocol PowerExecutor: Sendable {
    /// `force`: the host's Force flag; inhibitors are ignored (they were already checked for a
    /// non-forced request).
    func perform(_ action: PowerAction, force: Bool) -> PowerOutcome
}

/// `systemctl [-i] --no-block poweroff|reboot|hibernate`: systemd/logind run the normal
/// shutdown transaction (units stopped in order, shutdown.target). When emulated (device root
/// not `/`) the command is only logged.
public struct SystemctlPowerExecutor: PowerExecutor {
    public var isEmulated: Bool
    public var logger: Logger
    public var systemctl: String

    public init(isEmulated: Bool, logger: Logger, systemctl: String? = nil) {
        self.isEmulated = isEmulated
        self.logger = logger
        self.systemctl = systemctl ?? (PathOps.isExecutableFile("/usr/bin/systemctl") ? "/usr/bin/systemctl" : "/bin/systemctl")
    }

    /// The arguments for `action` (`-i` ignores inhibitors; `--no-block` so hibernate does not
    /// keep us waiting until resume).
    public static func arguments(_ action: PowerAction, force: Bool) -> [String] {
        (force ? ["-i"] : []) + ["--no-block", action.rawValue]
    }

    public func perform(_ action: PowerAction, force: Bool) -> PowerOutcome {
        let args = Self.arguments(action, force: force)
        let commandLine = ([systemctl] + args).joined(separator: " ")
        guard !isEmulated else {
            logger.notice("emulated: would run \(commandLine)")
            return .loggedOnly
        }
        do {
            let r = try Spawn.run(
                executable: systemctl, arguments: args,
                environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"], timeoutMilliseconds: 60_000,
                outputLimit: 4096)
            if r.succeeded { return .started }
            return .failed("\(commandLine): \(r.termination) \(String(decoding: r.output, as: UTF8.self))")
        } catch {
            return .failed("\(commandLine): \(error)")
        }
    }
}

/// Records power actions instead of performing them (tests).
public final class RecordingPowerExecutor: PowerExecutor {
    public struct Call: Sendable, Equatable {
        public var action: PowerAction
        public var force: Bool
        public init(action: PowerAction, force: Bool) {
            self.action = action
            self.force = force
        }
    }
    private let log = Locked<[Call]>([])
    public init() {}
    public var calls: [Call] { log.current }
    public func perform(_ action: PowerAction, force: Bool) -> PowerOutcome {
        log.withLock { $0.append(Call(action: action, force: force)) }
        return .loggedOnly
    }
}
