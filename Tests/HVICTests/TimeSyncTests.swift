import Foundation
import HVEmulator
import HVServiceKit
import HVSystem
import HVTesting
import HVTimeSync
import HVWire
import Testing

@Suite struct TimeSyncChannelTests {
    /// The whole path: the emulated host sends SAMPLEs every 5 s of simulated time with the
    /// simulated host clock; the guest service answers and disciplines a simulated clock.
    @Test(arguments: [(2.0, 30.0, 3), (0.05, -20.0, 25)])
    func convergesOverTheChannel(offset: Double, errorPPM: Double, within: Int) async throws {
        let clock = SimulatedClock(offsetSeconds: offset, frequencyErrorPPM: errorPPM)
        let service = TimeSyncService(configuration: TimeSyncConfiguration(mode: .userspace), clock: clock, logger: silentLogger())
        let rig = try ICRig(makeHost: { try TimeSyncHost(deviceRoot: $0) }, service: service)
        var trace: [Double] = []
        for k in 0..<(within + 10) {
            clock.advance(seconds: 5)
            let outcome = await blocking { rig.host.sendSample(hostTimeNanoseconds: clock.hostNanoseconds) }
            #expect(outcome.status == .ok)
            // The action follows the answer; simulated time stands still until it is applied.
            #expect(await eventually { service.actions.count == k + 1 })
            trace.append(abs(clock.offsetSeconds))
        }
        #expect(trace[(within - 1)...].allSatisfy { $0 < 0.001 }, "trace (µs): \(trace.map { Int($0 * 1e6) })")
        #expect(rig.status[.timesync]?.details["samples"] == String(within + 10))
    }

    @Test func syncStepsAndStaleSamplesAreIgnored() async throws {
        let clock = SimulatedClock(offsetSeconds: 0.01)
        let service = TimeSyncService(
            configuration: TimeSyncConfiguration(mode: .userspace, staleSeconds: 600), clock: clock,
            referenceCounter: { TimeSyncHost.referenceCounter() }, logger: silentLogger())
        let rig = try ICRig(makeHost: { try TimeSyncHost(deviceRoot: $0) }, service: service)
        // SYNC: stepped even though 10 ms is under the step threshold.
        #expect(await blocking { rig.host.sendSample(sync: true, hostTimeNanoseconds: clock.hostNanoseconds) }.status == .ok)
        #expect(await eventually { clock.steps.count == 1 })
        // The guest is 10 ms ahead: stepped back. The v4 latency correction adds the real time the
        // message spent in transit (the simulated host clock stood still), so allow for that.
        let step = Double(try #require(clock.steps.first)) / 1e9
        #expect(step > -0.0101 && step < -0.01 + 0.5)
        // A sample the host took 700 s ago (v4 reference time says so): answered, not used.
        clock.advance(seconds: 5)
        let stale = await blocking {
            rig.host.sendSample(offsetMilliseconds: 300, ageSeconds: 700, hostTimeNanoseconds: clock.hostNanoseconds)
        }
        #expect(stale.status == .ok)
        #expect(await eventually { service.actions.count == 2 })
        guard case .ignore(.stale(let age)) = service.actions.last else {
            Issue.record("expected a stale sample, got \(service.actions)")
            return
        }
        #expect(abs(age - 700) < 1)
        #expect(clock.steps.count == 1)
        // A fresh one 300 ms off is stepped.
        clock.advance(seconds: 5)
        #expect(await blocking { rig.host.sendSample(offsetMilliseconds: 300, hostTimeNanoseconds: clock.hostNanoseconds) }.status == .ok)
        #expect(await eventually { clock.steps.count == 2 })
        #expect(await eventually { rig.status[.timesync]?.details["samples_ignored"] == "1" })
        // A probe is only answered.
        #expect(await blocking { rig.host.probe() }.status == .ok)
        sleepMilliseconds(20)
        #expect(service.actions.count == 3)
    }

    @Test func chronyOutputLeavesTheClockAlone() async throws {
        let dir = try TempDir()
        let socketPath = dir.path + "/chrony.sock"
        let chronyd = try UnixDatagram.bind(socketPath)
        defer { chronyd.close() }
        let clock = SimulatedClock(offsetSeconds: -0.5)
        let config = TimeSyncConfiguration(mode: .userspace, output: .chrony, chronySocket: socketPath)
        let service = TimeSyncService(
            configuration: config, clock: clock, chrony: try ChronySocketWriter(path: socketPath),
            logger: silentLogger())
        let rig = try ICRig(makeHost: { try TimeSyncHost(deviceRoot: $0) }, service: service)
        #expect(await blocking { rig.host.sendSample(hostTimeNanoseconds: clock.hostNanoseconds) }.status == .ok)
        guard case .message(let bytes)? = try await receiveMessage(chronyd) else {
            Issue.record("chronyd got no sample")
            return
        }
        let sample = try #require(ChronySockSample.decode(bytes))
        #expect(abs(sample.offsetSeconds - 0.5) < 0.001)  // true − system: the guest is 0.5 s ahead
        #expect(abs(sample.systemNanoseconds - clock.nowNanoseconds()) < 1_000_000)
        #expect(clock.steps.isEmpty && clock.frequencyPPM == 0)
        #expect(abs(clock.offsetSeconds + 0.5) < 1e-9)
    }
}

@Suite struct ChronyAndPTPTests {
    @Test func sockSampleGoldenBytes() {
        let s = ChronySockSample(systemNanoseconds: 1_700_000_000_123_456_789, offsetSeconds: 0.25, pulse: false, leap: 1)
        let bytes = s.encode()
        #expect(bytes.count == 40)
        #expect(Array(bytes[0..<8]) == [0x00, 0xF1, 0x53, 0x65, 0, 0, 0, 0])  // tv_sec 1700000000
        #expect(Array(bytes[8..<16]) == [0x40, 0xE2, 0x01, 0, 0, 0, 0, 0])  // tv_usec 123456
        #expect(Array(bytes[16..<24]) == [0, 0, 0, 0, 0, 0, 0xD0, 0x3F])  // 0.25 as a double
        #expect(Array(bytes[24..<36]) == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])  // pulse, leap, pad
        #expect(Array(bytes[36..<40]) == [0x4B, 0x43, 0x4F, 0x53])  // "SOCK" magic
        #expect(
            ChronySockSample.decode(bytes)
                == ChronySockSample(
                    systemNanoseconds: 1_700_000_000_123_456_000, offsetSeconds: 0.25, leap: 1))
        // Before the epoch tv_usec stays positive.
        let early = ChronySockSample(systemNanoseconds: -1_500, offsetSeconds: 0).encode()
        // -1 s + 999998 µs
        #expect(Array(early[0..<16]) == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3E, 0x42, 0x0F, 0, 0, 0, 0, 0])
    }

    @Test func ptpOffsetPicksTheNarrowestWindow() {
        // sys, phc, sys, phc, sys, phc, sys
        let readings: [Int64] = [1_000, 6_000, 1_900, 6_500, 2_000, 7_000, 3_000]
        let o = PTPOffset.estimate(readings: readings)
        // Pairs: (1000,6000,1900) delay 900; (1900,6500,2000) delay 100 → mid 1950, offset 4550.
        #expect(o == PTPOffset(offsetNanoseconds: 4_550, delayNanoseconds: 100, systemNanoseconds: 1_950))
        #expect(PTPOffset.estimate(readings: []) == nil)
        #expect(PTPOffset.estimate(readings: [1, 2]) == nil)
        #expect(PTPOffset.estimate(readings: [5, 1, 4]) == nil)  // time ran backwards
        #expect(PTPOffset.estimate(readings: [Int64.min, 0, Int64.max]) == nil)  // no overflow trap
    }

    struct FakePTP: PTPSource {
        let result: Locked<Result<[Int64], SystemError>>
        func readings() throws(SystemError) -> [Int64] { try result.current.get() }
    }

    @Test func ptpMonitorReportsHealthAndCanDiscipline() throws {
        let status = StatusBoard()
        let source = FakePTP(result: Locked(.success([0, 250_000_000, 1_000])))
        let clock = SimulatedClock(offsetSeconds: 0)
        let monitor = try PTPMonitor(
            source: source, configuration: TimeSyncConfiguration(kernelDiscipline: true), clock: clock,
            status: status, logger: silentLogger())
        guard case .ok(let o) = monitor.sampleOnce() else {
            Issue.record("expected ok")
            return
        }
        #expect(o.offsetNanoseconds == 249_999_500)
        #expect(status[.timesync]?.details["offset_ms"] == "250.0")  // rounded to µs
        #expect(status[.timesync]?.state.isHealthy == true)
        #expect(clock.steps == [249_999_500])  // 250 ms > 100 ms threshold: stepped
        source.result.withLock { $0 = .failure(SystemError("PTP_SYS_OFFSET", errno: ESTALE)) }
        #expect(monitor.sampleOnce() == .stale)
        #expect(status[.timesync]?.state.isHealthy == false)
        source.result.withLock { $0 = .failure(SystemError.noSuchFile("ptp")) }
        #expect(monitor.sampleOnce() == .missing)
    }

    @Test func ptpMonitorReportOnlyNeverTouchesTheClock() throws {
        let status = StatusBoard()
        let monitor = try PTPMonitor(
            source: FakePTP(result: Locked(.success([0, 5_000_000_000, 10]))),
            configuration: TimeSyncConfiguration(), clock: nil, status: status, logger: silentLogger())
        #expect(monitor.sampleOnce() != .stale)
        #expect(status[.timesync]?.details["ptp_health"]?.hasPrefix("ok") == true)
    }

    @Test func findsTheHyperVPTPClockInAFakeTree() throws {
        let dir = try TempDir()
        for (n, name) in [(0, "ptp_kvm"), (1, "hyperv")] {
            try makeDirectories(dir.path + "/sys/class/ptp/ptp\(n)")
            try Sysfs.writeFile(dir.path + "/sys/class/ptp/ptp\(n)/clock_name", contents: name + "\n")
        }
        #expect(HyperVPTPSource(deviceRoot: dir.path).deviceName == "ptp1")
        #expect(HyperVPTPSource(deviceRoot: dir.path + "/none").deviceName == nil)
        // The device node is not there: reported as an error, never a trap.
        #expect(throws: SystemError.self) { try HyperVPTPSource(deviceRoot: dir.path).readings() }
    }

    @Test func emulatedRunsNeverGetTheLiveClock() {
        #expect(makeGuestClock(deviceRoot: "/tmp/x", logger: silentLogger()) is DryRunGuestClock)
        #expect(ClockWriteAuthorization.forDeviceRoot("/tmp/x") == nil)
        #expect(ClockWriteAuthorization.forDeviceRoot("//") == nil)
        let dry = DryRunGuestClock(logger: silentLogger())
        let before = RealtimeClock.nowNanoseconds()
        try? dry.step(byNanoseconds: 3_600_000_000_000)
        #expect(dry.steps == [3_600_000_000_000])
        #expect(abs(RealtimeClock.nowNanoseconds() - before) < 60_000_000_000)  // the real clock did not move an hour
    }
}
