import HVServiceKit
import HVSystem

extension VSSService: ServiceStatusReporting {
    /// VSS facts for `hvguestctl status`: frozen now (and what, for how long), the last freeze
    /// and thaw, how long the last freeze held, and the last hook results.
    public func statusDetails() -> [String: String] {
        let s = status()
        var d: [String: String] = ["frozen": s.isFrozen ? "yes" : "no"]
        if !s.frozenMountpoints.isEmpty { d["frozen_mountpoints"] = s.frozenMountpoints.joined(separator: ", ") }
        if let since = s.frozenSince { d["frozen_for_ms"] = String((monotonicNanoseconds() &- since) / 1_000_000) }
        if let f = s.lastFreeze { d["last_freeze"] = f }
        if let t = s.lastThaw { d["last_thaw"] = t }
        if let u = s.lastUnrequestedThaw { d["last_unrequested_thaw"] = u }
        if let ms = s.lastFrozenMilliseconds { d["last_freeze_duration_ms"] = String(ms) }
        if !s.lastHooks.isEmpty {
            d["last_hooks"] = s.lastHooks.map { "\($0.name) \($0.phase.rawValue): \($0.outcome)" }.joined(separator: "; ")
        }
        d["allow_list"] = configuration.mountpoints.isEmpty
            ? (environment.isEmulated ? "(none: FREEZE is refused when emulated)" : "(none: every eligible mount)")
            : configuration.mountpoints.joined(separator: ", ")
        return d
    }
}
