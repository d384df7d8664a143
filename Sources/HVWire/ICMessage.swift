/// `icmsgtype`: which integration component a message belongs to (PROTOCOL.md §4.6).
public struct ICMessageType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let negotiate = ICMessageType(rawValue: 0)
    public static let heartbeat = ICMessageType(rawValue: 1)
    public static let kvpExchange = ICMessageType(rawValue: 2)
    public static let shutdown = ICMessageType(rawValue: 3)
    public static let timeSync = ICMessageType(rawValue: 4)
    public static let vss = ICMessageType(rawValue: 5)
    public static let fcopy = ICMessageType(rawValue: 7)

    public var description: String {
        switch self {
        case .negotiate: return "negotiate"
        case .heartbeat: return "heartbeat"
        case .kvpExchange: return "kvp"
        case .shutdown: return "shutdown"
        case .timeSync: return "timesync"
        case .vss: return "vss"
        case .fcopy: return "fcopy"
        default: return "type \(rawValue)"
        }
    }
}

/// `icflags` (ICMSGHDRFLAG_*).
public struct ICFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let transaction = ICFlags(rawValue: 1)
    public static let request = ICFlags(rawValue: 2)
    public static let response = ICFlags(rawValue: 4)
}

/// `struct ic_version` (4 bytes: major u16, minor u16). As one number: major << 16 | minor.
public struct ICVersion: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var major: UInt16
    public var minor: UInt16

    public init(_ major: UInt16, _ minor: UInt16) {
        self.major = major
        self.minor = minor
    }

    /// The kernel's `int` form (UTIL_FW_VERSION = 0x30000 is 3.0).
    public var packed: UInt32 { UInt32(major) << 16 | UInt32(minor) }

    public static func < (a: ICVersion, b: ICVersion) -> Bool { a.packed < b.packed }

    public var description: String { "\(major).\(minor)" }
}

/// The 28 bytes in front of every IC message: `struct vmbuspipe_hdr` (8) + `struct icmsg_hdr` (20).
///
/// | Off | Size | Field |
/// |---|---|---|
/// | 0 | 4 | vmbuspipe_hdr.flags |
/// | 4 | 4 | vmbuspipe_hdr.msgsize |
/// | 8 | 4 | icverframe (major u16, minor u16) |
/// | 12 | 2 | icmsgtype |
/// | 14 | 4 | icvermsg (major u16, minor u16) |
/// | 18 | 2 | icmsgsize (bytes of message data after this header) |
/// | 20 | 4 | status (HRESULT; the guest fills it in) |
/// | 24 | 1 | ictransaction_id |
/// | 25 | 1 | icflags |
/// | 26 | 2 | reserved |
public struct ICMessageHeader: Equatable, Sendable {
    /// ICMSG_HDR: where the service message starts.
    public static let size = 28

    public var pipeFlags: UInt32
    public var pipeMessageSize: UInt32
    public var frameworkVersion: ICVersion
    public var messageType: ICMessageType
    public var messageVersion: ICVersion
    public var messageSize: UInt16
    public var status: HResult
    public var transactionID: UInt8
    public var flags: ICFlags
    public var reserved: UInt16

    public init(
        pipeFlags: UInt32 = 0, pipeMessageSize: UInt32 = 0, frameworkVersion: ICVersion, messageType: ICMessageType,
        messageVersion: ICVersion, messageSize: UInt16, status: HResult = .ok, transactionID: UInt8 = 0,
        flags: ICFlags, reserved: UInt16 = 0
    ) {
        self.pipeFlags = pipeFlags
        self.pipeMessageSize = pipeMessageSize
        self.frameworkVersion = frameworkVersion
        self.messageType = messageType
        self.messageVersion = messageVersion
        self.messageSize = messageSize
        self.status = status
        self.transactionID = transactionID
        self.flags = flags
        self.reserved = reserved
    }

    /// Reads the header at the start of an IC packet payload (no copy of the rest).
    public static func decode(from payload: [UInt8]) throws(WireError) -> ICMessageHeader {
        let r = ByteReader(payload, structure: "icmsg_hdr")
        try r.require(size)
        return ICMessageHeader(
            pipeFlags: try r.u32(at: 0), pipeMessageSize: try r.u32(at: 4),
            frameworkVersion: ICVersion(try r.u16(at: 8), try r.u16(at: 10)),
            messageType: ICMessageType(rawValue: try r.u16(at: 12)),
            messageVersion: ICVersion(try r.u16(at: 14), try r.u16(at: 16)),
            messageSize: try r.u16(at: 18), status: HResult(try r.u32(at: 20)), transactionID: try r.u8(at: 24),
            flags: ICFlags(rawValue: try r.u8(at: 25)), reserved: try r.u16(at: 26))
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(size: Self.size)
        write(to: &w)
        return w.bytes
    }

    private func write(to w: inout ByteWriter) {
        w.u32(pipeFlags, at: 0)
        w.u32(pipeMessageSize, at: 4)
        w.u16(frameworkVersion.major, at: 8)
        w.u16(frameworkVersion.minor, at: 10)
        w.u16(messageType.rawValue, at: 12)
        w.u16(messageVersion.major, at: 14)
        w.u16(messageVersion.minor, at: 16)
        w.u16(messageSize, at: 18)
        w.u32(status.rawValue, at: 20)
        w.u8(transactionID, at: 24)
        w.u8(flags.rawValue, at: 25)
        w.u16(reserved, at: 26)
    }

    /// Turns the request in `payload` into its response in place: `status` set, icflags =
    /// TRANSACTION | RESPONSE; everything else (pipe header, versions, transaction id, data)
    /// stays as received, which is what the kernel does. No allocation.
    public static func markResponse(in payload: inout [UInt8], status: HResult) throws(WireError) {
        try ByteReader(payload, structure: "icmsg_hdr").require(size)
        for i in 0..<4 { payload[20 + i] = UInt8(truncatingIfNeeded: status.rawValue >> (8 * UInt32(i))) }
        payload[25] = ICFlags([.transaction, .response]).rawValue
    }

    /// Writes `icmsgsize` in place.
    public static func setMessageSize(in payload: inout [UInt8], _ size: UInt16) throws(WireError) {
        try ByteReader(payload, structure: "icmsg_hdr").require(Self.size)
        payload[18] = UInt8(truncatingIfNeeded: size)
        payload[19] = UInt8(truncatingIfNeeded: size >> 8)
    }
}

/// One IC message: header plus everything after it (the service message, including any padding
/// the packet carried — the ring rounds payloads up to 8 bytes).
public struct ICMessage: Equatable, Sendable {
    public var header: ICMessageHeader
    public var body: [UInt8]

    public init(header: ICMessageHeader, body: [UInt8]) {
        self.header = header
        self.body = body
    }

    public static func decode(from payload: [UInt8]) throws(WireError) -> ICMessage {
        let header = try ICMessageHeader.decode(from: payload)
        return ICMessage(header: header, body: Array(payload[ICMessageHeader.size...]))
    }

    public func encode() -> [UInt8] {
        var out = header.encode()
        out.reserveCapacity(ICMessageHeader.size + body.count)
        out += body
        return out
    }

    /// A request as a host sends it: icflags TRANSACTION | REQUEST, icmsgsize = body length.
    /// The pipe header's host values are unverified (PROTOCOL.md §4.6); the emulator uses
    /// flags 0 and msgsize = bytes after the pipe header.
    public static func request(
        type: ICMessageType, frameworkVersion: ICVersion, messageVersion: ICVersion, body: [UInt8],
        transactionID: UInt8 = 0
    ) -> ICMessage {
        let header = ICMessageHeader(
            pipeFlags: 0, pipeMessageSize: UInt32(truncatingIfNeeded: ICMessageHeader.size - 8 + body.count),
            frameworkVersion: frameworkVersion, messageType: type, messageVersion: messageVersion,
            messageSize: UInt16(truncatingIfNeeded: body.count), status: .ok, transactionID: transactionID,
            flags: [.transaction, .request])
        return ICMessage(header: header, body: body)
    }

    /// The response to this request: the same message with `status` set and icflags =
    /// TRANSACTION | RESPONSE; `body` replaces the data when given.
    public func response(status: HResult, body newBody: [UInt8]? = nil) -> ICMessage {
        var r = self
        r.header.status = status
        r.header.flags = [.transaction, .response]
        if let newBody { r.body = newBody }
        return r
    }
}
