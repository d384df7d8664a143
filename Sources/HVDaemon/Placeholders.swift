import HVServiceKit
import HVWire

/// A relay service whose real implementation has not landed yet: it registers like the real one
/// and answers every request with a failure HRESULT — never silence.
final class UnimplementedRelayService: RelayService, @unchecked Sendable {
    let name: ServiceName

    init(_ name: ServiceName) { self.name = name }

    var devicePath: String { "dev/vmbus/hv_\(name.rawValue)" }

    var receiveCapacity: Int {
        switch name {
        case .kvp: return KVPLayout.messageSize
        default: return 16384
        }
    }

    func registrationMessage() -> [UInt8] {
        switch name {
        case .kvp: return KVPRegistration.message()
        case .vss: return VSSRegistration.message()
        default: return FCopyRegistration.message()
        }
    }

    func registrationCompleted(reply: [UInt8]) throws -> String {
        switch name {
        case .kvp: return "KVP protocol \(try KVPRegistration.decodeReply(reply))"
        case .vss: return "VSS protocol \(try VSSRegistration.decodeReply(reply))"
        default: return "fcopy protocol \(try FCopyRegistration.decodeReply(reply))"
        }
    }

    func handle(request: [UInt8]) -> RelayReply {
        switch name {
        case .kvp:
            let op = (try? KVPRequest.decode(request))?.operation.description ?? "KVP"
            return RelayReply(bytes: KVPReply.status(.fail, echoing: request), operation: op, status: .fail, detail: "not implemented")
        case .vss:
            let op = (try? VSSRequest.decode(request))?.operation?.description ?? "VSS"
            return RelayReply(bytes: VSSReply(status: .fail).encode(), operation: op, status: .fail, detail: "not implemented")
        default:
            let op = (try? FCopyRequest.decode(request))?.operation.description ?? "FCOPY"
            return RelayReply(bytes: FCopyReply.encode(.fail), operation: op, status: .fail, detail: "not implemented")
        }
    }

    func channelReset(reason: String) {}
}
