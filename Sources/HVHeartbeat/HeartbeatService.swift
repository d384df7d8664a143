import HVServiceKit
import HVSystem
import HVWire

/// The heartbeat IC in userspace (PROTOCOL.md §5.4): every heartbeat is answered with
/// seq_num + 1. While this answers, the host shows the VM's heartbeat as OK; if the daemon dies
/// the channel closes and the host shows "No Contact" / "Lost Communication".
public final class HeartbeatService: ICService {
    public let name = ServiceName.heartbeat
    /// Class GUID of the heartbeat channel.
    public static let classID = "57164f39-9115-4e78-ab55-382f3bd5422d"
    public var classID: String { Self.classID }
    public let versions = ICServiceVersions.heartbeat

    private let state = Locked<(count: UInt64, last: UInt64?)>((0, nil))

    public init() {}

    /// Heartbeats answered so far.
    public var answered: UInt64 { state.withLock { $0.count } }
    /// The last sequence number sent back (the host's + 1).
    public var lastSequenceNumber: UInt64? { state.withLock { $0.last } }

    public func handle(payload: inout [UInt8], header: ICMessageHeader, negotiated: ICVersion?) -> ICAnswer? {
        guard header.messageType == .heartbeat else {
            try? ICMessageHeader.markResponse(in: &payload, status: .fail)
            return ICAnswer(operation: "\(header.messageType)", status: .fail, detail: "not a heartbeat message")
        }
        do {
            let seq = try HeartbeatMessage.incrementSequence(inPayload: &payload)
            try ICMessageHeader.markResponse(in: &payload, status: .ok)
            state.withLock {
                $0.count &+= 1
                $0.last = seq
            }
            return ICAnswer(operation: "HEARTBEAT", status: .ok, detail: "seq \(seq)", routine: true)
        } catch {
            try? ICMessageHeader.markResponse(in: &payload, status: .fail)
            return ICAnswer(operation: "HEARTBEAT", status: .fail, detail: "\(error)")
        }
    }

    public func performDeferredActions() {}
    public func channelReset(reason: String) {}
}
