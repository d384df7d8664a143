import HVServiceKit
import HVSystem

/// The argument a freeze hook is run with.
public enum HookPhase: String, Sendable, Equatable, CaseIterable {
    /// Before the first FIFREEZE, hooks in name order.
    case freeze
    /// After the last FITHAW, hooks in reverse name order.
    case thaw
    /// After a failed freeze (a hook failed, or a FIFREEZE failed and everything was thawed),
    /// in reverse name order, for the hooks that were run with `freeze`.
    case freezeFail = "freeze-fail"
}

/// How one hook run ended.
public enum HookOutcome: Sendable, Equatable, CustomStringConvertible {
    case succeeded
    case exited(Int32)
    case killed(signal: Int32)
    case timedOut(seconds: Double)
    case couldNotStart(String)

    public var isSuccess: Bool { self == .succeeded }

    public var description: String {
        switch self {
        case .succeeded: return "ok"
        case .exited(let s): return "exit status \(s)"
        case .killed(let sig): return "killed by signal \(sig)"
        case .timedOut(let s): return "timed out after \(s) s (process group killed)"
        case .couldNotStart(let why): return "could not start: \(why)"
        }
    }
}

/// One hook run, for the log and `hvguestctl status`.
public struct HookResult: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    public var phase: HookPhase
    public var outcome: HookOutcome
    /// Captured stdout+stderr (bounded, lossy UTF-8).
    public var output: String
    public var durationMilliseconds: Int

    public init(name: String, phase: HookPhase, outcome: HookOutcome, output: String = "", durationMilliseconds: Int = 0) {
        self.name = name
        self.phase = phase
        self.outcome = outcome
        self.output = output
        self.durationMilliseconds = durationMilliseconds
    }

    public var description: String { "hook \(name) \(phase.rawValue): \(outcome) (\(durationMilliseconds) ms)" }
}

/// Lists and runs hooks.
public protocol HookRunner: Sendable {
    /// The hooks, in name order.
    func hookNames() -> [String]
    func run(_ name: String, phase: HookPhase, mountPoints: [String]) -> HookResult
}

/// Hooks are the executable regular files of a directory (`/etc/hvguest/freeze.d`).
///
/// Names starting with `.`, ending with `~`, or containing `.dpkg-`/`.ucf-`/`.rpm` (package
/// manager leftovers) are ignored, as run-parts does; so are non-executable files (that is how
/// the shipped samples stay disabled). Order is byte order of the names.
public struct DirectoryHookRunner: HookRunner {
    private let hooks: HookDirectory

    public var directory: String { hooks.path }
    public var timeoutSeconds: Double { hooks.timeoutSeconds }

    public init(directory: String, timeoutSeconds: Double, outputLimit: Int = 16 * 1024) {
        hooks = HookDirectory(path: directory, timeoutSeconds: timeoutSeconds, outputLimit: outputLimit)
    }

    public static func isHookName(_ name: String) -> Bool { HookDirectory.isHookName(name) }

    public func hookNames() -> [String] { hooks.hookNames() }

    public func run(_ name: String, phase: HookPhase, mountPoints: [String]) -> HookResult {
        // Newline-separated; what is (or was going to be) frozen.
        let r = hooks.run(name, arguments: [phase.rawValue], environment: [
            "HVGUEST_HOOK_PHASE=\(phase.rawValue)",
            "HVGUEST_FREEZE_MOUNTPOINTS=\(mountPoints.joined(separator: "\n"))",
        ])
        let outcome: HookOutcome
        switch r.outcome {
        case .succeeded: outcome = .succeeded
        case .exited(let s): outcome = .exited(s)
        case .killed(let sig): outcome = .killed(signal: sig)
        case .timedOut(let s): outcome = .timedOut(seconds: s)
        case .couldNotStart(let why): outcome = .couldNotStart(why)
        }
        return HookResult(name: name, phase: phase, outcome: outcome, output: r.output, durationMilliseconds: r.durationMilliseconds)
    }
}

/// A hook runner that runs nothing: it records calls and returns scripted outcomes (tests).
public final class RecordingHookRunner: HookRunner {
    public struct Call: Sendable, Equatable {
        public var name: String
        public var phase: HookPhase
    }
    private let names: [String]
    private let outcomes: [String: HookOutcome]
    private let log = Locked<[Call]>([])

    /// - Parameter outcomes: per `"name phase"` (e.g. `"10-db freeze"`), default `.succeeded`.
    public init(names: [String], outcomes: [String: HookOutcome] = [:]) {
        self.names = names
        self.outcomes = outcomes
    }

    public var calls: [Call] { log.current }

    public func hookNames() -> [String] { names }

    public func run(_ name: String, phase: HookPhase, mountPoints: [String]) -> HookResult {
        log.withLock { $0.append(Call(name: name, phase: phase)) }
        return HookResult(name: name, phase: phase, outcome: outcomes["\(name) \(phase.rawValue)"] ?? .succeeded)
    }
}
