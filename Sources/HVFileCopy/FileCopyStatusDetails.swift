import HVServiceKit

extension FileCopyEngine: ServiceStatusReporting {
    /// File copy facts for `hvguestctl status` (either transport): the copy in progress and how
    /// the last one ended.
    public func statusDetails() -> [String: String] {
        var d: [String: String] = [:]
        if let active = activeTarget { d["copying"] = active }
        if let last = lastCopy {
            d["last_copy"] = last.target
            d["last_copy_result"] = last.status.isSuccess ? "ok" : "\(last.status): \(last.detail)"
            d["last_copy_bytes"] = String(last.bytes)
            d["last_copy_duration_ms"] = String(last.durationMicroseconds / 1000)
            d["last_copy_at"] = String(last.finishedAt)
        }
        let roots = configuration.allowedRoots
        d["allowed_roots"] = roots.isEmpty ? (isEmulated ? "(none: copies refused when emulated)" : "(anywhere)") : roots.joined(separator: ", ")
        return d
    }
}
