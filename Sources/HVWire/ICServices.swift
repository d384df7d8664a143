// Messages of the kernel-handled util ICs a daemon may take over: shutdown, time sync and
// heartbeat (PROTOCOL.md §5). Each follows the 28-byte IC header; on the ring the payload is
// padded to 8 bytes, so decoders accept a body longer than the struct and ignore the rest.

/// `shutdown_msg_data` flags (PROTOCOL.md §5.2). The host combines force with one action.
public struct ShutdownFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Do not wait for applications (the host's `Force` argument).
    public static let force = ShutdownFlags(rawValue: 1)
    public static let reboot = ShutdownFlags(rawValue: 2)
    public static let hibernate = ShutdownFlags(rawValue: 4)

    public var description: String {
        var parts: [String] = []
        if contains(.force) { parts.append("force") }
        if contains(.reboot) { parts.append("reboot") }
        if contains(.hibernate) { parts.append("hibernate") }
        let unknown = rawValue & ~7
        if unknown != 0 { parts.append("0x" + String(unknown, radix: 16)) }
        return parts.isEmpty ? "poweroff" : parts.joined(separator: "+")
    }
}

/// `struct shutdown_msg_data` (2060 bytes): reason_code u32 @0, timeout_seconds u32 @4,
/// flags u32 @8, display_message @12 (2048 bytes, UTF-16LE, 1024 units).
public struct ShutdownMessage: Equatable, Sendable {
    public static let size = 2060
    public static let displayMessageUnits = 1024

    /// The host's reason (`Msvm_ShutdownComponent.InitiateShutdown(Reason)` as a code).
    public var reasonCode: UInt32
    public var timeoutSeconds: UInt32
    public var flags: ShutdownFlags
    /// The host's message. Linux never interprets it; we only log it.
    public var displayMessage: String

    public init(reasonCode: UInt32 = 0, timeoutSeconds: UInt32 = 0, flags: ShutdownFlags, displayMessage: String = "") {
        self.reasonCode = reasonCode
        self.timeoutSeconds = timeoutSeconds
        self.flags = flags
        self.displayMessage = displayMessage
    }

    /// Decodes the message data after the IC header. The size rule is the kernel's (the whole
    /// struct must be there); the display text is only logged, so it is read up to its first NUL
    /// (or the field's end) and invalid UTF-16 is replaced rather than refused: a garbled text
    /// must not stop a shutdown the host asked for.
    public static func decode(body: ArraySlice<UInt8>) throws(WireError) -> ShutdownMessage {
        let r = ByteReader(Array(body), structure: "shutdown_msg_data")
        try r.require(size)
        var units: [UInt16] = []
        units.reserveCapacity(64)
        for i in 0..<displayMessageUnits {
            let u = try r.u16(at: 12 + 2 * i)
            if u == 0 { break }
            units.append(u)
        }
        return ShutdownMessage(
            reasonCode: try r.u32(at: 0), timeoutSeconds: try r.u32(at: 4), flags: ShutdownFlags(rawValue: try r.u32(at: 8)),
            displayMessage: String(decoding: units, as: UTF16.self))
    }

    /// Decodes from a whole IC payload (header first).
    public static func decode(payload: [UInt8]) throws(WireError) -> ShutdownMessage {
        try ByteReader(payload, structure: "shutdown_msg_data").require(ICMessageHeader.size)
        return try decode(body: payload[ICMessageHeader.size...])
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(size: Self.size)
        w.u32(reasonCode, at: 0)
        w.u32(timeoutSeconds, at: 4)
        w.u32(flags.rawValue, at: 8)
        w.utf16String(displayMessage, at: 12, units: Self.displayMessageUnits)
        return w.bytes
    }
}

/// `ictimesync_data.flags` / `ictimesync_ref_data.flags`: PROBE 0, SYNC 1, SAMPLE 2.
public struct TimeSyncFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Set the clock now (after boot or resume).
    public static let sync = TimeSyncFlags(rawValue: 1)
    /// A periodic sample.
    public static let sample = TimeSyncFlags(rawValue: 2)
    /// PROBE: no flag set.
    public static let probe: TimeSyncFlags = []

    public var description: String {
        if contains(.sync) { return "SYNC" }
        if contains(.sample) { return "SAMPLE" }
        return rawValue == 0 ? "PROBE" : "flags 0x" + String(rawValue, radix: 16)
    }
}

/// Windows FILETIME (100 ns ticks since 1601-01-01) ↔ Unix time (PROTOCOL.md §5.3).
public enum FileTime {
    /// WLTIMEDELTA: 1601-01-01 to 1970-01-01 in 100 ns ticks.
    public static let unixEpochTicks: UInt64 = 116_444_736_000_000_000

    /// Nanoseconds since the Unix epoch; nil when out of Int64 range (after 2262).
    public static func unixNanoseconds(_ ticks: UInt64) -> Int64? {
        let signed =
            ticks >= unixEpochTicks
            ? Int64(exactly: ticks - unixEpochTicks) : Int64(exactly: unixEpochTicks - ticks).map { -$0 }
        guard let signed else { return nil }
        let (ns, overflow) = signed.multipliedReportingOverflow(by: 100)
        return overflow ? nil : ns
    }

    /// Ticks for a Unix time in nanoseconds (truncated to 100 ns); nil before 1601.
    public static func ticks(unixNanoseconds ns: Int64) -> UInt64? {
        let t = ns / 100
        if t >= 0 { return unixEpochTicks.addingReportingOverflow(UInt64(t)).overflow ? nil : unixEpochTicks + UInt64(t) }
        let back = UInt64(-t)
        return back > unixEpochTicks ? nil : unixEpochTicks - back
    }
}

/// `struct ictimesync_data` (message versions 1 and 3, 25 bytes): parenttime u64 @0,
/// childtime u64 @8, roundtriptime u64 @16, flags u8 @24. Times are FILETIME ticks.
public struct TimeSyncMessage: Equatable, Sendable {
    public static let size = 25

    public var parentTime: UInt64
    public var childTime: UInt64
    public var roundTripTime: UInt64
    public var flags: TimeSyncFlags

    public init(parentTime: UInt64, childTime: UInt64 = 0, roundTripTime: UInt64 = 0, flags: TimeSyncFlags) {
        self.parentTime = parentTime
        self.childTime = childTime
        self.roundTripTime = roundTripTime
        self.flags = flags
    }

    public static func decode(body: ArraySlice<UInt8>) throws(WireError) -> TimeSyncMessage {
        let r = ByteReader(Array(body), structure: "ictimesync_data")
        try r.require(size)
        return TimeSyncMessage(
            parentTime: try r.u64(at: 0), childTime: try r.u64(at: 8), roundTripTime: try r.u64(at: 16),
            flags: TimeSyncFlags(rawValue: try r.u8(at: 24)))
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(size: Self.size)
        w.u64(parentTime, at: 0)
        w.u64(childTime, at: 8)
        w.u64(roundTripTime, at: 16)
        w.u8(flags.rawValue, at: 24)
        return w.bytes
    }
}

/// `struct ictimesync_ref_data` (message version 4, 22 bytes): parenttime u64 @0,
/// vmreferencetime u64 @8 (partition reference counter, 100 ns, when parenttime was taken),
/// flags u8 @16, leapflags i8 @17, stratum i8 @18, reserved[3] @19.
public struct TimeSyncReferenceMessage: Equatable, Sendable {
    public static let size = 22

    public var parentTime: UInt64
    public var vmReferenceTime: UInt64
    public var flags: TimeSyncFlags
    public var leapFlags: Int8
    public var stratum: Int8
    public var reserved: [UInt8]

    public init(
        parentTime: UInt64, vmReferenceTime: UInt64, flags: TimeSyncFlags, leapFlags: Int8 = 0, stratum: Int8 = 0,
        reserved: [UInt8] = [0, 0, 0]
    ) {
        self.parentTime = parentTime
        self.vmReferenceTime = vmReferenceTime
        self.flags = flags
        self.leapFlags = leapFlags
        self.stratum = stratum
        self.reserved = reserved
    }

    public static func decode(body: ArraySlice<UInt8>) throws(WireError) -> TimeSyncReferenceMessage {
        let r = ByteReader(Array(body), structure: "ictimesync_ref_data")
        try r.require(size)
        return TimeSyncReferenceMessage(
            parentTime: try r.u64(at: 0), vmReferenceTime: try r.u64(at: 8), flags: TimeSyncFlags(rawValue: try r.u8(at: 16)),
            leapFlags: Int8(bitPattern: try r.u8(at: 17)), stratum: Int8(bitPattern: try r.u8(at: 18)),
            reserved: Array(try r.slice(at: 19, count: 3)))
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(size: Self.size)
        w.u64(parentTime, at: 0)
        w.u64(vmReferenceTime, at: 8)
        w.u8(flags.rawValue, at: 16)
        w.u8(UInt8(bitPattern: leapFlags), at: 17)
        w.u8(UInt8(bitPattern: stratum), at: 18)
        for (i, b) in reserved.prefix(3).enumerated() { w.u8(b, at: 19 + i) }
        return w.bytes
    }
}

/// `struct heartbeat_msg_data` (40 bytes): seq_num u64 @0, reserved u32[8] @8. The guest answers
/// with seq_num + 1. Like the kernel, only the sequence number must be present (≥ 8 bytes).
public struct HeartbeatMessage: Equatable, Sendable {
    public static let size = 40
    /// What the kernel requires after the IC header.
    public static let minimumSize = 8

    public var sequenceNumber: UInt64

    public init(sequenceNumber: UInt64) { self.sequenceNumber = sequenceNumber }

    public static func decode(body: ArraySlice<UInt8>) throws(WireError) -> HeartbeatMessage {
        let r = ByteReader(Array(body), structure: "heartbeat_msg_data")
        try r.require(minimumSize)
        return HeartbeatMessage(sequenceNumber: try r.u64(at: 0))
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(size: Self.size)
        w.u64(sequenceNumber, at: 0)
        return w.bytes
    }

    /// The guest's answer in place: seq_num + 1 (wrapping, never a trap) in the payload after the
    /// IC header. Returns the new number.
    @discardableResult
    public static func incrementSequence(inPayload payload: inout [UInt8]) throws(WireError) -> UInt64 {
        let base = ICMessageHeader.size
        let seq = try decode(body: ArraySlice(payload).dropFirst(base)).sequenceNumber &+ 1
        for i in 0..<8 { payload[base + i] = UInt8(truncatingIfNeeded: seq >> (8 * UInt64(i))) }
        return seq
    }
}
