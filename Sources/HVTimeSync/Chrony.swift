import HVSystem

/// chronyd's SOCK refclock sample (`struct sock_sample` of refclock_sock.c, 40 bytes on 64-bit
/// Linux): tv_sec i64 @0, tv_usec i64 @8 (system time of the measurement), offset f64 @16
/// (true time − system time, seconds), pulse i32 @24, leap i32 @28 (0 normal, 1 insert,
/// 2 delete), padding i32 @32, magic i32 @36 = 0x534f434b ("SOCK").
public struct ChronySockSample: Sendable, Equatable {
    public static let size = 40
    public static let magic: UInt32 = 0x534F_434B

    public var systemNanoseconds: Int64
    public var offsetSeconds: Double
    public var pulse: Bool
    public var leap: Int32

    public init(systemNanoseconds: Int64, offsetSeconds: Double, pulse: Bool = false, leap: Int32 = 0) {
        self.systemNanoseconds = systemNanoseconds
        self.offsetSeconds = offsetSeconds
        self.pulse = pulse
        self.leap = leap
    }

    public func encode() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.size)
        func put(_ v: UInt64, _ at: Int, _ n: Int) {
            for i in 0..<n { out[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
        }
        // Floor division keeps tv_usec in 0…999999 for times before the epoch, as timeval wants.
        var seconds = systemNanoseconds / 1_000_000_000
        var nanos = systemNanoseconds % 1_000_000_000
        if nanos < 0 {
            nanos += 1_000_000_000
            seconds -= 1
        }
        put(UInt64(bitPattern: seconds), 0, 8)
        put(UInt64(bitPattern: nanos / 1000), 8, 8)
        put(offsetSeconds.bitPattern, 16, 8)
        put(UInt64(pulse ? 1 : 0), 24, 4)
        put(UInt64(UInt32(bitPattern: leap)), 28, 4)
        put(UInt64(Self.magic), 36, 4)
        return out
    }

    /// Reads a sample back (tests, and anyone checking what we send).
    public static func decode(_ bytes: [UInt8]) -> ChronySockSample? {
        guard bytes.count == size else { return nil }
        func get(_ at: Int, _ n: Int) -> UInt64 {
            var v: UInt64 = 0
            for i in 0..<n { v |= UInt64(bytes[at + i]) << (8 * UInt64(i)) }
            return v
        }
        guard UInt32(truncatingIfNeeded: get(36, 4)) == magic else { return nil }
        let seconds = Int64(bitPattern: get(0, 8))
        let micros = Int64(bitPattern: get(8, 8))
        return ChronySockSample(
            systemNanoseconds: seconds &* 1_000_000_000 &+ micros &* 1000, offsetSeconds: Double(bitPattern: get(16, 8)),
            pulse: get(24, 4) != 0, leap: Int32(bitPattern: UInt32(truncatingIfNeeded: get(28, 4))))
    }
}

/// Where time samples go instead of the clock.
public protocol ChronySampleSink: Sendable {
    func send(_ sample: ChronySockSample) throws(SystemError)
}

/// Sends samples to chronyd's `refclock SOCK <path>` socket (a datagram socket chronyd binds).
/// chronyd disciplines the clock; hvguest never touches it in this mode.
public final class ChronySocketWriter: ChronySampleSink, @unchecked Sendable {
    public let path: String
    private let socket: Descriptor

    public init(path: String) throws(SystemError) {
        self.path = path
        socket = try UnixDatagram.socket()
    }

    deinit { socket.close() }

    public func send(_ sample: ChronySockSample) throws(SystemError) {
        try UnixDatagram.send(sample.encode(), from: socket, to: path)
    }
}
