import Glibc
import HVDaemon
import HVEmulator
import HVServiceKit
import HVSystem
import HVTesting
import HVWire
import Testing

/// A configurable VSS-shaped relay service for channel tests: registers like the real one and
/// answers after an optional delay.
final class ScriptedVSSService: RelayService, @unchecked Sendable {
    let name = ServiceName.vss
    let devicePath = "dev/vmbus/hv_vss"
    let receiveCapacity = 64
    let delayMilliseconds = Locked(0)
    let resets = Locked<[String]>([])
    let handled = Locked(0)
    var answer: HResult = .ok

    func registrationMessage() -> [UInt8] { VSSRegistration.message() }
    func registrationCompleted(reply: [UInt8]) throws -> String { "v\(try VSSRegistration.decodeReply(reply))" }
    func handle(request: [UInt8]) -> RelayReply {
        let d = delayMilliseconds.current
        if d > 0 { sleepMilliseconds(d) }
        handled.withLock { $0 += 1 }
        return RelayReply(bytes: VSSReply(status: answer).encode(), operation: "OP", status: answer)
    }
    func channelReset(reason: String) { resets.withLock { $0.append(reason) } }
}

/// Kernel timeouts short enough that a test can never hang on a 900 s FREEZE, long enough
/// for a very loaded machine.
let boundedTimeouts = KernelTimeouts(request: .seconds(20), freeze: .seconds(20))

@Suite("Relay channels through the emulator")
struct ChannelTests {
    @Test("registers, answers, and re-registers after the daemon side restarts")
    func registerAndReregister() async throws {
        let dir = try TempDir()
        let host = try EmulatedHost(root: dir.path, devices: [.vss], timeouts: boundedTimeouts)
        try host.start()
        defer { host.stop() }
        let service = ScriptedVSSService()
        let status = StatusBoard()
        let runner = try RelayChannelRunner(service: service, environment: testEnvironment(root: dir.path), status: status,
                                            settings: fastRunnerSettings())
        try runner.start()
        #expect(await host.vss.device.waitForRegistration(count: 1, timeout: .seconds(30)))
        #expect(await host.vss.freeze() == .ok)
        #expect(status[.vss]?.state == .registered(version: "v129"))
        #expect(status[.vss]?.requests == 1)

        runner.stop()
        #expect(await host.vss.device.waitForDisconnect(timeout: .seconds(30)))
        #expect(service.resets.current.last == "daemon stopping")
        // With no daemon the kernel fails FREEZE itself; kernel-handled ops still succeed.
        #expect(await host.vss.freeze() == .fail)
        #expect(await host.vss.request(.getDMInfo) == .ok)

        let again = try RelayChannelRunner(service: service, environment: testEnvironment(root: dir.path), status: status,
                                           settings: fastRunnerSettings())
        try again.start()
        defer { again.stop() }
        #expect(await host.vss.device.waitForRegistration(count: 2, timeout: .seconds(30)))
        #expect(await host.vss.thaw() == .ok)
        #expect(host.events.contains(.disconnected(.vss, failedPending: nil)))
    }

    @Test("a reply after the kernel's timeout fails the request and the daemon re-registers")
    func lateReply() async throws {
        let dir = try TempDir()
        let host = try EmulatedHost(root: dir.path, devices: [.vss], timeouts: KernelTimeouts(request: .milliseconds(100), freeze: .milliseconds(100)))
        try host.start()
        defer { host.stop() }
        let service = ScriptedVSSService()
        let runner = try RelayChannelRunner(service: service, environment: testEnvironment(root: dir.path), status: StatusBoard(),
                                            settings: fastRunnerSettings())
        try runner.start()
        defer { runner.stop() }
        #expect(await host.vss.device.waitForRegistration(count: 1, timeout: .seconds(30)))
        service.delayMilliseconds.withLock { $0 = 400 }
        #expect(await host.vss.freeze() == .fail)  // the kernel gave up after 100 ms
        // The late reply is a violation; the channel is reset and the daemon registers again.
        #expect(await host.vss.device.waitForRegistration(count: 2, timeout: .seconds(30)))
        #expect(host.vss.device.violations.contains { $0.contains("no request in flight") })
        #expect(service.resets.current.contains { $0.contains("closed") })
    }

    @Test("a second opener is refused while the first holds the device")
    func singleOpener() async throws {
        let dir = try TempDir()
        let host = try EmulatedHost(root: dir.path, devices: [.vss], timeouts: boundedTimeouts)
        try host.start()
        defer { host.stop() }
        let first = try SeqPacket.connect(dir.path + "/dev/vmbus/hv_vss")
        #expect(await eventually { host.vss.device.isConnected })
        let second = try SeqPacket.connect(dir.path + "/dev/vmbus/hv_vss")
        // The emulator hangs up on the second opener at once.
        #expect(try await receiveMessage(second, capacity: 16) == .closed)
        #expect(await eventually { host.events.contains(.rejectedSecondOpener(.vss)) })
        first.close()
    }

    @Test("the daemon waits for a missing device and registers within a second of it appearing")
    func lateDevice() async throws {
        let dir = try TempDir()
        let service = ScriptedVSSService()
        let status = StatusBoard()
        var settings = fastRunnerSettings()
        settings.devicePollMilliseconds = 500  // the production value
        let runner = try RelayChannelRunner(service: service, environment: testEnvironment(root: dir.path), status: status,
                                            settings: settings)
        try runner.start()
        defer { runner.stop() }
        #expect(await eventually { if case .waitingForDevice = status[.vss]?.state { return true } else { return false } })
        try await Task.sleep(for: .milliseconds(300))
        let host = try EmulatedHost(root: dir.path, devices: [.vss], timeouts: boundedTimeouts)
        try host.start()
        defer { host.stop() }
        #expect(await host.vss.device.waitForRegistration(timeout: .seconds(30)))
    }

    /// Reconnection latency is one device poll plus registration. Wall-clock bounds belong to
    /// benchmarks (a loaded CI machine stretches any timing); the unit test pins the setting
    /// that bounds it.
    @Test("a missing device is re-checked at least twice a second, with no back-off growth")
    func devicePollInterval() {
        let s = RelayChannelRunner.Settings()
        #expect(s.devicePollMilliseconds <= 500)
        #expect(s.initialBackoffMilliseconds <= 100)
    }

    @Test("the emulator restarting: the daemon reconnects within a second")
    func emulatorRestart() async throws {
        let dir = try TempDir()
        let service = ScriptedVSSService()
        var settings = fastRunnerSettings()
        settings.devicePollMilliseconds = 500
        settings.initialBackoffMilliseconds = 100
        let runner = try RelayChannelRunner(service: service, environment: testEnvironment(root: dir.path), status: StatusBoard(),
                                            settings: settings)
        try runner.start()
        defer { runner.stop() }
        let host1 = try EmulatedHost(root: dir.path, devices: [.vss], timeouts: boundedTimeouts)
        try host1.start()
        #expect(await host1.vss.device.waitForRegistration(timeout: .seconds(30)))
        host1.stop()
        let host2 = try EmulatedHost(root: dir.path, devices: [.vss], timeouts: boundedTimeouts)
        try host2.start()
        defer { host2.stop() }
        #expect(await host2.vss.device.waitForRegistration(timeout: .seconds(30)))
        #expect(await host2.vss.freeze() == .ok)
    }

    @Test("a request pending when the daemon disconnects fails with E_FAIL")
    func disconnectWhilePending() async throws {
        let dir = try TempDir()
        let host = try EmulatedHost(root: dir.path, devices: [.vss], timeouts: boundedTimeouts)
        try host.start()
        defer { host.stop() }
        // A hand-driven daemon: register, read the request, then hang up without answering.
        let conn = try SeqPacket.connect(dir.path + "/dev/vmbus/hv_vss")
        try conn.send(VSSRegistration.message())
        #expect(try await receiveMessage(conn, capacity: 64) == .message(VSSRegistration.reply()))
        async let result = host.vss.freeze()
        guard case .message(let req)? = try await receiveMessage(conn, capacity: 64) else {
            Issue.record("no request")
            return
        }
        #expect(try VSSRequest.decode(req).operation == .freeze)
        conn.close()
        #expect(await result == .fail)
        #expect(await eventually { host.events.contains(.disconnected(.vss, failedPending: "FREEZE")) })
    }

    @Test("wrong reply sizes and bad registrations are refused as the kernel does")
    func kernelRules() async throws {
        let dir = try TempDir()
        let host = try EmulatedHost(root: dir.path, devices: [.kvp, .fcopy], timeouts: boundedTimeouts)
        try host.start()
        defer { host.stop() }
        // KVP registration shorter than hv_kvp_msg → EINVAL (connection reset).
        let k = try SeqPacket.connect(dir.path + "/dev/vmbus/hv_kvp")
        try k.send([100, 0, 0, 0])
        #expect(try await receiveMessage(k, capacity: 8000) == .closed)
        #expect(host.kvp.device.violations.count == 1)

        // fcopy: register properly, then answer a START with 8 bytes instead of 4.
        let f = try SeqPacket.connect(dir.path + "/dev/vmbus/hv_fcopy")
        try f.send(FCopyRegistration.message())
        #expect(try await receiveMessage(f, capacity: 64) == .message(FCopyRegistration.reply()))
        async let st = host.fcopy.send(.complete, "COMPLETE_FCOPY")
        #expect(try await receiveMessage(f, capacity: 8000) != nil)
        try f.send([0, 0, 0, 0, 0, 0, 0, 0])
        #expect(await st == .fail)
        #expect(await eventually { host.fcopy.device.violations.contains { $0.contains("exactly 4") } })
    }
}
