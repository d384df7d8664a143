import Foundation
import Glibc
import HVEmulator
import HVServiceKit
import HVWire
import Testing

@testable import HVFileCopy

/// The emulated host and kernel on a seqpacket `dev/vmbus/hv_fcopy`, and the real
/// `FileCopyService` behind a `RelayChannelRunner`, as hvguestd runs it.
final class EmulatedFileCopy {
    let scratch: Scratch
    let host: EmulatedHost
    let runner: RelayChannelRunner
    let service: FileCopyService
    let destination: String

    init(allowedRoots: [String]? = nil) async throws {
        scratch = try Scratch()
        try scratch.mkdir("root")
        try scratch.mkdir("dest")
        destination = scratch.sub("dest")
        host = try EmulatedHost(root: scratch.sub("root"), devices: [.fcopy])
        try host.start()
        let recorder = LogRecorder()
        let environment = ServiceEnvironment(
            deviceRoot: scratch.sub("root"), stateDirectory: scratch.sub("root/state"),
            runtimeDirectory: scratch.sub("root/run"), configDirectory: scratch.sub("root/etc"), logger: recorder.logger)
        #expect(environment.isEmulated)
        service = FileCopyService(
            configuration: FileCopyConfiguration(allowedRoots: allowedRoots ?? [destination]), environment: environment)
        runner = try RelayChannelRunner(service: service, environment: environment, status: StatusBoard())
        try runner.start()
        let registered = await host.fcopy.device.waitForRegistration()
        #expect(registered)
    }

    func close() {
        runner.stop()
        host.stop()
        #expect(host.fcopy.device.violations == [])
    }
}

@Suite(.serialized) struct EmulatorTests {
    @Test func copiesOverTheRelayDeviceAreByteIdentical() async throws {
        let e = try await EmulatedFileCopy()
        defer { e.close() }
        for size in [0, 1, 6143, 6144, 6145, 100 * 1_048_576] {
            let data = pseudoRandomBytes(size, seed: UInt64(size) &+ 99)
            let job = await e.host.fcopy.copy(data, toDirectory: e.destination, name: "f\(size)")
            #expect(job.state == .completed, "\(size): \(job)")
            #expect(e.scratch.read("dest/f\(size)") == data, "\(size)")
        }
        #expect(e.scratch.names("dest").count == 6)
    }

    @Test func flagsUnicodeAndRefusalsOverTheRelayDevice() async throws {
        let e = try await EmulatedFileCopy()
        defer { e.close() }
        let fcopy = e.host.fcopy
        #expect(await fcopy.copy([1], toDirectory: e.destination, name: "x").state == .completed)
        let again = await fcopy.copy([2], toDirectory: e.destination, name: "x")
        #expect(again.errorCode == .alreadyExists)
        #expect(await fcopy.copy([3], toDirectory: e.destination, name: "x", overwrite: true).state == .completed)
        #expect(e.scratch.read("dest/x") == [3])

        let missing = await fcopy.copy([1], toDirectory: e.destination + "/a/b", name: "y")
        #expect(missing.errorCode == .fail)
        #expect(await fcopy.copy([4], toDirectory: e.destination + "/a/b", name: "y", createFullPath: true).state == .completed)
        #expect(e.scratch.read("dest/a/b/y") == [4])

        let unicode = "数据 🚀 ✓.bin"
        #expect(await fcopy.copy([5, 6], toDirectory: e.destination + "/目录", name: unicode, createFullPath: true).state == .completed)
        #expect(e.scratch.read("dest/目录/" + unicode) == [5, 6])

        try e.scratch.symlink("dest/link", to: e.scratch.sub("root"))
        #expect(await fcopy.copy([1], toDirectory: e.destination + "/link", name: "z").errorCode == .fail)
        #expect(await fcopy.copy([1], toDirectory: e.destination + "/../root", name: "z").errorCode == .invalidArgument)
        #expect(await fcopy.copy([1], toDirectory: e.scratch.sub("root"), name: "z").errorCode == .fail)  // not allowed
        #expect(!FileManager.default.fileExists(atPath: e.scratch.sub("root/z")))

        let past = await fcopy.copy(pseudoRandomBytes(10_000), toDirectory: e.destination, name: "past", fault: .offsetPastEnd)
        #expect(past.errorCode == .invalidArgument)
        #expect(!e.scratch.names("dest").contains("past"))
        #expect(e.scratch.names("dest").allSatisfy { !FileCopyEngine.isTemporaryName($0) })
    }

    @Test func cancelAndDisconnectLeaveNothing() async throws {
        let e = try await EmulatedFileCopy()
        defer { e.close() }
        let data = pseudoRandomBytes(200_000)
        let cancelled = await e.host.fcopy.copy(data, toDirectory: e.destination, name: "c", fault: .cancelAfter(fragments: 5))
        #expect(cancelled.state == .exception)
        #expect(e.scratch.names("dest") == [])

        let dropped = await e.host.fcopy.copy(data, toDirectory: e.destination, name: "d", fault: .disconnectAfter(fragments: 5))
        #expect(dropped.state == .exception)
        // The runner resets the service (removing the temporary file), then registers again.
        #expect(await e.host.fcopy.device.waitForRegistration(count: 2))
        #expect(e.scratch.names("dest") == [])
        // And the next copy works.
        #expect(await e.host.fcopy.copy(data, toDirectory: e.destination, name: "d").state == .completed)
        #expect(e.scratch.read("dest/d") == data)
    }

    @Test(.enabled(if: getuid() == 0, "needs root: tmpfs mount"))
    func diskFullOverTheRelayDevice() async throws {
        let e = try await EmulatedFileCopy()
        defer { e.close() }
        try e.scratch.mkdir("dest/small")
        #expect(try run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "hvguest-fcopy-test", e.scratch.sub("dest/small")]) == 0)
        defer { _ = try? run("/bin/umount", [e.scratch.sub("dest/small")]) }
        let job = await e.host.fcopy.copy(pseudoRandomBytes(2 * 1_048_576), toDirectory: e.destination + "/small", name: "big")
        #expect(job.errorCode == .diskFull, "\(job)")
        #expect(e.scratch.names("dest/small") == [])
    }
}
