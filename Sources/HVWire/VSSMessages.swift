/// `struct hv_vss_msg` (12 bytes) as relayed on `/dev/vmbus/hv_vss` (PROTOCOL.md §3).
public enum VSSLayout {
    public static let messageSize = 12
    public static let operation = 0
    /// The daemon's s32 `error` overlays the header's first four bytes in replies.
    public static let error = 0
    /// `vss_cf.flags` / `dm_info.flags`.
    public static let flags = 8
    /// The registration reply is a bare u32 (the negotiated code).
    public static let registrationReplySize = 4
}

/// `vss_hdr.operation` values (VSS_OP_*).
public enum VSSOperation: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case create = 0, delete = 1, hotBackup = 2, getDMInfo = 3, backupComplete = 4, freeze = 5, thaw = 6, autoRecover = 7
    case register = 128, register1 = 129

    public var description: String {
        switch self {
        case .create: return "CREATE"
        case .delete: return "DELETE"
        case .hotBackup: return "HOT_BACKUP"
        case .getDMInfo: return "GET_DM_INFO"
        case .backupComplete: return "BU_COMPLETE"
        case .freeze: return "FREEZE"
        case .thaw: return "THAW"
        case .autoRecover: return "AUTO_RECOVER"
        case .register: return "REGISTER"
        case .register1: return "REGISTER1"
        }
    }

    /// Operations the kernel hands to the daemon; the kernel answers the rest itself.
    public var isDaemonOperation: Bool { self == .freeze || self == .thaw || self == .hotBackup }
}

/// `VSS_HBU_NO_AUTO_RECOVERY`, the flag the kernel means to set on HOT_BACKUP (§6.3 V2).
public let vssNoAutoRecoveryFlag: UInt32 = 5

/// One request from the kernel. The operation is kept raw so unknown codes still get a reply.
public struct VSSRequest: Sendable, Equatable {
    public var rawOperation: UInt8
    public var flags: UInt32

    public init(operation: VSSOperation, flags: UInt32 = 0) {
        rawOperation = operation.rawValue
        self.flags = flags
    }

    public init(rawOperation: UInt8, flags: UInt32 = 0) {
        self.rawOperation = rawOperation
        self.flags = flags
    }

    public var operation: VSSOperation? { VSSOperation(rawValue: rawOperation) }

    /// Decodes a kernel → daemon message: at least 12 bytes. Longer messages are accepted and
    /// their tail ignored (host FREEZE messages carry LUN data Linux does not use).
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> VSSRequest {
        let r = ByteReader(bytes, structure: "hv_vss_msg")
        try r.require(VSSLayout.messageSize)
        return VSSRequest(rawOperation: try r.u8(at: VSSLayout.operation), flags: try r.u32(at: VSSLayout.flags))
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(size: VSSLayout.messageSize)
        w.u8(rawOperation, at: VSSLayout.operation)
        w.u32(flags, at: VSSLayout.flags)
        return w.bytes
    }
}

/// The daemon's reply: exactly 12 bytes, `error` in bytes 0–3, flags at 8.
public struct VSSReply: Sendable, Equatable {
    public var status: HResult
    public var flags: UInt32

    public init(status: HResult, flags: UInt32 = 0) {
        self.status = status
        self.flags = flags
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(size: VSSLayout.messageSize)
        w.u32(status.rawValue, at: VSSLayout.error)
        w.u32(flags, at: VSSLayout.flags)
        return w.bytes
    }

    /// Decodes a reply as the kernel does: the write must be exactly 12 bytes.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> VSSReply {
        let r = ByteReader(bytes, structure: "hv_vss_msg(reply)")
        try r.require(VSSLayout.messageSize)
        try r.requireAtMost(VSSLayout.messageSize)
        return VSSReply(status: HResult(try r.u32(at: VSSLayout.error)), flags: try r.u32(at: VSSLayout.flags))
    }
}

/// The VSS registration handshake: the daemon writes a 12-byte message with operation 129
/// (REGISTER1); the kernel answers with 4 bytes, u32 129.
public enum VSSRegistration {
    public static let current = VSSOperation.register1.rawValue

    public static func message(code: UInt8 = current) -> [UInt8] {
        VSSRequest(rawOperation: code).encode()
    }

    /// Emulator side: the code of a registration write (exactly 12 bytes, code 128 or 129).
    public static func decodeMessage(_ bytes: [UInt8]) throws(WireError) -> UInt8 {
        let r = ByteReader(bytes, structure: "hv_vss_msg(register)")
        try r.require(VSSLayout.messageSize)
        try r.requireAtMost(VSSLayout.messageSize)
        let code = try r.u8(at: VSSLayout.operation)
        guard code == VSSOperation.register.rawValue || code == VSSOperation.register1.rawValue else {
            throw .unknownCode(structure: r.structure, field: "operation", value: UInt32(code))
        }
        return code
    }

    public static func reply(code: UInt8 = current) -> [UInt8] {
        var w = ByteWriter(size: VSSLayout.registrationReplySize)
        w.u32(UInt32(code), at: 0)
        return w.bytes
    }

    /// Daemon side: the kernel's 4-byte answer must carry the code we sent.
    public static func decodeReply(_ bytes: [UInt8], expecting code: UInt8 = current) throws(WireError) -> UInt32 {
        let r = ByteReader(bytes, structure: "vss registration reply")
        try r.require(VSSLayout.registrationReplySize)
        try r.requireAtMost(VSSLayout.registrationReplySize)
        let v = try r.u32(at: 0)
        guard v == UInt32(code) else {
            throw .invalidField(structure: r.structure, field: "version", reason: "expected \(code), got \(v)")
        }
        return v
    }
}
