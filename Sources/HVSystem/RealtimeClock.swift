import CHVLinux
import Glibc

/// Permission to change the machine's real clock. It exists only when the device root is `/`
/// (a real Hyper-V guest), so an emulated run or a test cannot reach `clock_adjtime` at all.
public struct ClockWriteAuthorization: Sendable {
    private init() {}

    /// Nil unless `deviceRoot` is exactly `/`.
    public static func forDeviceRoot(_ deviceRoot: String) -> ClockWriteAuthorization? {
        deviceRoot == "/" ? ClockWriteAuthorization() : nil
    }
}

/// CLOCK_REALTIME: reading is free; every write needs a `ClockWriteAuthorization`.
public enum RealtimeClock {
    /// Nanoseconds since the Unix epoch.
    public static func nowNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec)
    }

    /// Adds `nanoseconds` to the clock in one step (clock_adjtime ADJ_SETOFFSET).
    public static func step(byNanoseconds nanoseconds: Int64, _ authorization: ClockWriteAuthorization) throws(SystemError) {
        _ = authorization
        if chv_clock_step_realtime(nanoseconds) != 0 { throw SystemError.last("clock_adjtime(ADJ_SETOFFSET)") }
    }

    /// Sets the kernel's frequency correction in ppm (clock_adjtime ADJ_FREQUENCY, ±500).
    public static func setFrequency(ppm: Double, _ authorization: ClockWriteAuthorization) throws(SystemError) {
        _ = authorization
        if chv_clock_set_frequency_realtime(max(-500, min(500, ppm))) != 0 {
            throw SystemError.last("clock_adjtime(ADJ_FREQUENCY)")
        }
    }

    /// The kernel's current frequency correction in ppm (read only).
    public static func frequencyPPM() throws(SystemError) -> Double {
        var ppm = 0.0
        if chv_clock_get_frequency_realtime(&ppm) != 0 { throw SystemError.last("clock_adjtime(read)") }
        return ppm
    }
}

/// A PTP hardware clock (`/dev/ptpN`), read with PTP_SYS_OFFSET.
public enum PTPDevice {
    /// The `ptpN` whose `sys/class/ptp/ptpN/clock_name` is `name` under `deviceRoot`.
    public static func find(clockName name: String, deviceRoot: String) -> String? {
        let root = deviceRoot.hasSuffix("/") ? String(deviceRoot.dropLast()) : deviceRoot
        let dir = root + "/sys/class/ptp"
        guard let entries = try? PathOps.listDirectory(dir) else { return nil }
        for entry in entries.sorted() where entry.hasPrefix("ptp") {
            if let text = try? Sysfs.readAttribute(dir + "/" + entry + "/clock_name"), text == name { return entry }
        }
        return nil
    }

    /// One PTP_SYS_OFFSET request: 2·samples+1 timestamps in ns (system, phc, …, system).
    public static func systemOffsetReadings(path: String, samples: Int) throws(SystemError) -> [Int64] {
        let d = try Descriptor.open(path, flags: O_RDONLY)
        defer { d.close() }
        let n = max(1, min(samples, Int(chv_ptp_max_samples())))
        var out = [Int64](repeating: 0, count: 2 * n + 1)
        if chv_ptp_sys_offset(d.fd, Int32(n), &out) != 0 { throw SystemError.last("PTP_SYS_OFFSET \(path)") }
        return out
    }
}

/// `AF_UNIX` / `SOCK_DGRAM` sending (chrony's SOCK refclock listens on one).
public enum UnixDatagram {
    /// An unbound datagram socket.
    public static func socket() throws(SystemError) -> Descriptor {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw SystemError.last("socket(AF_UNIX, SOCK_DGRAM)") }
        return Descriptor(adopting: fd)
    }

    /// A datagram socket bound at `path` (tests stand in for chronyd with one).
    public static func bind(_ path: String) throws(SystemError) -> Descriptor {
        let sock = try socket()
        var addr = try address(path)
        unlink(path)
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(sock.fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if r < 0 { throw SystemError.last("bind \(path)") }
        return sock
    }

    /// Sends one datagram to the socket at `path` without blocking.
    public static func send(_ bytes: [UInt8], from sock: Descriptor, to path: String) throws(SystemError) {
        var addr = try address(path)
        let n = bytes.withUnsafeBytes { raw in
            withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(sock.fd, raw.baseAddress, raw.count, Int32(MSG_DONTWAIT), $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
        }
        if n < 0 { throw SystemError.last("sendto \(path)") }
        if n != bytes.count { throw SystemError("sendto \(path): short datagram", errno: EMSGSIZE) }
    }

    private static func address(_ path: String) throws(SystemError) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        if bytes.count >= MemoryLayout.size(ofValue: addr.sun_path) {
            throw SystemError("socket path too long: \(path)", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        return addr
    }
}

extension SystemError {
    /// ESTALE: the Hyper-V PTP clock's last host sample is too old (> 600 s).
    public var isStale: Bool { errno == ESTALE }
}
