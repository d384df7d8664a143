import HVServiceKit

extension FileCopyService: ServiceStatusReporting {
    /// File copy facts for `hvguestctl status`: the copy in progress and how the last one ended.
    public func statusDetails() -> [String: String] {
        var d: [String: String] = [:]
        if let active = engine.activeTarget { d["copying"] = active }
        if let last = engine.lastCopy {
            d["last_copy"] = last.target
            d["last_copy_result"] = last.status.isSuccess ? "ok" : "\(last.status): \(last.detail)"
            d["last_copy_bytes"] = String(last.bytes)
            d["last_copy_duration_ms"] = String(last.durationMicroseconds / 1000)
            d["last_copy_at"] = String(last.finishedAt)
        }
        let roots = engine.configuration.allowedRoots
        d["allowed_roots"] = roots.isEmpty ? (engine.isEmulated ? "(none: copies refused when emulated)" : "(anywhere)") : roots.joined(separator: ", ")
        return d
    }
}
