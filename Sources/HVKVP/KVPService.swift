import HVServiceKit
import HVSystem
import HVWire

/// Applies SET_IP_INFO requests (PROTOCOL.md §2.9). The service validates nothing itself here:
/// implementations own validation and return the HRESULT the host should see.
public protocol IPConfigurator: Sendable {
    func apply(_ info: KVPIPInfo) -> (status: HResult, detail: String)
}

/// Refuses every SET_IP_INFO (used until a backend is configured).
public struct UnsupportedIPConfigurator: IPConfigurator {
    public init() {}
    public func apply(_ info: KVPIPInfo) -> (status: HResult, detail: String) {
        (.notSupported, "SET_IP_INFO is not supported by this configuration")
    }
}

/// The KVP (data exchange) service on `/dev/vmbus/hv_kvp`.
///
/// Registration: a full 7432-byte `hv_kvp_msg` with operation 100 (REGISTER1); the kernel
/// answers with its driver version ("3.1"), kept for the IntegrationServicesVersion item.
/// Each request is answered with the request buffer echoed, the s32 `error` in bytes 0–3 and,
/// for GET / ENUMERATE / GET_IP_INFO, the data filled in.
///
/// Error codes (the host stops enumerating at the first non-zero status):
/// | condition | HRESULT |
/// |---|---|
/// | GET / DELETE of a missing key, ENUMERATE past the end, SET into a full pool, key or value size larger than its field (as the reference) | HV_S_CONT |
/// | pool number > 4, empty key, key or value not NUL-terminated within its size | E_INVALIDARG |
/// | unknown operation | ERROR_NOT_SUPPORTED |
/// | pool file I/O failure, GET_IP_INFO for an unknown adapter, message of the wrong size | E_FAIL |
public final class KVPService: RelayService {
    public let name = ServiceName.kvp
    public let devicePath = "dev/vmbus/hv_kvp"
    public let receiveCapacity = KVPLayout.messageSize

    public let configuration: KVPConfiguration
    public let stateDirectory: String
    public let intrinsic: IntrinsicItems
    public let network: NetworkState
    public let hostNameResolver: HostNameResolver
    private let ipConfigurator: any IPConfigurator
    private let startResolverThread: Bool
    private let state: Locked<State>

    private struct State {
        var stores: [KVPPool: KVPPoolStore] = [:]
        var version: String?
    }

    /// Opens (creating) the five pool files in `stateDirectory`, as the reference daemon does.
    ///
    /// - Parameters:
    ///   - networkRoot: where `/sys`, `/proc`, `/run`, `/etc` and `/var/lib` are read for
    ///     GET_IP_INFO (`/` on a real system).
    ///   - startResolverThread: resolve the FQDN on a background thread once registered (the
    ///     daemon); tests pass false and call `hostNameResolver.refreshNow()` if they need it.
    public init(
        stateDirectory: String,
        configuration: KVPConfiguration = KVPConfiguration(),
        facts: any SystemFacts = LiveSystemFacts(),
        networkRoot: String = "/",
        ipConfigurator: any IPConfigurator = UnsupportedIPConfigurator(),
        startResolverThread: Bool = true
    ) throws(KVPStoreError) {
        self.configuration = configuration
        self.stateDirectory = stateDirectory
        intrinsic = IntrinsicItems(facts: facts, configuration: configuration)
        network = NetworkState(root: networkRoot, facts: facts, configuration: configuration)
        hostNameResolver = HostNameResolver(facts: facts, refreshSeconds: configuration.fqdnRefreshSeconds)
        self.ipConfigurator = ipConfigurator
        self.startResolverThread = startResolverThread
        var stores: [KVPPool: KVPPoolStore] = [:]
        for pool in KVPPool.allCases {
            stores[pool] = try KVPPoolStore(directory: stateDirectory, pool: pool, options: configuration.storeOptions)
        }
        state = Locked(State(stores: stores))
    }

    /// The service for a daemon environment (`environment.stateDirectory` holds the pools).
    ///
    /// SET_IP_INFO uses `configuration.ipConfigBackend`, except when the device root is not `/`
    /// (emulated): then it is always a dry run, so the real machine's network is never touched.
    public convenience init(environment: ServiceEnvironment, configuration: KVPConfiguration) throws(KVPStoreError) {
        let configurator = NativeIPConfigurator(
            backend: environment.isEmulated ? .dryRun : configuration.ipConfigBackend,
            stateDirectory: environment.stateDirectory, scriptPath: configuration.setIPScript)
        try self.init(stateDirectory: environment.stateDirectory, configuration: configuration, ipConfigurator: configurator)
    }

    /// What the daemon calls: the `[kvp]` section validated, then the service for `environment`.
    /// Throws `ConfigError` (file, line, key) or `KVPStoreError` (the state directory).
    public static func make(section: ConfigSection, environment: ServiceEnvironment) throws -> KVPService {
        try KVPService(environment: environment, configuration: KVPConfiguration(section: section))
    }

    /// The version string from the last registration ("3.1"), if registered.
    public var integrationServicesVersion: String? { state.withLock { $0.version } }

    /// Stops the FQDN thread (daemon shutdown).
    public func stopBackgroundWork() { hostNameResolver.stop() }

    public func serviceWillStop() { stopBackgroundWork() }

    // MARK: RelayService

    public func registrationMessage() -> [UInt8] { KVPRegistration.message(code: KVPRegistration.current) }

    public func registrationCompleted(reply: [UInt8]) throws -> String {
        let version = try KVPRegistration.decodeReply(reply, expecting: KVPRegistration.current)
        state.withLock { $0.version = version }
        if startResolverThread { try hostNameResolver.start() }
        return version
    }

    public func channelReset(reason: String) {
        // Nothing is per-connection: every reply was complete before it was written.
    }

    public func handle(request: [UInt8]) -> RelayReply {
        let decoded: KVPRequest
        do {
            decoded = try KVPRequest.decode(request)
        } catch {
            let status = Self.status(for: error)
            let op = request.first.flatMap { KVPOperation(rawValue: $0) }?.description ?? "UNKNOWN"
            return RelayReply(
                bytes: KVPReply.status(status, echoing: request), operation: op, status: status,
                detail: "malformed request: \(error)")
        }
        return handle(decoded, raw: request)
    }

    /// The HRESULT for a request the decoder refused.
    static func status(for error: WireError) -> HResult {
        switch error {
        case .unknownCode: return .notSupported
        case .invalidField(_, let field, _) where field.hasSuffix("_size"): return .noMoreItems
        case .invalidField: return .invalidArgument
        case .truncated, .oversized: return .fail
        }
    }

    func handle(_ request: KVPRequest, raw: [UInt8]) -> RelayReply {
        let op = request.operation
        switch request {
        case .getIPInfo(_, let info):
            guard let answer = network.ipInfo(forAdapter: info.adapterID) else {
                return reply(raw, op, .fail, "no reported interface has MAC \(info.adapterID)")
            }
            return RelayReply(
                bytes: KVPReply.ipInfo(answer, echoing: raw), operation: op.description, status: .ok,
                detail: "adapter \(info.adapterID): \(answer.ipAddresses)")
        case .setIPInfo(_, let info):
            let (status, detail) = ipConfigurator.apply(info)
            return reply(raw, op, status, detail)
        default:
            break
        }
        guard let pool = KVPPool(number: Int(request.pool)) else {
            return reply(raw, op, .invalidArgument, "pool \(request.pool) out of range 0-4")
        }
        let fields = [LogField.pool: String(pool.rawValue)]
        do {
            switch request {
            case .set(_, let exchange):
                try state.withLock { s throws(KVPStoreError) in
                    try s.stores[pool]?.setValue(exchange.value, forKey: exchange.key)
                }
                return reply(raw, op, .ok, "pool \(pool.rawValue) key \(quoted(exchange.key))", fields)
            case .get(_, let key):
                let value = try state.withLock { s throws(KVPStoreError) in try s.stores[pool]?.value(forKey: key) }
                guard let value else {
                    return reply(raw, op, .noMoreItems, "pool \(pool.rawValue) key \(quoted(key)) not found", fields)
                }
                // PROTOCOL.md §6.3 K1: the kernel copies a GET answer's value from the ENUMERATE
                // offset (@532), not the uapi GET offset (@528) the reference daemon writes, so
                // we write it where the kernel reads it and the host gets the whole value.
                let bytes = KVPReply.get(
                    value: Self.fitted(value, width: KVPLayout.maxValueSize), echoing: raw,
                    valueOffset: KVPLayout.enumerateValue)
                return RelayReply(
                    bytes: bytes, operation: op.description, status: .ok, detail: "pool \(pool.rawValue) key \(quoted(key))",
                    fields: fields)
            case .delete(_, let key):
                let removed = try state.withLock { s throws(KVPStoreError) in try s.stores[pool]?.removeValue(forKey: key) ?? false }
                return reply(
                    raw, op, removed ? .ok : .noMoreItems,
                    "pool \(pool.rawValue) key \(quoted(key))\(removed ? "" : " not found")", fields)
            case .enumerate(_, let index):
                let record: KVPRecord?
                if pool == .auto {
                    record = intrinsic.record(
                        at: index, fqdn: hostNameResolver.current, integrationServicesVersion: integrationServicesVersion)
                } else {
                    record = try state.withLock { s throws(KVPStoreError) in try s.stores[pool]?.record(at: Int(index)) }
                }
                guard let record else {
                    return reply(raw, op, .noMoreItems, "pool \(pool.rawValue) index \(index): end", fields)
                }
                let bytes = KVPReply.enumerate(
                    key: Self.fitted(record.key, width: KVPLayout.maxKeySize),
                    value: Self.fitted(record.value, width: KVPLayout.maxValueSize), echoing: raw)
                return RelayReply(
                    bytes: bytes, operation: op.description, status: .ok,
                    detail: "pool \(pool.rawValue) index \(index) key \(quoted(record.key))", fields: fields)
            case .getIPInfo, .setIPInfo:
                return reply(raw, op, .fail, "unreachable")
            }
        } catch {
            let status: HResult
            switch error as? KVPStoreError {
            case .poolFull: status = .noMoreItems
            case .emptyKey, .invalidKey, .invalidValue: status = .invalidArgument
            case .system, .readOnly, nil: status = .fail
            }
            return reply(raw, op, status, "pool \(pool.rawValue): \(error)", fields)
        }
    }

    private func reply(_ raw: [UInt8], _ op: KVPOperation, _ status: HResult, _ detail: String, _ fields: [String: String] = [:])
        -> RelayReply
    {
        RelayReply(
            bytes: KVPReply.status(status, echoing: raw), operation: op.description, status: status, detail: detail, fields: fields)
    }

    /// Text the kernel can convert: invalid UTF-8 from other writers of the pool files becomes
    /// U+FFFD (the kernel would otherwise fail the item, and the host stop enumerating), cut at a
    /// character boundary to leave room for the NUL.
    static func fitted(_ bytes: [UInt8], width: Int) -> [UInt8] {
        var text = Array(String(decoding: bytes, as: UTF8.self).utf8)
        if text.count <= width - 1 { return text }
        var end = width - 1
        while end > 0 && text[end] & 0xC0 == 0x80 { end -= 1 }
        text.removeSubrange(end...)
        return text
    }
}

private func quoted(_ bytes: [UInt8]) -> String {
    let s = String(decoding: bytes.prefix(64), as: UTF8.self)
    return "\"\(s)\(bytes.count > 64 ? "…" : "")\""
}
