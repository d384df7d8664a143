import Foundation
import Glibc
import HVEmulator
import HVServiceKit
import HVTesting
import HVWire
import Testing

@testable import HVFileCopy

typealias Transport = EmulatedHost.FileCopyTransport

/// The emulated host and kernel with file copy on either transport — the seqpacket
/// `dev/vmbus/hv_fcopy` relay or the VMBus ring at `dev/uio0` — and the real service behind
/// the runner hvguestd uses for it (`RelayChannelRunner` + `FileCopyService`, or
/// `UIOChannelRunner` + `FileCopyUIOService`).
final class EmulatedFileCopy {
    let scratch: Scratch
    let host: EmulatedHost
    let runner: any ServiceRunner
    let engine: FileCopyEngine
    let destination: String
    let transport: Transport

    init(_ transport: Transport, allowedRoots: [String]? = nil) async throws {
        self.transport = transport
        scratch = try Scratch()
        try scratch.mkdir("root")
        try scratch.mkdir("dest")
        destination = scratch.sub("dest")
        host = try EmulatedHost(root: scratch.sub("root"), devices: [.fcopy], fileCopyTransport: transport)
        try host.start()
        let recorder = LogRecorder()
        let environment = ServiceEnvironment(
            deviceRoot: scratch.sub("root"), stateDirectory: scratch.sub("root/state"),
            runtimeDirectory: scratch.sub("root/run"), configDirectory: scratch.sub("root/etc"), logger: recorder.logger)
        #expect(environment.isEmulated)
        engine = FileCopyEngine(
            configuration: FileCopyConfiguration(allowedRoots: allowedRoots ?? [destination]), environment: environment)
        switch transport {
        case .relay:
            runner = try RelayChannelRunner(service: FileCopyService(engine: engine), environment: environment,
                                            status: StatusBoard(), settings: fastRunnerSettings())
        case .uio:
            runner = try UIOChannelRunner(service: FileCopyUIOService(engine: engine), environment: environment,
                                          status: StatusBoard(), settings: UIOChannelRunner.Settings(fastRunnerSettings()))
        }
        try runner.start()
        let ready = await host.fcopy.waitUntilReady()
        #expect(ready)
    }

    func close() {
        runner.stop()
        host.stop()
        if transport == .relay { #expect(host.fcopy.device.violations == []) }
    }
}

@Suite(.serialized) struct EmulatorTests {
    @Test(arguments: Transport.allCases)
    func copiesAreByteIdentical(_ transport: Transport) async throws {
        let e = try await EmulatedFileCopy(transport)
        defer { e.close() }
        for size in [0, 1, 6143, 6144, 6145, 100 * 1_048_576] {
            let data = pseudoRandomBytes(size, seed: UInt64(size) &+ 99)
            let job = await e.host.fcopy.copy(data, toDirectory: e.destination, name: "f\(size)")
            #expect(job.state == .completed, "\(size): \(job)")
            #expect(e.scratch.read("dest/f\(size)") == data, "\(size)")
        }
        #expect(e.scratch.names("dest").count == 6)
    }

    @Test(arguments: Transport.allCases)
    func flagsUnicodeAndRefusals(_ transport: Transport) async throws {
        let e = try await EmulatedFileCopy(transport)
        defer { e.close() }
        let fcopy = e.host.fcopy
        #expect(await fcopy.copy([1], toDirectory: e.destination, name: "x").state == .completed)
        let again = await fcopy.copy([2], toDirectory: e.destination, name: "x")
        #expect(again.state == .exception)
        #expect(again.errorCode == .alreadyExists)
        #expect(e.scratch.read("dest/x") == [1])
        #expect(await fcopy.copy([3], toDirectory: e.destination, name: "x", overwrite: true).state == .completed)
        #expect(e.scratch.read("dest/x") == [3])

        let missing = await fcopy.copy([1], toDirectory: e.destination + "/a/b", name: "y")
        #expect(missing.errorCode == .fail)
        #expect(!FileManager.default.fileExists(atPath: e.scratch.sub("dest/a")))
        #expect(await fcopy.copy([4], toDirectory: e.destination + "/a/b", name: "y", createFullPath: true).state == .completed)
        #expect(e.scratch.read("dest/a/b/y") == [4])

        let unicode = "数据 🚀 ✓.bin"
        #expect(await fcopy.copy([5, 6], toDirectory: e.destination + "/目录", name: unicode, createFullPath: true).state == .completed)
        #expect(e.scratch.read("dest/目录/" + unicode) == [5, 6])
        let emoji = "👩‍💻🎉"
        #expect(await fcopy.copy([7], toDirectory: e.destination + "/" + emoji, name: emoji, createFullPath: true).state == .completed)
        #expect(e.scratch.read("dest/\(emoji)/\(emoji)") == [7])

        try e.scratch.symlink("dest/link", to: e.scratch.sub("root"))
        #expect(await fcopy.copy([1], toDirectory: e.destination + "/link", name: "z").errorCode == .fail)
        #expect(await fcopy.copy([1], toDirectory: e.destination + "/../root", name: "z").errorCode == .invalidArgument)
        #expect(await fcopy.copy([1], toDirectory: e.destination, name: "../z").errorCode == .invalidArgument)
        #expect(await fcopy.copy([1], toDirectory: e.scratch.sub("root"), name: "z").errorCode == .fail)  // not allowed
        #expect(!FileManager.default.fileExists(atPath: e.scratch.sub("root/z")))
        #expect(!FileManager.default.fileExists(atPath: e.scratch.sub("z")))

        let past = await fcopy.copy(pseudoRandomBytes(10_000), toDirectory: e.destination, name: "past", fault: .offsetPastEnd)
        #expect(past.errorCode == .invalidArgument)
        let oversized = await fcopy.copy(pseudoRandomBytes(10_000), toDirectory: e.destination, name: "big", fault: .oversizedFragment)
        #expect(oversized.errorCode == .invalidArgument)
        #expect(oversized.failedStep == "WRITE_TO_FILE at 0")
        #expect(!e.scratch.names("dest").contains("past"))
        #expect(!e.scratch.names("dest").contains("big"))
        #expect(e.scratch.names("dest").allSatisfy { !FileCopyEngine.isTemporaryName($0) })
        #expect(!e.engine.isActive)
    }

    @Test(arguments: Transport.allCases)
    func cancelAndDisconnectLeaveNothing(_ transport: Transport) async throws {
        let e = try await EmulatedFileCopy(transport)
        defer { e.close() }
        let data = pseudoRandomBytes(200_000)
        let cancelled = await e.host.fcopy.copy(data, toDirectory: e.destination, name: "c", fault: .cancelAfter(fragments: 5))
        #expect(cancelled.state == .exception)
        #expect(e.scratch.names("dest") == [])
        #expect(!e.engine.isActive)

        let dropped = await e.host.fcopy.copy(data, toDirectory: e.destination, name: "d", fault: .disconnectAfter(fragments: 5))
        #expect(dropped.state == .exception)
        // The runner resets the service (removing the temporary file), then reconnects.
        #expect(await e.host.fcopy.waitUntilReady(count: 2))
        #expect(await eventually { !e.engine.isActive })
        #expect(e.scratch.names("dest") == [])
        // And the next copy works.
        #expect(await e.host.fcopy.copy(data, toDirectory: e.destination, name: "d").state == .completed)
        #expect(e.scratch.read("dest/d") == data)
    }

    @Test(.enabled(if: getuid() == 0, "needs root: tmpfs mount"), arguments: Transport.allCases)
    func diskFull(_ transport: Transport) async throws {
        let e = try await EmulatedFileCopy(transport)
        try e.scratch.mkdir("dest/small")
        #expect(try run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "hvguest-fcopy-test", e.scratch.sub("dest/small")]) == 0)
        // Stop the daemon side first (it may still hold a descriptor below the mount), then
        // unmount: a mount left behind was seen once when the unmount ran first.
        defer {
            e.close()
            unmountTestMount(e.scratch.sub("dest/small"))
        }
        let job = await e.host.fcopy.copy(pseudoRandomBytes(2 * 1_048_576), toDirectory: e.destination + "/small", name: "big")
        #expect(job.errorCode == .diskFull, "\(job)")
        #expect(job.errorCode.rawValue == 0x8007_0070)
        #expect(e.scratch.names("dest/small") == [])
    }
}
