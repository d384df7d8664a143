import Glibc
import HVSystem

/// The daemon being measured: started with posix_spawn (CPU pinning is inherited from
/// `taskset` around hvguest-bench), watched through /proc, stopped by PID.
final class DaemonUnderTest: @unchecked Sendable {
    let child: ChildProcess
    let spawnedAt: UInt64
    private let notifySocket: Int32
    private let notifyPath: String
    private let stopGraceMilliseconds: Int

    init(_ o: BenchOptions) throws {
        guard let executable = o.command.first else { throw BenchError("no daemon command after --") }
        var env = currentEnvironment().filter { !$0.hasPrefix("NOTIFY_SOCKET=") && !$0.hasPrefix("LD_PRELOAD=") }
        env.append("HVBENCH_ROOT=\(o.root)")
        if let preload = o.preload { env.append("LD_PRELOAD=\(preload)") }
        notifyPath = o.root + "/notify.sock"
        stopGraceMilliseconds = o.stopGraceMilliseconds
        if o.notify {
            notifySocket = try bindDatagramSocket(notifyPath)
            env.append("NOTIFY_SOCKET=\(notifyPath)")
        } else {
            notifySocket = -1
        }
        spawnedAt = monotonicNanoseconds()
        child = try ChildProcess(executable: executable, arguments: Array(o.command.dropFirst()), environment: env,
                                 outputFile: o.root + "/\(o.label)-\(o.scenario).log")
    }

    var pid: pid_t { child.pid }
    var isRunning: Bool { child.isRunning }

    /// Waits for `READY=1` on the notify socket; returns when it arrived (nil: not asked or timed out).
    func waitForReady(timeoutMilliseconds: Int) -> UInt64? {
        guard notifySocket >= 0 else { return nil }
        let end = monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        var buf = [UInt8](repeating: 0, count: 4096)
        while monotonicNanoseconds() < end {
            var p = pollfd(fd: notifySocket, events: Int16(POLLIN), revents: 0)
            guard Glibc.poll(&p, 1, 100) > 0 else { continue }
            let n = recv(notifySocket, &buf, buf.count, 0)
            guard n > 0 else { continue }
            let at = monotonicNanoseconds()
            let text = String(decoding: buf[0..<n], as: UTF8.self)
            if text.split(separator: "\n").contains("READY=1") { return at }
        }
        return nil
    }

    /// (VmRSS, VmHWM) in KiB.
    func memoryKiB() -> (rss: Int, peak: Int) {
        guard let bytes = try? readFile("/proc/\(pid)/status") else { return (0, 0) }
        var rss = 0
        var hwm = 0
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, let v = Int(fields[1]) else { continue }
            if fields[0] == "VmRSS:" { rss = v }
            if fields[0] == "VmHWM:" { hwm = v }
        }
        return (rss, hwm)
    }

    /// CPU time of every thread so far, in nanoseconds (schedstat: precise, unlike clock ticks).
    func cpuNanoseconds() -> UInt64 {
        guard let tasks = try? PathOps.listDirectory("/proc/\(pid)/task") else { return 0 }
        var total: UInt64 = 0
        for t in tasks {
            guard let b = try? readFile("/proc/\(pid)/task/\(t)/schedstat"),
                let first = String(decoding: b, as: UTF8.self).split(separator: " ").first,
                let ns = UInt64(first)
            else { continue }
            total &+= ns
        }
        return total
    }

    func stop() {
        child.terminate(graceMilliseconds: stopGraceMilliseconds)
        if notifySocket >= 0 {
            close(notifySocket)
            unlink(notifyPath)
        }
    }
}

func currentEnvironment() -> [String] {
    var out: [String] = []
    var p = environ
    while let s = p.pointee {
        out.append(String(cString: s))
        p += 1
    }
    return out
}

/// A datagram socket standing in for systemd's notify socket.
func bindDatagramSocket(_ path: String) throws -> Int32 {
    unlink(path)
    let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { throw BenchError("socket: errno \(errno)") }
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw BenchError("notify socket path too long") }
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
        for (i, b) in bytes.enumerated() { raw[i] = b }
    }
    let r = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard r == 0 else { throw BenchError("bind \(path): errno \(errno)") }
    return fd
}
