import HVEmulator
import HVHeartbeat
import HVServiceKit
import HVShutdown
import HVTesting
import HVTimeSync
import HVWire
import Testing

func shutdownService(
    _ dir: String, executor: any PowerExecutor = RecordingPowerExecutor(),
    inhibitors: [Inhibitor]? = [], canHibernate: Bool = true
) -> ShutdownService {
    ShutdownService(
        hooks: ShutdownHooks(directory: dir + "/etc/shutdown.d", timeoutSeconds: 2), executor: executor,
        inhibitorCheck: FixedInhibitorCheck(inhibitors), hibernationSupported: { canHibernate }, logger: silentLogger())
}

@Suite struct ICChannelNegotiationTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var kind: ICKind
        var framework: [ICVersion]
        var message: [ICVersion]
        /// nil: the guest must refuse (no common version).
        var expected: (ICVersion, ICVersion)?
        var testDescription: String { "\(kind) offering \(framework)/\(message)" }
    }

    static let cases: [Case] = [
        // What Hyper-V offers today, and what older hosts offer.
        Case(
            kind: .shutdown, framework: [ICVersion(3, 0), ICVersion(1, 0)],
            message: [ICVersion(3, 2), ICVersion(3, 1), ICVersion(3, 0), ICVersion(1, 0)], expected: (ICVersion(3, 0), ICVersion(3, 2))),
        Case(
            kind: .shutdown, framework: [ICVersion(3, 0)], message: [ICVersion(3, 0), ICVersion(3, 1)],
            expected: (ICVersion(3, 0), ICVersion(3, 1))),
        Case(kind: .shutdown, framework: [ICVersion(1, 0)], message: [ICVersion(1, 0)], expected: (ICVersion(1, 0), ICVersion(1, 0))),
        Case(kind: .shutdown, framework: [ICVersion(3, 0)], message: [ICVersion(2, 0)], expected: nil),
        Case(
            kind: .timesync, framework: [ICVersion(3, 0), ICVersion(1, 0)], message: [ICVersion(4, 0), ICVersion(3, 0), ICVersion(1, 0)],
            expected: (ICVersion(3, 0), ICVersion(4, 0))),
        Case(kind: .timesync, framework: [ICVersion(3, 0)], message: [ICVersion(3, 0)], expected: (ICVersion(3, 0), ICVersion(3, 0))),
        Case(kind: .timesync, framework: [ICVersion(1, 0)], message: [ICVersion(1, 0)], expected: (ICVersion(1, 0), ICVersion(1, 0))),
        Case(kind: .timesync, framework: [ICVersion(2, 0)], message: [ICVersion(4, 0)], expected: nil),
        Case(
            kind: .heartbeat, framework: [ICVersion(3, 0), ICVersion(1, 0)], message: [ICVersion(3, 0), ICVersion(1, 0)],
            expected: (ICVersion(3, 0), ICVersion(3, 0))),
        Case(kind: .heartbeat, framework: [ICVersion(1, 0)], message: [ICVersion(1, 0)], expected: (ICVersion(1, 0), ICVersion(1, 0))),
        Case(kind: .heartbeat, framework: [ICVersion(3, 0)], message: [ICVersion(3, 1)], expected: nil),
    ]

    @Test(arguments: cases)
    func negotiatesWithEachOfferedList(_ c: Case) async throws {
        let dir = try TempDir("hvguest-neg-")
        let offered = ICServiceVersions(framework: c.framework, message: c.message)
        let host: ICHost
        let service: any ICService
        switch c.kind {
        case .shutdown:
            var config = UIOHost.Configuration.shutdown()
            config.offeredVersions = offered
            host = try ShutdownHost(deviceRoot: dir.path, configuration: config)
            service = shutdownService(dir.path)
        case .timesync:
            var config = UIOHost.Configuration.timeSync()
            config.offeredVersions = offered
            host = try TimeSyncHost(deviceRoot: dir.path, configuration: config)
            service = TimeSyncService(
                configuration: TimeSyncConfiguration(), clock: SimulatedClock(offsetSeconds: 0), logger: silentLogger())
        case .heartbeat:
            var config = UIOHost.Configuration.heartbeat()
            config.offeredVersions = offered
            host = try HeartbeatHost(deviceRoot: dir.path, configuration: config)
            service = HeartbeatService()
        }
        defer { host.uio.close() }
        let status = StatusBoard()
        let runner = try ICChannelRunner(
            service: service, environment: testEnvironment(root: dir.path), status: status,
            settings: fastICSettings())
        try runner.start()
        defer { runner.stop() }
        #expect(host.componentStatus == .noContact)
        let result = await blocking { () -> Result<ICVersion, UIOHostError> in
            do throws(UIOHostError) { return .success(try host.ensureNegotiated(timeoutMilliseconds: 20_000)) } catch {
                return .failure(error)
            }
        }
        if let (framework, message) = c.expected {
            #expect(try result.get() == message)
            #expect(host.uio.negotiatedVersions?.framework == framework)
            #expect(
                await eventually {
                    status[ServiceName(rawValue: c.kind.rawValue) ?? .heartbeat]?.state
                        == .registered(version: "framework \(framework), message \(message)")
                })
        } else {
            #expect(result == .failure(.negotiationFailed(status: .fail)))
            #expect(host.uio.negotiatedVersions == nil)
        }
    }

    /// Version 4 brings the reference-time message; older versions the 25-byte one. Both work.
    @Test(arguments: [ICVersion(4, 0), ICVersion(3, 0), ICVersion(1, 0)])
    func timeSyncUsesTheNegotiatedMessageFormat(_ version: ICVersion) async throws {
        var config = UIOHost.Configuration.timeSync()
        config.offeredVersions = ICServiceVersions(framework: [ICVersion(3, 0)], message: [version])
        let clock = SimulatedClock(offsetSeconds: -0.02)
        let service = TimeSyncService(configuration: TimeSyncConfiguration(mode: .userspace), clock: clock, logger: silentLogger())
        let rig = try ICRig(makeHost: { try TimeSyncHost(deviceRoot: $0, configuration: config) }, service: service)
        let outcome = await blocking { rig.host.sendSample(hostTimeNanoseconds: clock.hostNanoseconds) }
        #expect(outcome.status == .ok)
        guard case .answered(_, let payload) = outcome else { return }
        let header = try ICMessageHeader.decode(from: payload)
        #expect(header.messageVersion == version)
        #expect(header.flags == [.transaction, .response])
        #expect(await eventually { service.actions.count == 1 })
        guard case .slew(let offset, _) = service.actions.first else {
            Issue.record("expected a slew, got \(service.actions)")
            return
        }
        #expect(abs(offset - 0.02) < 0.001)
    }
}
