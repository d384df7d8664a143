import HVRing
import HVSystem
import HVWire

/// The IC part every util channel shares, on top of a `UIOChannel`: answers version
/// negotiation itself (PROTOCOL.md §4.6) and hands every other well-framed request to the
/// service. Pure state; the channel's thread owns it.
public struct ICResponder: Sendable {
    /// What this IC supports, in priority order.
    public let versions: ICServiceVersions
    /// The versions the last negotiation chose (nil before one succeeded).
    public private(set) var negotiated: (framework: ICVersion, message: ICVersion)?
    /// Packets dropped because they were too short to carry an IC header (to log or count).
    public private(set) var malformedPackets = 0
    /// The last malformed-offer problem seen in a negotiation (answered with HV_E_FAIL).
    public private(set) var lastNegotiationProblem: WireError?

    public init(versions: ICServiceVersions) { self.versions = versions }

    /// Handles one request payload in place. Returns true when `payload` now holds the
    /// response to send. `service` gets non-negotiate requests with their decoded header and
    /// returns true to answer with the (modified) buffer; it sets status and data, e.g. with
    /// `ICMessageHeader.markResponse(in:status:)`.
    public mutating func handle(
        _ payload: inout [UInt8], service: (inout [UInt8], ICMessageHeader) -> Bool
    ) -> Bool {
        guard let header = try? ICMessageHeader.decode(from: payload) else {
            malformedPackets += 1
            return false
        }
        guard header.messageType == .negotiate else { return service(&payload, header) }
        guard let result = try? ICNegotiation.respond(to: payload, supported: versions) else {
            malformedPackets += 1
            return false
        }
        payload = result.response
        negotiated = result.chosen
        lastNegotiationProblem = result.problem
        return true
    }
}

extension UIOChannel {
    /// Serves a request/response IC until `stop` is signalled: negotiation is answered by
    /// `responder`, everything else goes to `service` (see `ICResponder.handle`).
    public func serveIC(
        until stop: EventFD, responder: inout ICResponder, service: (inout [UInt8], ICMessageHeader) -> Bool
    ) throws(UIOChannelError) {
        try serve(until: stop) { payload, _ in responder.handle(&payload, service: service) }
    }
}
