import Foundation
import Glibc
import HVDaemon
import HVEmulator
import HVRing
import HVServiceKit
import HVTesting
import HVTransport
import HVWire
import Testing

@testable import HVFileCopy

/// File copy over the VMBus ring specifically: negotiation, UTF-16 decoding, ring wrap-around,
/// and the real `Daemon` choosing its transport.
@Suite(.serialized) struct UIOFileCopyTests {
    @Test func negotiatesFramework30Message11AndRefusesInvalidUTF16() async throws {
        let e = try await EmulatedFileCopy(.uio)
        defer { e.close() }
        let uio = try #require(e.host.fcopy.uio)
        let chosen = try #require(uio.channel.negotiatedVersions)
        #expect(chosen.framework == ICVersion(3, 0))
        #expect(chosen.message == ICVersion(1, 1))

        // START whose file_name holds a lone high surrogate (0xD800): not UTF-16 text.
        var body = try FCopyWireMessage.startCopy(.init(fileName: "ok", pathName: e.destination, flags: [], fileSize: 1)).encode()
        body[36] = 0x00
        body[37] = 0xD8
        #expect(uio.sendBody(body) == .invalidArgument)
        #expect(!e.engine.isActive)
        // Unknown operation → E_FAIL; the channel keeps working.
        var unknown = try FCopyWireMessage.complete.encode()
        unknown[0] = 9
        #expect(uio.sendBody(unknown) == .fail)
        #expect(await e.host.fcopy.copy([1, 2, 3], toDirectory: e.destination, name: "after").state == .completed)
        #expect(e.scratch.read("dest/after") == [1, 2, 3])
    }

    @Test func ringWrapsAtManyOffsetsDuringOneCopy() async throws {
        let scratch = try Scratch()
        try scratch.mkdir("root")
        try scratch.mkdir("dest")
        // Compact WRITEs (52 + size bytes) with sizes that vary: packets of many lengths.
        let host = try FileCopyUIOHost(deviceRoot: scratch.sub("root"), timeout: .seconds(30), compactWrites: true)
        try host.channel.startAcceptingInBackground()
        defer { host.channel.close() }
        let env = testEnvironment(root: scratch.sub("root"))
        let engine = FileCopyEngine(
            configuration: FileCopyConfiguration(allowedRoots: [scratch.sub("dest")], fsync: false), environment: env)
        let runner = try UIOChannelRunner(service: FileCopyUIOService(engine: engine), environment: env, status: StatusBoard(),
                                          settings: UIOChannelRunner.Settings(fastRunnerSettings()))
        try runner.start()
        defer { runner.stop() }
        #expect(await host.waitUntilReady())

        var seed: UInt64 = 0x1234_5678
        let sizes = (0..<257).map { _ -> Int in
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return 1 + Int((seed >> 33) % 6144)
        }
        let data = pseudoRandomBytes(3 * 1_048_576 + 17, seed: 7)

        // Where the WRITE packets split across the end of the ring's data area (from the
        // packets' real footprints): the copy must exercise many distinct split points.
        let dataSize = Int(host.channel.hostToGuest.dataSize)
        var position = 0
        var splits = Set<Int>()
        var offset = 0
        var index = 0
        while offset < data.count {
            let n = min(sizes[index % sizes.count], data.count - offset)
            let footprint = try #require(RingBuffer.footprint(payloadLength: ICMessageHeader.size + 52 + n))
            if position + footprint > dataSize { splits.insert(dataSize - position) }
            position = (position + footprint) % dataSize
            offset += n
            index += 1
        }
        #expect(splits.count > 100, "only \(splits.count) distinct wrap offsets")

        let job = await host.copy(data, toDirectory: scratch.sub("dest"), name: "wrapped", fragmentSizes: sizes)
        #expect(job.state == .completed, "\(job)")
        #expect(scratch.read("dest/wrapped") == data)
    }

    /// The real daemon, in-process, picks the transport the device root offers.
    @Test(arguments: Transport.allCases)
    func daemonCopiesOverEitherTransport(_ transport: Transport) async throws {
        let scratch = try Scratch()
        try scratch.mkdir("root")
        try scratch.mkdir("dest")
        try scratch.write("hvguest.toml", Array("[fcopy]\nallowed_roots = [\"\(scratch.sub("dest"))\"]\nfsync = false\n".utf8))
        let options = DaemonOptions(configFile: scratch.sub("hvguest.toml"), deviceRoot: scratch.sub("root"),
                                    stateDirectory: scratch.sub("root/state"), services: [.fcopy])
        let daemon = Daemon(options: options, configuration: try DaemonConfiguration.load(options), logger: silentLogger())
        daemon.runnerSettings = fastRunnerSettings()
        // The daemon starts first: no device yet, it waits for either transport.
        try daemon.start()
        defer { daemon.stop() }
        #expect(await eventually {
            if case .waitingForDevice? = daemon.status[.fcopy]?.state { return true }
            return false
        })

        let host = try EmulatedHost(root: scratch.sub("root"), devices: [.fcopy], fileCopyTransport: transport)
        try host.start()
        defer { host.stop() }
        #expect(await host.fcopy.waitUntilReady())
        let data = pseudoRandomBytes(6145, seed: 3)
        let job = await host.fcopy.copy(data, toDirectory: scratch.sub("dest"), name: "daemon-\(transport)")
        #expect(job.state == .completed, "\(job)")
        #expect(scratch.read("dest/daemon-\(transport)") == data)
        let status = try #require(daemon.status[.fcopy])
        #expect(status.state.isHealthy, "\(status.state)")
        #expect(status.requests >= 3)
        if transport == .uio { #expect(status.transport?.contains("uio0") == true) }
    }
}

/// Binding an fcopy device to uio_hv_generic, against a fake sysfs tree (never the real /sys).
@Suite struct UIOBindingTests {
    static let instance = "eb765408-105f-49b6-b4aa-c123b64d17d4"

    /// `root/sys/bus/vmbus/{devices/INSTANCE, drivers/...}` with the attribute files the kernel has.
    func makeTree(uioDriverLoaded: Bool = true, boundTo driver: String? = "hv_utils") throws -> Scratch {
        let s = try Scratch()
        let device = "sys/bus/vmbus/devices/\(Self.instance)"
        try s.mkdir(device)
        try s.write(device + "/class_id", Array("{34d14be3-dee4-41c8-9ae7-6b174977c192}\n".utf8))
        try s.write(device + "/driver_override", [])
        if let driver {
            try s.mkdir("sys/bus/vmbus/drivers/\(driver)")
            try s.write("sys/bus/vmbus/drivers/\(driver)/unbind", [])
            try s.symlink(device + "/driver", to: "../../../../bus/vmbus/drivers/\(driver)")
        }
        if uioDriverLoaded {
            try s.mkdir("sys/bus/vmbus/drivers/uio_hv_generic")
            try s.write("sys/bus/vmbus/drivers/uio_hv_generic/bind", [])
        }
        return s
    }

    func text(_ s: Scratch, _ relative: String) -> String? { s.read(relative).map { String(decoding: $0, as: UTF8.self) } }

    /// Plays the kernel: when the instance is written to `bind`, the uio directory appears.
    func simulateKernelBind(_ s: Scratch, uio: String = "uio3") {
        let bind = s.sub("sys/bus/vmbus/drivers/uio_hv_generic/bind")
        let uioDir = s.sub("sys/bus/vmbus/devices/\(Self.instance)/uio/\(uio)")
        Thread.detachNewThread {
            for _ in 0..<500 {
                if let d = FileManager.default.contents(atPath: bind), String(decoding: d, as: UTF8.self) == Self.instance {
                    try? FileManager.default.createDirectory(atPath: uioDir, withIntermediateDirectories: true)
                    return
                }
                usleep(2_000)
            }
        }
    }

    @Test func bindsThroughDriverOverrideUnbindAndBind() throws {
        let s = try makeTree()
        simulateKernelBind(s)
        let binding = try UIOBinding.bind(instance: Self.instance, deviceRoot: s.path, timeoutMilliseconds: 5_000)
        let device = "sys/bus/vmbus/devices/\(Self.instance)"
        #expect(text(s, device + "/driver_override") == "uio_hv_generic\n")
        #expect(text(s, "sys/bus/vmbus/drivers/hv_utils/unbind") == Self.instance)
        #expect(text(s, "sys/bus/vmbus/drivers/uio_hv_generic/bind") == Self.instance)
        #expect(binding.previousDriver == "hv_utils")
        #expect(binding.setOverride)
        #expect(s.names(device + "/uio") == ["uio3"])
        binding.release()
        #expect(text(s, device + "/driver_override") == "\n")
    }

    @Test func anUnclaimedDeviceIsBoundWithoutUnbind() throws {
        let s = try makeTree(boundTo: nil)
        simulateKernelBind(s)
        let binding = try UIOBinding.bind(instance: Self.instance, deviceRoot: s.path, timeoutMilliseconds: 5_000)
        #expect(binding.previousDriver == nil)
        #expect(text(s, "sys/bus/vmbus/drivers/uio_hv_generic/bind") == Self.instance)
    }

    @Test func refusesClearlyWhenTheDriverIsNotLoaded() throws {
        let s = try makeTree(uioDriverLoaded: false)
        #expect(throws: UIOBindingError.driverNotLoaded) {
            try UIOBinding.bind(instance: Self.instance, deviceRoot: s.path)
        }
        #expect(UIOBindingError.driverNotLoaded.description.contains("modprobe uio_hv_generic"))
        // Nothing was written.
        #expect(text(s, "sys/bus/vmbus/devices/\(Self.instance)/driver_override") == "")
        #expect(text(s, "sys/bus/vmbus/drivers/hv_utils/unbind") == "")
    }

    @Test func aBindWithoutUIODirectoryTimesOutAndClearsTheOverride() throws {
        let s = try makeTree(boundTo: nil)
        #expect(throws: UIOBindingError.uioDidNotAppear(instance: Self.instance)) {
            try UIOBinding.bind(instance: Self.instance, deviceRoot: s.path, timeoutMilliseconds: 50)
        }
        #expect(text(s, "sys/bus/vmbus/devices/\(Self.instance)/driver_override") == "\n")
    }

    @Test func theRunnerReportsAMissingDriverAndKeepsWaiting() async throws {
        let s = try makeTree(uioDriverLoaded: false)
        let status = StatusBoard()
        let engine = FileCopyEngine(configuration: FileCopyConfiguration(allowedRoots: [s.path]), isEmulated: true,
                                    logger: silentLogger())
        let runner = try UIOChannelRunner(service: FileCopyUIOService(engine: engine), environment: testEnvironment(root: s.path),
                                          status: status, settings: UIOChannelRunner.Settings(fastRunnerSettings()))
        try runner.start()
        defer { runner.stop() }
        #expect(await eventually {
            if case .error(let why)? = status[.fcopy]?.state { return why.contains("modprobe uio_hv_generic") }
            return false
        })
    }
}
