import HVServiceKit
import HVSystem

/// What started the shutdown the hooks run for.
public enum ShutdownOrigin: String, Sendable, Equatable {
    /// hvguestd answered the host's request itself (userspace mode).
    case userspace
    /// hv_utils answered it and hvguestd saw it in the kernel log (kernel mode).
    case kernel
}

/// The request the hooks are told about (environment variables of each hook).
public struct ShutdownRequest: Sendable, Equatable {
    public var action: PowerAction
    public var force: Bool
    public var reasonCode: UInt32
    public var message: String
    public var origin: ShutdownOrigin

    public init(action: PowerAction, force: Bool, reasonCode: UInt32 = 0, message: String = "", origin: ShutdownOrigin) {
        self.action = action
        self.force = force
        self.reasonCode = reasonCode
        self.message = message
        self.origin = origin
    }
}

/// One hook run.
public struct ShutdownHookResult: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    /// nil: exit 0.
    public var failure: String?
    public var output: String
    public var durationMilliseconds: Int

    public var description: String {
        "shutdown hook \(name): \(failure ?? "ok") (\(durationMilliseconds) ms)"
    }
}

/// Runs the executables of `shutdown.d` in name order, each with a time limit, before the
/// power action. A failing hook is logged and never stops the shutdown: the host asked for it.
public struct ShutdownHooks: Sendable {
    private let hooks: HookDirectory

    public var directory: String { hooks.path }
    public var timeoutSeconds: Double { hooks.timeoutSeconds }

    public init(directory: String, timeoutSeconds: Double) {
        hooks = HookDirectory(path: directory, timeoutSeconds: timeoutSeconds)
    }

    /// Executable regular files, skipping dotfiles, backups and package-manager leftovers.
    public func hookNames() -> [String] { hooks.hookNames() }

    /// Runs every hook with the action as its argument and the request in
    /// `HVGUEST_SHUTDOWN_{ACTION,FORCE,REASON,MESSAGE,ORIGIN}`.
    public func runAll(for request: ShutdownRequest) -> [ShutdownHookResult] {
        let environment = [
            "HVGUEST_SHUTDOWN_ACTION=\(request.action.rawValue)",
            "HVGUEST_SHUTDOWN_FORCE=\(request.force ? 1 : 0)",
            "HVGUEST_SHUTDOWN_REASON=\(request.reasonCode)",
            "HVGUEST_SHUTDOWN_MESSAGE=\(request.message.filter { $0 != "\0" })",
            "HVGUEST_SHUTDOWN_ORIGIN=\(request.origin.rawValue)",
        ]
        return hookNames().map { name in
            let r = hooks.run(name, arguments: [request.action.rawValue], environment: environment)
            return ShutdownHookResult(
                name: name, failure: r.outcome == .succeeded ? nil : r.outcome.description, output: r.output,
                durationMilliseconds: r.durationMilliseconds)
        }
    }
}
