import Foundation
import HVSystem
import Testing

@testable import HVDaemon

/// A datagram socket standing in for systemd's notification socket.
private final class FakeNotifySocket {
    let path: String
    let fd: Int32

    init() throws {
        path = NSTemporaryDirectory() + "hvguest-notify-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError.last("socket") }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard r == 0 else { throw SystemError.last("bind \(path)") }
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// The next datagram, or nil after `timeoutMilliseconds`.
    func receive(timeoutMilliseconds: Int32 = 2000) throws -> String? {
        let ready = try poll([(fd, .readable)], timeoutMilliseconds: timeoutMilliseconds)
        guard ready.first?.contains(.readable) == true else { return nil }
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buf, buf.count, 0)
        guard n >= 0 else { throw SystemError.last("recv") }
        return String(decoding: buf[..<n], as: UTF8.self)
    }
}

/// Sets environment variables for the duration of `body` and restores them afterwards.
private func withEnvironment<T>(_ values: [String: String?], _ body: () throws -> T) rethrows -> T {
    let saved = values.keys.map { ($0, getenv($0).map { String(cString: $0) }) }
    for (k, v) in values {
        if let v { setenv(k, v, 1) } else { unsetenv(k) }
    }
    defer {
        for (k, v) in saved {
            if let v { setenv(k, v, 1) } else { unsetenv(k) }
        }
    }
    return try body()
}

/// These tests change the process environment (NOTIFY_SOCKET, WATCHDOG_*), so they run one at
/// a time and restore it; nothing else in the test process reads those variables.
@Suite(.serialized) struct SystemdNotifyTests {
    @Test func readyAndStatusReachTheSocket() throws {
        let socket = try FakeNotifySocket()
        try withEnvironment(["NOTIFY_SOCKET": socket.path]) {
            #expect(SystemdNotify.isEnabled)
            try SystemdNotify.ready(status: "serving kvp, vss")
            #expect(try socket.receive() == "READY=1\nSTATUS=serving kvp, vss")
            try SystemdNotify.status("vss: frozen\n2 filesystems")
            #expect(try socket.receive() == "STATUS=vss: frozen 2 filesystems")
            try SystemdNotify.watchdog()
            #expect(try socket.receive() == "WATCHDOG=1")
            try SystemdNotify.stopping(status: "SIGTERM")
            #expect(try socket.receive() == "STOPPING=1\nSTATUS=SIGTERM")
        }
    }

    @Test func withoutNotifySocketEverythingIsANoOp() throws {
        let socket = try FakeNotifySocket()
        try withEnvironment(["NOTIFY_SOCKET": nil, "WATCHDOG_USEC": nil, "WATCHDOG_PID": nil]) {
            #expect(!SystemdNotify.isEnabled)
            try SystemdNotify.ready(status: "x")
            try SystemdNotify.watchdog()
            #expect(SystemdNotify.watchdogInterval == nil)
            #expect(try socket.receive(timeoutMilliseconds: 50) == nil)
        }
    }

    @Test func watchdogIntervalFollowsSystemdVariables() {
        withEnvironment(["WATCHDOG_USEC": "3000000", "WATCHDOG_PID": String(getpid())]) {
            #expect(SystemdNotify.watchdogInterval == .seconds(3))
        }
        withEnvironment(["WATCHDOG_USEC": "3000000", "WATCHDOG_PID": String(getpid() &+ 1)]) {
            #expect(SystemdNotify.watchdogInterval == nil)  // meant for another process
        }
        withEnvironment(["WATCHDOG_USEC": nil, "WATCHDOG_PID": nil]) {
            #expect(SystemdNotify.watchdogInterval == nil)
        }
    }

    @Test func pingerSendsWatchdogToSystemd() throws {
        let socket = try FakeNotifySocket()
        try withEnvironment(["NOTIFY_SOCKET": socket.path, "WATCHDOG_USEC": "100000", "WATCHDOG_PID": String(getpid())]) {
            var settings = DaemonSettings()
            let pinger = try #require(try WatchdogPinger.startIfRequested(settings: settings, isAlive: { true }))
            #expect(pinger.period == .milliseconds(50))
            #expect(try socket.receive() == "WATCHDOG=1")
            #expect(try socket.receive() == "WATCHDOG=1")
            pinger.stop()

            settings.watchdog = false
            #expect(try WatchdogPinger.startIfRequested(settings: settings, isAlive: { true }) == nil)
        }
    }
}

@Suite struct WatchdogPingerTests {
    @Test func pingsAtHalfTheIntervalWhileAlive() throws {
        let pings = Locked<[UInt64]>([])
        let pinger = try WatchdogPinger(interval: .milliseconds(80), isAlive: { true }, ping: { pings.withLock { $0.append(monotonicNanoseconds()) } })
        sleepMilliseconds(230)
        pinger.stop()
        let times = pings.current
        // Pings at about 0, 40, 80, … 200 ms; allow for a slow, shared machine.
        #expect(times.count >= 3 && times.count <= 7, "\(times.count) pings")
        for (a, b) in zip(times, times.dropFirst()) {
            #expect(b - a >= 35_000_000, "pings \((b - a) / 1_000_000) ms apart")
        }
    }

    @Test func stopsPingingWhenNotAliveAndStopsPromptly() throws {
        let alive = Locked(true)
        let count = Locked(0)
        let pinger = try WatchdogPinger(interval: .milliseconds(40), isAlive: { alive.current }, ping: { count.withLock { $0 += 1 } })
        sleepMilliseconds(70)
        alive.withLock { $0 = false }
        sleepMilliseconds(30)  // let a ping in progress finish
        let before = count.current
        #expect(before >= 1)
        sleepMilliseconds(100)
        #expect(count.current == before)

        // stop() wakes the thread through the eventfd instead of waiting for the period.
        let slow = try WatchdogPinger(interval: .seconds(20), isAlive: { true }, ping: {})
        let start = monotonicNanoseconds()
        slow.stop()
        slow.stop()  // idempotent
        #expect(monotonicNanoseconds() - start < 1_000_000_000)
        pinger.stop()
    }
}
