/// The versions one IC supports, in our priority order (PROTOCOL.md §4.6 table; the lists the
/// Linux kernel offers).
public struct ICServiceVersions: Equatable, Sendable {
    public var framework: [ICVersion]
    public var message: [ICVersion]

    public init(framework: [ICVersion], message: [ICVersion]) {
        self.framework = framework
        self.message = message
    }

    public static let shutdown = ICServiceVersions(
        framework: [ICVersion(3, 0), ICVersion(1, 0)],
        message: [ICVersion(3, 2), ICVersion(3, 1), ICVersion(3, 0), ICVersion(1, 0)])
    public static let timeSync = ICServiceVersions(
        framework: [ICVersion(3, 0), ICVersion(1, 0)], message: [ICVersion(4, 0), ICVersion(3, 0), ICVersion(1, 0)])
    public static let heartbeat = ICServiceVersions(
        framework: [ICVersion(3, 0), ICVersion(1, 0)], message: [ICVersion(3, 0), ICVersion(1, 0)])
    public static let kvp = ICServiceVersions(
        framework: [ICVersion(3, 0), ICVersion(1, 0)], message: [ICVersion(4, 0), ICVersion(3, 0), ICVersion(1, 0)])
    public static let vss = ICServiceVersions(framework: [ICVersion(3, 0)], message: [ICVersion(5, 0)])
    public static let fcopy = ICServiceVersions(framework: [ICVersion(3, 0)], message: [ICVersion(1, 1)])
}

/// The body of a negotiate message (`struct icmsg_negotiate`, at payload offset 28):
/// icframe_vercnt u16 @0, icmsg_vercnt u16 @2, reserved u32 @4, then the framework versions
/// and the message versions, 4 bytes each, from @8. The host sends its offer in this form; the
/// guest's answer reuses it with counts 1/1 (or 0/0).
public struct ICVersionOffer: Equatable, Sendable {
    /// IC_VERSION_NEGOTIATION_MAX_VER_COUNT: more entries than this is a malformed offer.
    public static let maxVersionCount = 100
    /// Size of the fixed part (counts + reserved).
    public static let fixedSize = 8

    public var frameworkVersions: [ICVersion]
    public var messageVersions: [ICVersion]
    public var reserved: UInt32

    public init(frameworkVersions: [ICVersion], messageVersions: [ICVersion], reserved: UInt32 = 0) {
        self.frameworkVersions = frameworkVersions
        self.messageVersions = messageVersions
        self.reserved = reserved
    }

    /// Decodes the offer from a whole IC payload (28-byte header first). Strict: counts above
    /// 100 each, or a payload shorter than 28 + 8 + 4·(counts), throw.
    public static func decode(fromPayload payload: [UInt8]) throws(WireError) -> ICVersionOffer {
        let r = ByteReader(payload, structure: "icmsg_negotiate")
        let base = ICMessageHeader.size
        try r.require(base + 4)
        let frameworkCount = Int(try r.u16(at: base))
        let messageCount = Int(try r.u16(at: base + 2))
        if frameworkCount > maxVersionCount {
            throw .invalidField(structure: r.structure, field: "icframe_vercnt", reason: "\(frameworkCount) > \(maxVersionCount)")
        }
        if messageCount > maxVersionCount {
            throw .invalidField(structure: r.structure, field: "icmsg_vercnt", reason: "\(messageCount) > \(maxVersionCount)")
        }
        try r.require(base + fixedSize + 4 * (frameworkCount + messageCount))
        var versions: [ICVersion] = []
        versions.reserveCapacity(frameworkCount + messageCount)
        for i in 0..<(frameworkCount + messageCount) {
            let at = base + fixedSize + 4 * i
            versions.append(ICVersion(try r.u16(at: at), try r.u16(at: at + 2)))
        }
        return ICVersionOffer(
            frameworkVersions: Array(versions[0..<frameworkCount]), messageVersions: Array(versions[frameworkCount...]),
            reserved: try r.u32(at: base + 4))
    }

    /// The body bytes (to follow a 28-byte IC header).
    public func encodeBody() -> [UInt8] {
        let all = frameworkVersions + messageVersions
        var w = ByteWriter(size: Self.fixedSize + 4 * all.count)
        w.u16(UInt16(truncatingIfNeeded: frameworkVersions.count), at: 0)
        w.u16(UInt16(truncatingIfNeeded: messageVersions.count), at: 2)
        w.u32(reserved, at: 4)
        for (i, v) in all.enumerated() {
            w.u16(v.major, at: Self.fixedSize + 4 * i)
            w.u16(v.minor, at: Self.fixedSize + 4 * i + 2)
        }
        return w.bytes
    }
}

/// The guest's answer to a negotiate request.
public struct ICNegotiationResult: Equatable, Sendable {
    /// The packet payload to send back: the request echoed at its received length, with
    /// icmsgsize 16, icflags TRANSACTION|RESPONSE, status, counts and chosen versions set.
    public var response: [UInt8]
    /// The chosen versions; nil when nothing matched (or the offer was malformed).
    public var chosen: (framework: ICVersion, message: ICVersion)?
    /// Why the offer was rejected as malformed (to log); nil for a well-formed offer.
    public var problem: WireError?

    public static func == (a: ICNegotiationResult, b: ICNegotiationResult) -> Bool {
        a.response == b.response && a.chosen?.framework == b.chosen?.framework
            && a.chosen?.message == b.chosen?.message && a.problem == b.problem
    }
}

/// IC version negotiation (`icmsgtype` 0), as the Linux guest does it (PROTOCOL.md §4.6).
public enum ICNegotiation {
    /// Bytes a negotiate message must have before its counts can even be read (28 + 4).
    public static let minimumLength = ICMessageHeader.size + 4
    /// `icmsgsize` of every guest answer: counts + reserved + two entries.
    public static let responseMessageSize: UInt16 = 16

    /// Our choice among the host's offer: walk our lists in priority order and take the first
    /// entry the host offers exactly (major and minor), framework first, then message. Nil
    /// unless both match.
    public static func choose(offer: ICVersionOffer, supported: ICServiceVersions)
        -> (framework: ICVersion, message: ICVersion)?
    {
        guard let framework = supported.framework.first(where: { offer.frameworkVersions.contains($0) }),
            let message = supported.message.first(where: { offer.messageVersions.contains($0) })
        else { return nil }
        return (framework, message)
    }

    /// Builds the answer to the negotiate request in `payload`. A malformed offer (counts above
    /// 100, or shorter than its counts say) gets a failure answer (counts 0/0, HV_E_FAIL) and
    /// `problem` set. Throws only when the payload is too short to answer at all (< 32 bytes):
    /// drop such a packet, as the kernel does.
    public static func respond(to payload: [UInt8], supported: ICServiceVersions) throws(WireError)
        -> ICNegotiationResult
    {
        try ByteReader(payload, structure: "icmsg_negotiate").require(minimumLength)
        var chosen: (framework: ICVersion, message: ICVersion)?
        var problem: WireError?
        do {
            chosen = choose(offer: try ICVersionOffer.decode(fromPayload: payload), supported: supported)
        } catch {
            problem = error
        }
        var out = payload
        let base = ICMessageHeader.size
        try ICHeaderFields.set(&out, u16: responseMessageSize, at: 18)
        if let chosen {
            // A well-formed offer with at least one entry of each kind is ≥ 44 bytes, so both
            // answer entries fit inside the echoed length.
            try ICHeaderFields.set(&out, u16: 1, at: base)
            try ICHeaderFields.set(&out, u16: 1, at: base + 2)
            try ICHeaderFields.set(&out, u16: chosen.framework.major, at: base + 8)
            try ICHeaderFields.set(&out, u16: chosen.framework.minor, at: base + 10)
            try ICHeaderFields.set(&out, u16: chosen.message.major, at: base + 12)
            try ICHeaderFields.set(&out, u16: chosen.message.minor, at: base + 14)
            try ICMessageHeader.markResponse(in: &out, status: .ok)
        } else {
            try ICHeaderFields.set(&out, u16: 0, at: base)
            try ICHeaderFields.set(&out, u16: 0, at: base + 2)
            try ICMessageHeader.markResponse(in: &out, status: .fail)
        }
        return ICNegotiationResult(response: out, chosen: chosen, problem: problem)
    }

    /// Host side: the negotiate request offering `offer` (icverframe/icvermsg carry the highest
    /// offered versions; their host values are unverified and the guest only echoes them).
    public static func request(offer: ICVersionOffer, transactionID: UInt8 = 0) -> ICMessage {
        ICMessage.request(
            type: .negotiate, frameworkVersion: offer.frameworkVersions.max() ?? ICVersion(1, 0),
            messageVersion: offer.messageVersions.max() ?? ICVersion(1, 0), body: offer.encodeBody(),
            transactionID: transactionID)
    }

    /// Host side: reads the guest's answer. Returns the chosen versions, or nil when the guest
    /// reported no match (counts 0/0).
    public static func parseResponse(_ payload: [UInt8]) throws(WireError)
        -> (status: HResult, chosen: (framework: ICVersion, message: ICVersion)?)
    {
        let header = try ICMessageHeader.decode(from: payload)
        let offer = try ICVersionOffer.decode(fromPayload: payload)
        guard offer.frameworkVersions.count == 1, offer.messageVersions.count == 1 else {
            if offer.frameworkVersions.isEmpty && offer.messageVersions.isEmpty { return (header.status, nil) }
            throw .invalidField(
                structure: "icmsg_negotiate", field: "icframe_vercnt",
                reason: "answer must carry 1/1 or 0/0 versions, got \(offer.frameworkVersions.count)/\(offer.messageVersions.count)")
        }
        return (header.status, (offer.frameworkVersions[0], offer.messageVersions[0]))
    }
}

/// In-place little-endian stores into a payload whose length was already checked.
enum ICHeaderFields {
    static func set(_ bytes: inout [UInt8], u16 value: UInt16, at offset: Int) throws(WireError) {
        guard offset >= 0, offset + 2 <= bytes.count else {
            throw .truncated(structure: "icmsg_negotiate", needed: offset + 2, got: bytes.count)
        }
        bytes[offset] = UInt8(truncatingIfNeeded: value)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: value >> 8)
    }
}
