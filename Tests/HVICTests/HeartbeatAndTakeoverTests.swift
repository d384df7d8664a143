import Foundation
import HVEmulator
import HVHeartbeat
import HVServiceKit
import HVSystem
import HVTesting
import HVTransport
import Testing

@Suite struct HeartbeatTests {
    @Test func sequenceNumbersAreAnsweredPlusOne() async throws {
        let service = HeartbeatService()
        let rig = try ICRig(makeHost: { try HeartbeatHost(deviceRoot: $0) }, service: service)
        var sent: [UInt64] = []
        for _ in 0..<5 {
            let r = await blocking { rig.host.beat() }
            #expect(r.outcome.status == .ok)
            #expect(r.echoed == r.sent &+ 1)
            sent.append(r.sent)
        }
        // The host continues from the guest's answer: 0 → 1, 2 → 3, …
        #expect(sent == [0, 2, 4, 6, 8])
        #expect(service.answered == 5)
        #expect(service.lastSequenceNumber == 9)
        #expect(rig.host.componentStatus == .ok)
        #expect(await eventually { rig.status[.heartbeat]?.requests == 5 })
    }

    @Test func heartbeatStopsWhenTheDaemonStops() async throws {
        let service = HeartbeatService()
        let rig = try ICRig(makeHost: { try HeartbeatHost(deviceRoot: $0) }, service: service)
        #expect(await blocking { rig.host.beat() }.outcome.status == .ok)
        rig.runner.stop()
        let r = await blocking { rig.host.beat(timeoutMilliseconds: 300) }
        #expect(r.outcome.status == nil)
        #expect(rig.host.componentStatus == .lostCommunication)
        #expect(rig.status[.heartbeat]?.state == .stopped)
    }
}

/// A fake sysfs tree: the heartbeat device bound to hv_utils, both drivers present.
struct FakeSysfs {
    let dir: TempDir
    let instance = "fd149e91-82e0-4a7d-afa6-2a4166cbd7c0"
    var root: String { dir.path }
    var device: String { root + "/sys/bus/vmbus/devices/" + instance }
    func driver(_ name: String) -> String { root + "/sys/bus/vmbus/drivers/" + name }

    init(uioDriverLoaded: Bool = true) throws {
        dir = try TempDir("hvguest-sysfs-")
        try makeDirectories(root + "/sys/bus/vmbus/devices/" + instance)
        try Sysfs.writeFile(root + "/sys/bus/vmbus/devices/\(instance)/class_id", contents: "{57164f39-9115-4e78-ab55-382f3bd5422d}\n")
        try Sysfs.writeFile(root + "/sys/bus/vmbus/devices/\(instance)/driver_override", contents: "(null)\n")
        for name in ["hv_utils"] + (uioDriverLoaded ? ["uio_hv_generic"] : []) {
            try makeDirectories(root + "/sys/bus/vmbus/drivers/" + name)
            for attr in ["bind", "unbind"] { try Sysfs.writeFile(root + "/sys/bus/vmbus/drivers/\(name)/\(attr)", contents: "") }
        }
        try FileManager.default.createSymbolicLink(
            atPath: root + "/sys/bus/vmbus/devices/\(instance)/driver", withDestinationPath: "../../../../bus/vmbus/drivers/hv_utils")
    }
}

final class WriteLog: @unchecked Sendable {
    let writes = Locked<[String]>([])
    let failOn: String?
    init(failOn: String? = nil) { self.failOn = failOn }
    var writer: @Sendable (String, String) throws(SystemError) -> Void {
        { [self] path, value throws(SystemError) in
            let short = path.components(separatedBy: "/sys/bus/vmbus/").last ?? path
            writes.withLock { $0.append("\(short)=\(value.trimmingCharacters(in: .newlines))") }
            if let failOn, short.hasSuffix(failOn) { throw SystemError("write \(path)", errno: EBUSY) }
            try Sysfs.writeAttribute(path, value)
        }
    }
}

@Suite struct UIOTakeoverTests {
    static let heartbeatClass = "57164f39-9115-4e78-ab55-382f3bd5422d"

    @Test func kernelVersions() {
        #expect(KernelVersion(release: "6.10.0-amd64") == KernelVersion(6, 10))
        #expect(KernelVersion(release: "6.9.12+deb13") == KernelVersion(6, 9))
        #expect(KernelVersion(release: "5.15.0-1057-azure")! < UIOTakeover.minimumKernel)
        #expect(KernelVersion(release: "7.0") == KernelVersion(7, 0))
        #expect(KernelVersion(release: "garbage") == nil)
        #expect(KernelVersion(release: "") == nil)
    }

    @Test func refusesOnOlderKernelsWithAClearMessage() throws {
        let tree = try FakeSysfs()
        let log = WriteLog()
        let t = UIOTakeover(deviceRoot: tree.root, kernelRelease: { "6.9.7-amd64" }, writeAttribute: log.writer)
        #expect(throws: UIOTakeoverError.kernelTooOld(release: "6.9.7-amd64")) { try t.take(classID: Self.heartbeatClass) }
        #expect(UIOTakeoverError.kernelTooOld(release: "6.9.7-amd64").description.contains("older than 6.10"))
        #expect(log.writes.current.isEmpty)
    }

    @Test func takesOverAndGivesBack() throws {
        let tree = try FakeSysfs()
        let log = WriteLog()
        let t = UIOTakeover(deviceRoot: tree.root, kernelRelease: { "6.12.48+deb13-amd64" }, writeAttribute: log.writer)
        #expect(t.findInstance(classID: "{57164F39-9115-4E78-AB55-382F3BD5422D}") == tree.instance)
        #expect(t.currentDriver(instance: tree.instance) == "hv_utils")
        let record = try t.take(classID: Self.heartbeatClass)
        #expect(record == TakeoverRecord(instance: tree.instance, previousDriver: "hv_utils", wasAlreadyBound: false))
        let i = tree.instance
        #expect(
            log.writes.current == [
                "devices/\(i)/driver_override=uio_hv_generic",
                "drivers/hv_utils/unbind=\(i)",
                "drivers/uio_hv_generic/bind=\(i)",
            ])
        #expect(try Sysfs.readAttribute(tree.device + "/driver_override") == "uio_hv_generic")
        log.writes.withLock { $0 = [] }
        try t.release(record)
        #expect(
            log.writes.current == [
                "drivers/uio_hv_generic/unbind=\(i)",
                "devices/\(i)/driver_override=",
                "drivers/hv_utils/bind=\(i)",
            ])
    }

    @Test func aDeviceAlreadyOnUIOIsLeftAlone() throws {
        let tree = try FakeSysfs()
        try makeDirectories(tree.device + "/uio/uio3")
        let log = WriteLog()
        // Even an old kernel: nothing is rebound, the device is used as it is.
        let t = UIOTakeover(deviceRoot: tree.root, kernelRelease: { "5.4.0" }, writeAttribute: log.writer)
        let record = try t.take(classID: Self.heartbeatClass)
        #expect(record.wasAlreadyBound)
        try t.release(record)
        #expect(log.writes.current.isEmpty)
    }

    @Test func missingDeviceOrDriver() throws {
        let tree = try FakeSysfs(uioDriverLoaded: false)
        let t = UIOTakeover(deviceRoot: tree.root, kernelRelease: { "6.10.0" })
        #expect(throws: UIOTakeoverError.deviceNotFound(classID: "0e0b6031-5213-4934-818b-38d90ced39db")) {
            try t.take(classID: "0e0b6031-5213-4934-818b-38d90ced39db")
        }
        #expect(throws: UIOTakeoverError.driverMissing("uio_hv_generic")) { try t.take(classID: Self.heartbeatClass) }
    }

    @Test func aFailedBindGivesTheDeviceBack() throws {
        let tree = try FakeSysfs()
        let log = WriteLog(failOn: "uio_hv_generic/bind")
        let t = UIOTakeover(deviceRoot: tree.root, kernelRelease: { "6.10.0" }, writeAttribute: log.writer)
        #expect(throws: UIOTakeoverError.self) { try t.take(classID: Self.heartbeatClass) }
        let i = tree.instance
        #expect(
            log.writes.current == [
                "devices/\(i)/driver_override=uio_hv_generic",
                "drivers/hv_utils/unbind=\(i)",
                "drivers/uio_hv_generic/bind=\(i)",
                "devices/\(i)/driver_override=",
                "drivers/hv_utils/bind=\(i)",
            ])
    }

    @Test func writesNeverCreateMissingAttributes() throws {
        let tree = try FakeSysfs()
        #expect(throws: SystemError.self) { try Sysfs.writeAttribute(tree.root + "/sys/bus/vmbus/drivers/nope/bind", "x") }
        #expect(!PathOps.exists(tree.root + "/sys/bus/vmbus/drivers/nope/bind"))
    }
}
