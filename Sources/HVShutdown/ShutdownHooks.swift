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
/// (A small sibling of the VSS freeze hooks; services do not share code through each other.)
public struct ShutdownHooks: Sendable {
    public var directory: String
    public var timeoutSeconds: Double

    public init(directory: String, timeoutSeconds: Double) {
        self.directory = directory
        self.timeoutSeconds = timeoutSeconds
    }

    /// Executable regular files, skipping dotfiles, backups and package-manager leftovers.
    public func hookNames() -> [String] {
        guard let names = try? PathOps.listDirectory(directory) else { return [] }
        return names.filter { n in
            !(n.hasPrefix(".") || n.hasSuffix("~") || n.contains(".dpkg-") || n.contains(".ucf-") || n.contains(".rpm"))
                && PathOps.isExecutableFile(directory + "/" + n)
        }.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// Runs every hook with the action as its argument and the request in
    /// `HVGUEST_SHUTDOWN_{ACTION,FORCE,REASON,MESSAGE,ORIGIN}`.
    public func runAll(for request: ShutdownRequest) -> [ShutdownHookResult] {
        let environment = [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG=C.UTF-8",
            "HVGUEST_SHUTDOWN_ACTION=\(request.action.rawValue)",
            "HVGUEST_SHUTDOWN_FORCE=\(request.force ? 1 : 0)",
            "HVGUEST_SHUTDOWN_REASON=\(request.reasonCode)",
            "HVGUEST_SHUTDOWN_MESSAGE=\(request.message.filter { $0 != "\0" })",
            "HVGUEST_SHUTDOWN_ORIGIN=\(request.origin.rawValue)",
        ]
        return hookNames().map { name in
            do throws(SystemError) {
                let r = try Spawn.run(
                    executable: directory + "/" + name, arguments: [request.action.rawValue], environment: environment,
                    timeoutMilliseconds: Int(timeoutSeconds * 1000), outputLimit: 16 * 1024)
                var failure: String?
                if r.timedOut {
                    failure = "timed out after \(timeoutSeconds) s (process group killed)"
                } else if r.termination != .exited(0) {
                    failure = "\(r.termination)"
                }
                return ShutdownHookResult(
                    name: name, failure: failure, output: String(decoding: r.output, as: UTF8.self),
                    durationMilliseconds: Int(r.durationNanoseconds / 1_000_000))
            } catch {
                return ShutdownHookResult(name: name, failure: "could not start: \(error)", output: "", durationMilliseconds: 0)
            }
        }
    }
}
