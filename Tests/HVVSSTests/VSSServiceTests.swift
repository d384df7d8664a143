import Foundation
import HVServiceKit
import HVWire
import Testing

@testable import HVVSS

private let table = mountTable(
    """
    27 1 254:0 / / rw - ext4 /dev/vda rw
    25 27 0:23 / /run rw - tmpfs tmpfs rw
    31 27 8:2 / /data rw - xfs /dev/sda2 rw
    """)

private func message(_ op: UInt8, flags: UInt32 = 0, size: Int = 12) -> [UInt8] {
    var b = [UInt8](repeating: 0, count: size)
    b[0] = op
    b[8] = UInt8(flags & 0xFF)
    return b
}

private let ok: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
private let eFail: [UInt8] = [0x05, 0x40, 0x00, 0x80, 0, 0, 0, 0, 0, 0, 0, 0]

private final class ServiceRig: Sendable {
    let dir: TempDir
    let freezer = RecordingFreezer()
    let service: VSSService
    init(deviceRoot: String = "/", mountpoints: [String] = []) throws {
        dir = try TempDir()
        let freezer = self.freezer
        service = VSSService(
            environment: environment(runtime: dir.path, deviceRoot: deviceRoot),
            configuration: VSSConfiguration(mountpoints: mountpoints, hooksDirectory: dir.path + "/none"),
            readMountTable: { table }, inspector: FakeInspector(), makeFreezer: { _ in freezer },
            hooks: RecordingHookRunner(names: []), logGate: LogGate())
    }
    func finish() {
        service.shutdown()
        dir.cleanup()
    }
}

@Suite struct VSSServiceTests {
    @Test func registration() throws {
        let rig = try ServiceRig()
        defer { rig.finish() }
        #expect(rig.service.devicePath == "dev/vmbus/hv_vss")
        #expect(rig.service.registrationMessage() == [129, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        #expect(try rig.service.registrationCompleted(reply: [129, 0, 0, 0]) == "REGISTER1 (129)")
        #expect(throws: VSSRegistrationError.self) { try rig.service.registrationCompleted(reply: [128, 0, 0, 0]) }
        #expect(throws: VSSRegistrationError.self) { try rig.service.registrationCompleted(reply: [129, 0, 0, 0, 0]) }
        #expect(throws: VSSRegistrationError.self) { try rig.service.registrationCompleted(reply: []) }
    }

    @Test func freezeThenThawOnTheWire() throws {
        let rig = try ServiceRig()
        defer { rig.finish() }
        let f = rig.service.handle(request: message(5))
        #expect(f.bytes == ok)
        #expect(f.operation == "FREEZE")
        #expect(rig.freezer.calls == [.freeze("/data"), .freeze("/")])
        #expect(rig.service.status().isFrozen)
        let t = rig.service.handle(request: message(6))
        #expect(t.bytes == ok)
        #expect(t.operation == "THAW")
        #expect(rig.freezer.calls.suffix(2) == [.thaw("/"), .thaw("/data")])
        #expect(!rig.service.status().isFrozen)
    }

    @Test func largeFreezeMessageIsAccepted() throws {
        let rig = try ServiceRig()
        defer { rig.finish() }
        var big = message(5, size: 6260)
        for i in 12..<big.count { big[i] = UInt8(truncatingIfNeeded: i) }
        #expect(rig.service.handle(request: big).bytes == ok)
        #expect(rig.service.status().isFrozen)
    }

    @Test func shortMessageGetsEFail() throws {
        let rig = try ServiceRig()
        defer { rig.finish() }
        let r = rig.service.handle(request: [5, 0, 0])
        #expect(r.bytes == eFail)
        #expect(r.bytes.count == 12)
        #expect(rig.freezer.calls.isEmpty)
    }

    @Test(arguments: [UInt8(0), 1, 2, 3, 4, 7, 42, 200])
    func otherOperationsGetSOK(op: UInt8) throws {
        let rig = try ServiceRig()
        defer { rig.finish() }
        let r = rig.service.handle(request: message(op, flags: 5))
        #expect(r.bytes == ok)
        #expect(r.status == .ok)
        #expect(rig.freezer.calls.isEmpty)
    }

    @Test func emulatedWithoutAllowListRefuses() throws {
        let rig = try ServiceRig(deviceRoot: "/tmp/fake-root")
        defer { rig.finish() }
        let r = rig.service.handle(request: message(5))
        #expect(r.bytes == eFail)
        #expect(r.detail?.contains("allow-list") == true)
        #expect(rig.freezer.calls.isEmpty)
    }

    @Test func emulatedFreezesOnlyTheAllowList() throws {
        let rig = try ServiceRig(deviceRoot: "/tmp/fake-root", mountpoints: ["/data", "/"])
        defer { rig.finish() }
        #expect(rig.service.handle(request: message(5)).bytes == ok)
        #expect(rig.freezer.calls == [.freeze("/data")])
    }

    @Test func channelResetWhileFrozenThaws() throws {
        let rig = try ServiceRig()
        defer { rig.finish() }
        _ = rig.service.handle(request: message(5))
        rig.service.channelReset(reason: "read: EBADF")
        #expect(!rig.service.status().isFrozen)
        #expect(rig.freezer.frozen.isEmpty)
        #expect(rig.service.status().lastUnrequestedThaw?.contains("channel reset") == true)
        // A THAW after the reset still gets S_OK.
        #expect(rig.service.handle(request: message(6)).bytes == ok)
    }

    @Test func registrationThawsWhatAPreviousRunLeftFrozen() throws {
        let rig = try ServiceRig()
        defer { rig.finish() }
        try FrozenRecord.write(["/data", "/"], runtimeDirectory: rig.dir.path)
        _ = rig.service.registrationMessage()
        #expect(rig.freezer.calls == [.thaw("/"), .thaw("/data")])
        #expect(try FrozenRecord.read(runtimeDirectory: rig.dir.path) == nil)
    }

    @Test func shutdownWhileFrozenThaws() throws {
        let rig = try ServiceRig()
        defer { rig.dir.cleanup() }
        _ = rig.service.handle(request: message(5))
        let o = rig.service.shutdown()
        #expect(o.reason == .shutdown)
        #expect(o.thawed == ["/", "/data"])
        #expect(rig.freezer.frozen.isEmpty)
    }
}
