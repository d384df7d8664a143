import HVSystem

/// The safety net for a daemon that died while filesystems were frozen (PROTOCOL.md §6.3 V3).
public enum VSSRecovery {
    public struct Report: Sendable, Equatable {
        /// False when there was no frozen record (nothing to do).
        public var hadRecord: Bool
        public var thawed: [String]
        /// FITHAW said EINVAL: not frozen (fine).
        public var notFrozen: [String]
        public var failures: [String]
        public var hooks: [HookResult]
        public var succeeded: Bool { failures.isEmpty }
    }

    /// `hvguestd thaw-all` (ExecStopPost=) and start-up: thaws every mountpoint the frozen
    /// record in `runtimeDirectory` lists, in reverse order, removes the record when all of
    /// them are thawed (or were not frozen), then runs the `thaw` hooks in reverse order if
    /// `hooks` is given. Thawing something that is not frozen is harmless, so the record is
    /// trusted as is.
    public static func thawAll(runtimeDirectory: String, hooks: (any HookRunner)? = nil) -> Report {
        let recorded: [String]?
        do throws(SystemError) { recorded = try FrozenRecord.read(runtimeDirectory: runtimeDirectory) } catch {
            return Report(hadRecord: true, thawed: [], notFrozen: [], failures: ["read frozen record: \(error)"], hooks: [])
        }
        guard let recorded else { return Report(hadRecord: false, thawed: [], notFrozen: [], failures: [], hooks: []) }
        let freezer = LiveFreezer(permitted: Set(recorded), allowList: nil, allowRoot: true)
        return thawAll(runtimeDirectory: runtimeDirectory, freezer: freezer, hooks: hooks, recorded: recorded)
    }

    /// The same with an injected freezer and an already-read record.
    public static func thawAll(
        runtimeDirectory: String, freezer: any Freezer, hooks: (any HookRunner)?, recorded: [String]
    ) -> Report {
        var report = Report(hadRecord: true, thawed: [], notFrozen: [], failures: [], hooks: [])
        for m in recorded.reversed() {
            do throws(FreezerError) {
                switch try freezer.thaw(m) {
                case .thawed: report.thawed.append(m)
                case .notFrozen: report.notFrozen.append(m)
                }
            } catch {
                // A mountpoint that no longer exists cannot be frozen either.
                if case .failed(let e) = error, e.errno == 2 /* ENOENT */ {
                    report.notFrozen.append(m)
                } else {
                    report.failures.append("thaw \(m): \(error)")
                }
            }
        }
        if report.failures.isEmpty {
            do throws(SystemError) { try FrozenRecord.remove(runtimeDirectory: runtimeDirectory) } catch {
                report.failures.append("remove frozen record: \(error)")
            }
        }
        if let hooks {
            for name in hooks.hookNames().reversed() {
                report.hooks.append(hooks.run(name, phase: .thaw, mountPoints: recorded))
            }
        }
        return report
    }
}
