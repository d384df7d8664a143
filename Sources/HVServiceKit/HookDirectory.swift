import HVSystem

/// A directory of hook executables (`/etc/hvguest/freeze.d`, `/etc/hvguest/shutdown.d`): which
/// files are hooks, their order, and one run of a hook with a time limit and bounded output.
/// The services decide the arguments, the environment and what a failure means.
public struct HookDirectory: Sendable {
    public var path: String
    public var timeoutSeconds: Double
    public var outputLimit: Int

    public init(path: String, timeoutSeconds: Double, outputLimit: Int = 16 * 1024) {
        self.path = path
        self.timeoutSeconds = timeoutSeconds
        self.outputLimit = outputLimit
    }

    /// What every hook's environment starts with.
    public static let baseEnvironment = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"]

    /// Names starting with `.`, ending with `~`, or containing `.dpkg-`/`.ucf-`/`.rpm` (package
    /// manager leftovers) are not hooks, as with run-parts.
    public static func isHookName(_ name: String) -> Bool {
        !(name.hasPrefix(".") || name.hasSuffix("~") || name.containsText(".dpkg-") || name.containsText(".ucf-")
            || name.containsText(".rpm"))
    }

    /// The hooks: executable regular files with hook names, in byte order of their names (a
    /// non-executable file is how a shipped sample stays disabled). Empty when the directory
    /// does not exist.
    public func hookNames() -> [String] {
        guard let names = try? directoryEntryNames(path) else { return [] }
        return names.filter { Self.isHookName($0) && PathOps.isExecutableFile(path + "/" + $0) }
            .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// Runs one hook (no shell; its own process group, killed whole on overrun).
    public func run(_ name: String, arguments: [String], environment: [String]) -> HookExecution {
        do throws(SystemError) {
            let r = try Spawn.run(
                executable: path + "/" + name, arguments: arguments, environment: Self.baseEnvironment + environment,
                timeoutMilliseconds: Int(timeoutSeconds * 1000), outputLimit: outputLimit)
            let outcome: HookExecution.Outcome
            if r.timedOut {
                outcome = .timedOut(seconds: timeoutSeconds)
            } else {
                switch r.termination {
                case .exited(0): outcome = .succeeded
                case .exited(let s): outcome = .exited(s)
                case .signaled(let sig): outcome = .killed(signal: sig)
                }
            }
            var output = String(decoding: r.output, as: UTF8.self)
            if r.outputTruncated { output += "\n[output truncated]" }
            return HookExecution(outcome: outcome, output: output, durationMilliseconds: Int(r.durationNanoseconds / 1_000_000))
        } catch {
            return HookExecution(outcome: .couldNotStart(error.description), output: "", durationMilliseconds: 0)
        }
    }
}

/// How one hook run ended, with its captured output.
public struct HookExecution: Sendable, Equatable {
    public enum Outcome: Sendable, Equatable, CustomStringConvertible {
        case succeeded
        case exited(Int32)
        case killed(signal: Int32)
        case timedOut(seconds: Double)
        case couldNotStart(String)

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

    public var outcome: Outcome
    /// stdout and stderr, interleaved, bounded, lossy UTF-8.
    public var output: String
    public var durationMilliseconds: Int
}
