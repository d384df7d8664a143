/// A service that adds its own facts to `hvguestctl status` (last freeze and its hooks, last
/// copy, time offset …). Asked from the status socket's thread, concurrently with the channel
/// thread: implementations read state under their own lock.
public protocol ServiceStatusReporting: AnyObject, Sendable {
    /// Short `key: value` facts, shown under the service; keys are snake_case.
    func statusDetails() -> [String: String]
}

extension ChannelState {
    /// Stable machine name of the state (`hvguestctl status --json` `state`).
    public var keyword: String {
        switch self {
        case .starting: return "starting"
        case .waitingForDevice: return "waiting_for_device"
        case .registering: return "registering"
        case .registered: return "registered"
        case .error: return "error"
        case .stopped: return "stopped"
        }
    }

    /// The text that goes with the state: the device path waited for, the negotiated version,
    /// the error.
    public var detail: String? {
        switch self {
        case .waitingForDevice(let p): return p
        case .registered(let v): return v
        case .error(let e): return e
        case .starting, .registering, .stopped: return nil
        }
    }

    /// Whether `hvguestctl status` counts this as a failure (exit code 1). Waiting for a device
    /// is not one: the device appears when the host offers the channel.
    public var isFailure: Bool {
        switch self {
        case .error, .stopped: return true
        default: return false
        }
    }
}

extension ServiceStatus {
    /// The JSON object `hvguestctl status --json` shows for this service (docs/STATUS.md).
    public func json(details extra: [String: String] = [:]) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("service", .string(service.rawValue)),
            ("state", .string(state.keyword)),
            ("healthy", .bool(!state.isFailure)),
        ]
        if let d = state.detail { members.append(("state_detail", .string(d))) }
        if case .registered(let v) = state { members.append(("version", .string(v))) }
        if let t = transport { members.append(("transport", .string(t))) }
        members.append(("registrations", .integer(Int64(registrations))))
        members.append(("requests", .integer(Int64(requests))))
        members.append(("failures", .integer(Int64(failures))))
        if let r = lastRequest {
            var last: [(String, JSONValue)] = [
                ("operation", .string(r.operation)),
                ("status", .string(r.status.description)),
                ("hresult", .integer(Int64(r.status.rawValue))),
                ("duration_usec", .integer(Int64(clamping: r.durationMicroseconds))),
                ("answered_at", .integer(Int64(r.answeredAt))),
            ]
            if let d = r.detail { last.append(("detail", .string(d))) }
            members.append(("last_request", .object(last)))
        } else {
            members.append(("last_request", .null))
        }
        let merged = details.merging(extra) { _, new in new }
        members.append(("details", .object(merged.keys.sorted().map { ($0, .string(merged[$0] ?? "")) })))
        return .object(members)
    }
}
