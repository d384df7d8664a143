import HVWire

/// The services hvguestd runs. Raw values are the names used on the command line, in
/// configuration sections, in `HV_SERVICE` journal fields and in `hvguestctl status`.
public enum ServiceName: String, Sendable, CaseIterable, Codable, Comparable {
    case kvp, fcopy, vss, shutdown, timesync, heartbeat

    public static func < (a: ServiceName, b: ServiceName) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// The answer to one request from the kernel, plus what the channel logs and counts about it.
public struct RelayReply: Sendable, Equatable {
    /// The bytes written back to the device (exactly the size the kernel expects).
    public var bytes: [UInt8]
    /// Short operation name for logs and status (`SET`, `FREEZE`, `START_FILE_COPY`, …).
    public var operation: String
    /// The HRESULT the host will see.
    public var status: HResult
    /// Optional human detail (`pool 1 key "foo"`, the error that caused a failure, …).
    public var detail: String?
    /// Optional journal fields specific to the service (e.g. `HV_POOL`).
    public var fields: [String: String]

    public init(bytes: [UInt8], operation: String, status: HResult, detail: String? = nil, fields: [String: String] = [:]) {
        self.bytes = bytes
        self.operation = operation
        self.status = status
        self.detail = detail
        self.fields = fields
    }
}

/// A service that talks to the kernel through a relay character device
/// (`/dev/vmbus/hv_kvp`, `hv_vss`, `hv_fcopy`) or its seqpacket stand-in.
///
/// All methods are called on the channel's own I/O thread, one at a time, in this order:
/// `registrationMessage` → `registrationCompleted` → `handle`* → `channelReset`, and again after
/// every reopen. Implementations must answer every request — bad bytes get an error reply, never
/// silence and never a trap.
public protocol RelayService: AnyObject, Sendable {
    var name: ServiceName { get }
    /// Device path below the device root, e.g. `dev/vmbus/hv_kvp`.
    var devicePath: String { get }
    /// Largest message the kernel may send us (the read buffer size).
    var receiveCapacity: Int { get }
    /// What we write first after opening the device.
    func registrationMessage() -> [UInt8]
    /// Checks the kernel's answer to the registration; returns a description of what was
    /// negotiated (e.g. `"3.1"`, `"version 1"`) for status and logs.
    func registrationCompleted(reply: [UInt8]) throws -> String
    /// Answers one request.
    func handle(request: [UInt8]) -> RelayReply
    /// The channel was closed or failed: drop per-connection state (a partial copy, a freeze).
    func channelReset(reason: String)
    /// The daemon is stopping for good, after the last `channelReset`: stop background threads.
    func serviceWillStop()
}

extension RelayService {
    public func serviceWillStop() {}
}
