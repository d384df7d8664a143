import HVServiceKit
import HVSystem
import HVWire
import Logging

/// What to do with one shutdown request: a pure function of the message and the machine's state.
public enum ShutdownDecision: Sendable, Equatable {
    /// Answer S_OK, then run the hooks and the action.
    case proceed(ShutdownRequest)
    /// Answer with `status`; nothing happens.
    case refuse(HResult, reason: String)

    /// Decides like hv_utils (PROTOCOL.md §5.2) plus logind inhibitors: flags 0/1 poweroff,
    /// 2/3 reboot, 4/5 hibernate (E_FAIL when the guest cannot hibernate), anything else E_FAIL.
    /// A request without `force` while a `block` inhibitor holds shutdown (sleep, for hibernate)
    /// is refused with ERROR_MACHINE_LOCKED; a forced one always proceeds. When the inhibitors
    /// could not be listed (`nil`) the request proceeds: a broken logind must not make the VM
    /// impossible to shut down from the host.
    public static func decide(_ message: ShutdownMessage, inhibitors: [Inhibitor]?, hibernationSupported: Bool)
        -> ShutdownDecision
    {
        let force = message.flags.contains(.force)
        let action: PowerAction
        switch message.flags.rawValue & ~ShutdownFlags.force.rawValue {
        case 0: action = .poweroff
        case ShutdownFlags.reboot.rawValue: action = .reboot
        case ShutdownFlags.hibernate.rawValue:
            guard hibernationSupported else { return .refuse(.fail, reason: "this guest cannot hibernate") }
            action = .hibernate
        default:
            return .refuse(.fail, reason: "unsupported shutdown flags \(message.flags)")
        }
        if !force, let blocking = inhibitors?.filter({ $0.blocks(action) }), !blocking.isEmpty {
            return .refuse(
                .machineLocked,
                reason: "\(action.rawValue) is inhibited by " + blocking.map(\.description).joined(separator: "; "))
        }
        return .proceed(
            ShutdownRequest(
                action: action, force: force, reasonCode: message.reasonCode, message: message.displayMessage, origin: .userspace))
    }
}

/// True when `DEVROOT/sys/power/state` offers `disk` (the kernel's own hibernation check).
public func hibernationSupported(deviceRoot: String) -> Bool {
    let root = deviceRoot.hasSuffix("/") ? String(deviceRoot.dropLast()) : deviceRoot
    guard let text = try? Sysfs.readAttribute(root + "/sys/power/state") else { return false }
    return text.split(separator: " ").contains("disk")
}

/// The shutdown IC in userspace: answers `InitiateShutdown` / reboot / hibernate, then runs the
/// hooks and hands the action to systemd through the executor.
public final class ShutdownService: ICService {
    public let name = ServiceName.shutdown
    /// Class GUID of the shutdown channel.
    public static let classID = "0e0b6031-5213-4934-818b-38d90ced39db"
    public var classID: String { Self.classID }
    public let versions = ICServiceVersions.shutdown

    public let hooks: ShutdownHooks
    private let executor: any PowerExecutor
    private let inhibitorCheck: any InhibitorCheck
    private let canHibernate: @Sendable () -> Bool
    private let logger: Logger
    /// Requests answered S_OK whose hooks and action have not run yet. Several can be answered
    /// in one drain of the ring (the host may send the next as soon as it has the answer), so
    /// this is a queue, carried out in order.
    private let pending = Locked<[ShutdownRequest]>([])
    private let performed = Locked<[(ShutdownRequest, PowerOutcome)]>([])

    public init(
        hooks: ShutdownHooks, executor: any PowerExecutor, inhibitorCheck: any InhibitorCheck,
        hibernationSupported: @escaping @Sendable () -> Bool, logger: Logger
    ) {
        self.hooks = hooks
        self.executor = executor
        self.inhibitorCheck = inhibitorCheck
        canHibernate = hibernationSupported
        self.logger = logger
    }

    /// What was carried out so far (request and outcome), oldest first.
    public var actions: [(request: ShutdownRequest, outcome: PowerOutcome)] { performed.withLock { $0.map { ($0.0, $0.1) } } }

    public func handle(payload: inout [UInt8], header: ICMessageHeader, negotiated: ICVersion?) -> ICAnswer? {
        func answer(_ status: HResult, _ detail: String) -> ICAnswer {
            try? ICMessageHeader.markResponse(in: &payload, status: status)
            return ICAnswer(operation: "SHUTDOWN", status: status, detail: detail)
        }
        guard header.messageType == .shutdown else { return answer(.fail, "unexpected message type \(header.messageType)") }
        let message: ShutdownMessage
        do { message = try ShutdownMessage.decode(payload: payload) } catch { return answer(.fail, "\(error)") }
        let described = "\(message.flags) reason \(message.reasonCode) message \"\(message.displayMessage)\""
        // Inhibitors are only consulted for requests they could stop.
        let locks = message.flags.contains(.force) ? [] : inhibitorCheck.inhibitors()
        if locks == nil { logger.warning("could not list logind inhibitors; treating the machine as not locked") }
        switch ShutdownDecision.decide(message, inhibitors: locks, hibernationSupported: canHibernate()) {
        case .refuse(let status, let reason):
            logger.notice("host shutdown request refused (\(reason)): \(described)")
            return answer(status, "\(described): \(reason)")
        case .proceed(let request):
            let forced = request.force ? " (forced)" : ""
            logger.notice(
                "host requested \(request.action.rawValue)\(forced): reason \(request.reasonCode), message \"\(request.message)\"")
            pending.withLock { if $0.count < 16 { $0.append(request) } }
            return answer(.ok, described)
        }
    }

    /// Runs the hooks and the action for each request that was answered S_OK.
    public func performDeferredActions() {
        let requests = pending.withLock { p -> [ShutdownRequest] in
            defer { p.removeAll() }
            return p
        }
        for request in requests { carryOut(request) }
    }

    private func carryOut(_ request: ShutdownRequest) {
        for result in hooks.runAll(for: request) {
            if result.failure == nil {
                logger.info("\(result)")
            } else {
                logger.warning("\(result); continuing with \(request.action.rawValue)")
            }
        }
        let outcome = executor.perform(request.action, force: request.force)
        if case .failed = outcome {
            logger.error("\(request.action.rawValue) \(outcome)")
        } else {
            logger.notice("\(request.action.rawValue) \(outcome)")
        }
        performed.withLock { $0.append((request, outcome)) }
    }

    public func channelReset(reason: String) {}
}
