/// `struct hv_kvp_msg` (7432 bytes) as relayed by the kernel on `/dev/vmbus/hv_kvp`
/// (PROTOCOL.md §2.1–2.3). Strings inside are UTF-8, NUL-terminated; the kernel converts to and
/// from the host's UTF-16.
public enum KVPLayout {
    public static let messageSize = 7432
    public static let maxKeySize = 512
    public static let maxValueSize = 2048

    // hv_kvp_hdr / error overlay
    public static let operation = 0
    public static let pool = 1
    public static let error = 0
    // body.kvp_get / kvp_set (hv_kvp_exchg_msg_value at +4)
    public static let exchangeValueType = 4
    public static let exchangeKeySize = 8
    public static let exchangeValueSize = 12
    public static let exchangeKey = 16
    public static let exchangeValue = 528
    // body.kvp_enum_data
    public static let enumerateIndex = 4
    public static let enumerateValueType = 8
    public static let enumerateKeySize = 12
    public static let enumerateValueSize = 16
    public static let enumerateKey = 20
    public static let enumerateValue = 532
    // body.kvp_delete
    public static let deleteKeySize = 4
    public static let deleteKey = 8
    // body.kvp_register
    public static let registerVersion = 4
    public static let registerVersionSize = 512
    // body.kvp_ip_val (hv_kvp_ipaddr_value at +4); u16 arrays carry UTF-8 bytes on the chardev
    public static let ipAdapterID = 4
    public static let ipAdapterIDSize = 256
    public static let ipAddressFamily = 260
    public static let ipDHCPEnabled = 261
    public static let ipAddresses = 262
    public static let ipAddressesSize = 2048
    public static let ipSubnets = 2310
    public static let ipSubnetsSize = 2048
    public static let ipGateways = 4358
    public static let ipGatewaysSize = 1024
    public static let ipDNS = 5382
    public static let ipDNSSize = 2048
}

/// `kvp_hdr.operation` values (KVP_OP_*).
public enum KVPOperation: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case get = 0, set = 1, delete = 2, enumerate = 3, getIPInfo = 4, setIPInfo = 5

    public var description: String {
        switch self {
        case .get: return "GET"
        case .set: return "SET"
        case .delete: return "DELETE"
        case .enumerate: return "ENUMERATE"
        case .getIPInfo: return "GET_IP_INFO"
        case .setIPInfo: return "SET_IP_INFO"
        }
    }
}

/// The five pools (`enum hv_kvp_exchg_pool`).
public enum KVPPool: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Host → guest (HostExchangeItems): host SET/DELETE, guest programs read.
    case external = 0
    /// Guest → host (GuestExchangeItems): guest programs write, host enumerates.
    case guest = 1
    /// Guest intrinsic items, synthesized by the daemon.
    case auto = 2
    /// Host-generated facts about the host (VirtualMachineName, HostName, …).
    case autoExternal = 3
    /// Host-only items; never expected from the host.
    case autoInternal = 4

    public var description: String {
        switch self {
        case .external: return "external"
        case .guest: return "guest"
        case .auto: return "auto"
        case .autoExternal: return "auto_external"
        case .autoInternal: return "auto_internal"
        }
    }
}

/// REG_SZ / REG_U32 / REG_U64. The kernel renders numeric values as decimal strings before
/// relaying, so the daemon only ever stores strings.
public enum KVPValueType {
    public static let string: UInt32 = 1
    public static let u32: UInt32 = 4
    public static let u64: UInt32 = 8
}

/// Registration codes written by the daemon in `kvp_hdr.operation`.
public enum KVPRegistration {
    /// KVP_OP_REGISTER1: the current protocol (errors in the `error` field, IP injection).
    public static let current: UInt8 = 100
    /// KVP_OP_REGISTER: the legacy protocol.
    public static let legacy: UInt8 = 4
    /// The kernel's HV_DRV_VERSION, sent back in the registration reply.
    public static let kernelVersionString = "3.1"

    /// The daemon's registration message: a full, zeroed `hv_kvp_msg` with the code.
    public static func message(code: UInt8 = current) -> [UInt8] {
        var w = ByteWriter(size: KVPLayout.messageSize)
        w.u8(code, at: KVPLayout.operation)
        return w.bytes
    }

    /// Decodes a registration message (emulator side): returns the code. The kernel accepts
    /// only writes of at least 7432 bytes with code 100 or 4.
    public static func decodeMessage(_ bytes: [UInt8]) throws(WireError) -> UInt8 {
        let r = ByteReader(bytes, structure: "hv_kvp_msg(register)")
        try r.require(KVPLayout.messageSize)
        let code = try r.u8(at: KVPLayout.operation)
        guard code == current || code == legacy else {
            throw .unknownCode(structure: r.structure, field: "operation", value: UInt32(code))
        }
        return code
    }

    /// The kernel's reply: the same code and the driver version string.
    public static func reply(code: UInt8 = current, version: String = kernelVersionString) -> [UInt8] {
        var w = ByteWriter(size: KVPLayout.messageSize)
        w.u8(code, at: KVPLayout.operation)
        w.cString(Array(version.utf8), at: KVPLayout.registerVersion, width: KVPLayout.registerVersionSize)
        return w.bytes
    }

    /// Decodes the kernel's reply (daemon side): the code must match, the version must be a
    /// NUL-terminated UTF-8 string.
    public static func decodeReply(_ bytes: [UInt8], expecting code: UInt8 = current) throws(WireError) -> String {
        let r = ByteReader(bytes, structure: "hv_kvp_msg(register reply)")
        try r.require(KVPLayout.messageSize)
        let got = try r.u8(at: KVPLayout.operation)
        guard got == code else {
            throw .invalidField(structure: r.structure, field: "operation", reason: "expected \(code), got \(got)")
        }
        return try r.utf8String(at: KVPLayout.registerVersion, width: KVPLayout.registerVersionSize, field: "version")
    }
}

/// A key/value pair as raw UTF-8 bytes without the terminating NUL (keys match byte-exactly,
/// like the reference daemon's `memcmp`).
public struct KVPExchange: Sendable, Equatable {
    public var valueType: UInt32
    public var key: [UInt8]
    public var value: [UInt8]

    public init(valueType: UInt32 = KVPValueType.string, key: [UInt8], value: [UInt8]) {
        self.valueType = valueType
        self.key = key
        self.value = value
    }

    public init(key: String, value: String) {
        self.init(key: Array(key.utf8), value: Array(value.utf8))
    }
}

/// `hv_kvp_ipaddr_value` as the kernel relays it (UTF-8 text in every string field).
public struct KVPIPInfo: Sendable, Equatable {
    /// GET_IP_INFO: the adapter's MAC address (upper-case, colon separated).
    /// SET_IP_INFO: the adapter's VMBus instance GUID (`{…}`).
    public var adapterID: String
    /// Bitmask: 1 = IPv4, 2 = IPv6.
    public var addressFamily: UInt8
    public var dhcpEnabled: Bool
    /// `;`-separated lists.
    public var ipAddresses: String
    public var subnets: String
    public var gateways: String
    public var dnsServers: String

    public init(adapterID: String, addressFamily: UInt8 = 0, dhcpEnabled: Bool = false, ipAddresses: String = "",
                subnets: String = "", gateways: String = "", dnsServers: String = "") {
        self.adapterID = adapterID
        self.addressFamily = addressFamily
        self.dhcpEnabled = dhcpEnabled
        self.ipAddresses = ipAddresses
        self.subnets = subnets
        self.gateways = gateways
        self.dnsServers = dnsServers
    }

    public static let familyIPv4: UInt8 = 1
    public static let familyIPv6: UInt8 = 2
}

/// One request from the kernel on `/dev/vmbus/hv_kvp`.
///
/// The pool is kept as the raw byte: validating it (and answering out-of-range pools with an
/// error) is the service's job, so a bad pool still gets a reply.
public enum KVPRequest: Sendable, Equatable {
    case get(pool: UInt8, key: [UInt8])
    case set(pool: UInt8, KVPExchange)
    case delete(pool: UInt8, key: [UInt8])
    case enumerate(pool: UInt8, index: UInt32)
    case getIPInfo(pool: UInt8, KVPIPInfo)
    case setIPInfo(pool: UInt8, KVPIPInfo)

    public var operation: KVPOperation {
        switch self {
        case .get: return .get
        case .set: return .set
        case .delete: return .delete
        case .enumerate: return .enumerate
        case .getIPInfo: return .getIPInfo
        case .setIPInfo: return .setIPInfo
        }
    }

    public var pool: UInt8 {
        switch self {
        case .get(let p, _), .set(let p, _), .delete(let p, _), .enumerate(let p, _), .getIPInfo(let p, _),
            .setIPInfo(let p, _):
            return p
        }
    }

    static let structure = "hv_kvp_msg"

    /// Decodes a kernel → daemon message. The buffer must be exactly 7432 bytes. Key and value
    /// sizes count the NUL and must fit their fields; the string must end (with a NUL) within
    /// its declared size.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> KVPRequest {
        let r = ByteReader(bytes, structure: structure)
        try r.require(KVPLayout.messageSize)
        try r.requireAtMost(KVPLayout.messageSize)
        let rawOp = try r.u8(at: KVPLayout.operation)
        let pool = try r.u8(at: KVPLayout.pool)
        guard let op = KVPOperation(rawValue: rawOp) else {
            throw .unknownCode(structure: structure, field: "operation", value: UInt32(rawOp))
        }
        switch op {
        case .get:
            let key = try sizedString(r, sizeAt: KVPLayout.exchangeKeySize, at: KVPLayout.exchangeKey,
                                      limit: KVPLayout.maxKeySize, field: "key")
            return .get(pool: pool, key: key)
        case .set:
            let key = try sizedString(r, sizeAt: KVPLayout.exchangeKeySize, at: KVPLayout.exchangeKey,
                                      limit: KVPLayout.maxKeySize, field: "key")
            let value = try sizedString(r, sizeAt: KVPLayout.exchangeValueSize, at: KVPLayout.exchangeValue,
                                        limit: KVPLayout.maxValueSize, field: "value")
            let type = try r.u32(at: KVPLayout.exchangeValueType)
            return .set(pool: pool, KVPExchange(valueType: type, key: key, value: value))
        case .delete:
            let key = try sizedString(r, sizeAt: KVPLayout.deleteKeySize, at: KVPLayout.deleteKey,
                                      limit: KVPLayout.maxKeySize, field: "key")
            return .delete(pool: pool, key: key)
        case .enumerate:
            return .enumerate(pool: pool, index: try r.u32(at: KVPLayout.enumerateIndex))
        case .getIPInfo:
            return .getIPInfo(pool: pool, try decodeIPInfo(r))
        case .setIPInfo:
            return .setIPInfo(pool: pool, try decodeIPInfo(r))
        }
    }

    /// A `*_size` field (bytes including the NUL) and the string it describes.
    private static func sizedString(_ r: ByteReader, sizeAt: Int, at offset: Int, limit: Int, field: String) throws(WireError) -> [UInt8] {
        let size = try r.u32(at: sizeAt)
        guard size <= UInt32(limit) else {
            throw .invalidField(structure: structure, field: "\(field)_size", reason: "\(size) exceeds the \(limit)-byte field")
        }
        if size == 0 { return [] }
        let raw = try r.slice(at: offset, count: Int(size))
        guard let nul = raw.firstIndex(of: 0) else {
            throw .invalidField(structure: structure, field: field, reason: "not NUL-terminated within \(field)_size \(size)")
        }
        return Array(raw[raw.startIndex..<nul])
    }

    static func decodeIPInfo(_ r: ByteReader) throws(WireError) -> KVPIPInfo {
        KVPIPInfo(
            adapterID: try r.utf8String(at: KVPLayout.ipAdapterID, width: KVPLayout.ipAdapterIDSize, field: "adapter_id"),
            addressFamily: try r.u8(at: KVPLayout.ipAddressFamily),
            dhcpEnabled: try r.u8(at: KVPLayout.ipDHCPEnabled) != 0,
            ipAddresses: try r.utf8String(at: KVPLayout.ipAddresses, width: KVPLayout.ipAddressesSize, field: "ip_addr"),
            subnets: try r.utf8String(at: KVPLayout.ipSubnets, width: KVPLayout.ipSubnetsSize, field: "sub_net"),
            gateways: try r.utf8String(at: KVPLayout.ipGateways, width: KVPLayout.ipGatewaysSize, field: "gate_way"),
            dnsServers: try r.utf8String(at: KVPLayout.ipDNS, width: KVPLayout.ipDNSSize, field: "dns_addr"))
    }

    /// Encodes the message the kernel would send (emulator side). Strings are cut where the
    /// kernel cuts host strings: keys at 511 bytes, values at 2047, IP strings at half their
    /// field (`process_ib_ipinfo`), never inside a UTF-8 character.
    public func encode() -> [UInt8] {
        var w = ByteWriter(size: KVPLayout.messageSize)
        w.u8(operation.rawValue, at: KVPLayout.operation)
        w.u8(pool, at: KVPLayout.pool)
        switch self {
        case .get(_, let key):
            Self.putSized(&w, key, sizeAt: KVPLayout.exchangeKeySize, at: KVPLayout.exchangeKey, width: KVPLayout.maxKeySize)
        case .set(_, let x):
            w.u32(x.valueType, at: KVPLayout.exchangeValueType)
            Self.putSized(&w, x.key, sizeAt: KVPLayout.exchangeKeySize, at: KVPLayout.exchangeKey, width: KVPLayout.maxKeySize)
            Self.putSized(&w, x.value, sizeAt: KVPLayout.exchangeValueSize, at: KVPLayout.exchangeValue,
                          width: KVPLayout.maxValueSize)
        case .delete(_, let key):
            Self.putSized(&w, key, sizeAt: KVPLayout.deleteKeySize, at: KVPLayout.deleteKey, width: KVPLayout.maxKeySize)
        case .enumerate(_, let index):
            w.u32(index, at: KVPLayout.enumerateIndex)
        case .getIPInfo(_, let info), .setIPInfo(_, let info):
            Self.putIPInfo(&w, info, limits: Self.kernelIPStringLimits)
        }
        return w.bytes
    }

    static func putSized(_ w: inout ByteWriter, _ s: [UInt8], sizeAt: Int, at offset: Int, width: Int) {
        // The size must count exactly what cString wrote (it may cut at a character boundary).
        let n = w.cString(s, at: offset, width: width)
        w.u32(UInt32(n + 1), at: sizeAt)
    }

    /// Widths, NUL included, that bound each IP string (adapter id, addresses, subnets,
    /// gateways, DNS servers).
    typealias IPStringLimits = (adapterID: Int, addresses: Int, subnets: Int, gateways: Int, dns: Int)

    /// Field capacity: what a daemon reply can carry.
    static let fieldIPStringLimits: IPStringLimits = (KVPLayout.ipAdapterIDSize, KVPLayout.ipAddressesSize,
                                                      KVPLayout.ipSubnetsSize, KVPLayout.ipGatewaysSize, KVPLayout.ipDNSSize)

    /// What the kernel relays (`process_ib_ipinfo`): it converts the host's strings with an output
    /// limit of MAX_ADAPTER_ID_SIZE / MAX_IP_ADDR_SIZE / MAX_GATEWAY_SIZE *bytes* — half of each
    /// field — and the zero-filled rest of the field supplies the NUL.
    static let kernelIPStringLimits: IPStringLimits = (KVPLayout.ipAdapterIDSize / 2 + 1, KVPLayout.ipAddressesSize / 2 + 1,
                                                       KVPLayout.ipSubnetsSize / 2 + 1, KVPLayout.ipGatewaysSize / 2 + 1,
                                                       KVPLayout.ipDNSSize / 2 + 1)

    static func putIPInfo(_ w: inout ByteWriter, _ info: KVPIPInfo, limits: IPStringLimits) {
        w.cString(Array(info.adapterID.utf8), at: KVPLayout.ipAdapterID, width: limits.adapterID)
        w.u8(info.addressFamily, at: KVPLayout.ipAddressFamily)
        w.u8(info.dhcpEnabled ? 1 : 0, at: KVPLayout.ipDHCPEnabled)
        w.cString(Array(info.ipAddresses.utf8), at: KVPLayout.ipAddresses, width: limits.addresses)
        w.cString(Array(info.subnets.utf8), at: KVPLayout.ipSubnets, width: limits.subnets)
        w.cString(Array(info.gateways.utf8), at: KVPLayout.ipGateways, width: limits.gateways)
        w.cString(Array(info.dnsServers.utf8), at: KVPLayout.ipDNS, width: limits.dns)
    }
}

/// The daemon's replies: the request buffer written back with the s32 `error` in bytes 0–3
/// (overlaying operation and pool) and, for GET / ENUMERATE / GET_IP_INFO, the data filled in.
public enum KVPReply {
    /// The request echoed (padded or cut to 7432 bytes) with `error` set. On a non-zero error the
    /// kernel sends the host only the status.
    public static func status(_ status: HResult, echoing request: [UInt8]) -> [UInt8] {
        var w = echo(request)
        w.u32(status.rawValue, at: KVPLayout.error)
        return w.bytes
    }

    /// A GET answer: the value in the `kvp_get` layout (@528, with `value_size`).
    ///
    /// Note PROTOCOL.md §6.3 K1: the kernel reads a GET value back from the ENUMERATE offset
    /// (@532). `valueOffset` lets the service choose; `KVPLayout.exchangeValue` is the uapi one.
    public static func get(value: [UInt8], echoing request: [UInt8], valueOffset: Int = KVPLayout.exchangeValue) -> [UInt8] {
        var w = echo(request)
        w.u32(HResult.ok.rawValue, at: KVPLayout.error)
        w.u32(KVPValueType.string, at: KVPLayout.exchangeValueType)
        // Clear both candidate value areas so no stale request bytes survive.
        w.zero(count: KVPLayout.maxValueSize + 4, at: KVPLayout.exchangeValue)
        let n = w.cString(value, at: valueOffset, width: KVPLayout.maxValueSize)
        w.u32(UInt32(n + 1), at: KVPLayout.exchangeValueSize)
        return w.bytes
    }

    /// An ENUMERATE answer: key @20, value @532, sizes counting the NUL, REG_SZ.
    public static func enumerate(key: [UInt8], value: [UInt8], echoing request: [UInt8]) -> [UInt8] {
        var w = echo(request)
        w.u32(HResult.ok.rawValue, at: KVPLayout.error)
        w.u32(KVPValueType.string, at: KVPLayout.enumerateValueType)
        KVPRequest.putSized(&w, key, sizeAt: KVPLayout.enumerateKeySize, at: KVPLayout.enumerateKey, width: KVPLayout.maxKeySize)
        KVPRequest.putSized(&w, value, sizeAt: KVPLayout.enumerateValueSize, at: KVPLayout.enumerateValue,
                            width: KVPLayout.maxValueSize)
        return w.bytes
    }

    /// A GET_IP_INFO answer.
    public static func ipInfo(_ info: KVPIPInfo, echoing request: [UInt8]) -> [UInt8] {
        var w = echo(request)
        w.u32(HResult.ok.rawValue, at: KVPLayout.error)
        KVPRequest.putIPInfo(&w, info, limits: KVPRequest.fieldIPStringLimits)
        return w.bytes
    }

    private static func echo(_ request: [UInt8]) -> ByteWriter {
        var bytes = Array(request.prefix(KVPLayout.messageSize))
        if bytes.count < KVPLayout.messageSize {
            bytes += [UInt8](repeating: 0, count: KVPLayout.messageSize - bytes.count)
        }
        return ByteWriter(bytes: bytes)
    }

    /// What the kernel takes from a daemon reply (emulator side), per operation:
    /// the status, and for GET/ENUMERATE the key/value strings as the kernel reads them.
    public struct Decoded: Sendable, Equatable {
        public var status: HResult
        public var key: [UInt8]?
        public var value: [UInt8]?
        public var ipInfo: KVPIPInfo?
    }

    /// Decodes a reply the way the kernel does (`kvp_on_msg` / `kvp_respond_to_host`): at least
    /// 7432 bytes (the kernel refuses only shorter writes and ignores a tail); `error` first;
    /// data only when `error` is 0. Strings are measured with a bounded `strlen` — a string
    /// without NUL in its field is malformed.
    public static func decode(_ bytes: [UInt8], for operation: KVPOperation,
                              getValueOffset: Int = KVPLayout.enumerateValue) throws(WireError) -> Decoded {
        let r = ByteReader(bytes, structure: "hv_kvp_msg(reply)")
        try r.require(KVPLayout.messageSize)
        let status = HResult(try r.u32(at: KVPLayout.error))
        var d = Decoded(status: status)
        guard status.isSuccess else { return d }
        switch operation {
        case .get:
            d.value = try r.cStringBytes(at: getValueOffset, width: KVPLayout.maxValueSize, field: "value")
        case .enumerate:
            d.key = try r.cStringBytes(at: KVPLayout.enumerateKey, width: KVPLayout.maxKeySize, field: "key")
            d.value = try r.cStringBytes(at: KVPLayout.enumerateValue, width: KVPLayout.maxValueSize, field: "value")
        case .getIPInfo:
            d.ipInfo = try KVPRequest.decodeIPInfo(r)
        case .set, .delete, .setIPInfo:
            break
        }
        return d
    }
}
