import HVSystem
import HVWire

/// The state of one service's channel, as `hvguestctl status` shows it.
public enum ChannelState: Sendable, Equatable, CustomStringConvertible {
    case starting
    /// The device does not exist (yet): not on Hyper-V, driver not loaded, or emulator down.
    case waitingForDevice(String)
    /// Opened, registration sent, waiting for the kernel's answer.
    case registering
    /// Registered; `version` is what was negotiated.
    case registered(version: String)
    /// The last attempt failed; retrying after a back-off.
    case error(String)
    case stopped

    public var description: String {
        switch self {
        case .starting: return "starting"
        case .waitingForDevice(let p): return "waiting for device \(p)"
        case .registering: return "registering"
        case .registered(let v): return "registered (\(v))"
        case .error(let e): return "error: \(e)"
        case .stopped: return "stopped"
        }
    }

    public var isHealthy: Bool {
        if case .registered = self { return true }
        return false
    }
}

/// The last request a service answered.
public struct LastRequest: Sendable, Equatable {
    public var operation: String
    public var status: HResult
    public var detail: String?
    public var durationMicroseconds: UInt64
    /// CLOCK_REALTIME seconds when it was answered.
    public var answeredAt: Int
}

/// Everything `hvguestctl status` reports about one service.
public struct ServiceStatus: Sendable, Equatable {
    public var service: ServiceName
    public var state: ChannelState = .starting
    public var transport: String?
    public var registrations = 0
    public var requests = 0
    public var failures = 0
    public var lastRequest: LastRequest?
    /// Service-specific facts (last freeze duration, last copy, pool sizes …).
    public var details: [String: String] = [:]

    public init(service: ServiceName) { self.service = service }
}

/// Shared, thread-safe status of every service; the channel threads write, the status socket reads.
public final class StatusBoard: Sendable {
    private let slots = Locked<[ServiceName: StatusSlot]>([:])

    public init() {}

    /// The one place `service`'s status lives. A channel runner takes its slot once and updates
    /// it per request without a dictionary lookup (bench/NOTES.md: per-request cost).
    public func slot(_ service: ServiceName) -> StatusSlot {
        slots.withLock { all in
            if let existing = all[service] { return existing }
            let created = StatusSlot(service: service)
            all[service] = created
            return created
        }
    }

    public func update(_ service: ServiceName, _ body: (inout ServiceStatus) -> Void) {
        slot(service).update(body)
    }

    /// Every service that has reported at least once, by name.
    public func snapshot() -> [ServiceStatus] {
        slots.withLock { Array($0.values) }.compactMap(\.current).sorted { $0.service < $1.service }
    }

    public subscript(service: ServiceName) -> ServiceStatus? { slots.withLock { $0[service] }?.current }
}

/// One service's status: absent until its first update.
public final class StatusSlot: Sendable {
    public let service: ServiceName
    private let status = Locked<ServiceStatus?>(nil)

    init(service: ServiceName) { self.service = service }

    public func update(_ body: (inout ServiceStatus) -> Void) {
        let service = self.service
        status.withLock { s in
            if s == nil { s = ServiceStatus(service: service) }
            body(&s!)
        }
    }

    public var current: ServiceStatus? { status.current }
}
