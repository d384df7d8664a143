import Foundation
import HVServiceKit
import HVSystem
import HVWire
import Testing

@testable import HVVSS

private func targets(_ mountPoints: [String]) -> [FreezeTarget] {
    mountPoints.enumerated().map {
        FreezeTarget(
            mountPoint: $0.element, device: DeviceNumber(major: 8, minor: UInt32($0.offset)), fileSystemType: "ext4",
            source: "/dev/sd\($0.offset)")
    }
}

/// An engine over a recording freezer, with the frozen record in a temp directory.
private struct Rig {
    let dir: TempDir
    let freezer: RecordingFreezer
    let hooks: RecordingHookRunner
    let engine: FreezeEngine
    let gate: LogGate
    let recordSeen: Locked<[Bool]>

    init(
        freezeErrors: [String: Int32] = [:], thawErrors: [String: Int32] = [:], hookNames: [String] = [],
        hookOutcomes: [String: HookOutcome] = [:], failOnHookError: Bool = true, deadline: Double = 600
    ) throws {
        let dir = try TempDir()
        let recordPath = FrozenRecord.path(runtimeDirectory: dir.path + "/run")
        let seen = Locked<[Bool]>([])
        let freezer = RecordingFreezer(freezeErrors: freezeErrors, thawErrors: thawErrors) { call in
            if case .freeze = call { seen.withLock { $0.append(FileManager.default.fileExists(atPath: recordPath)) } }
        }
        let hooks = RecordingHookRunner(names: hookNames, outcomes: hookOutcomes)
        let gate = LogGate()
        self.dir = dir
        self.freezer = freezer
        self.hooks = hooks
        self.gate = gate
        self.recordSeen = seen
        engine = FreezeEngine(
            runtimeDirectory: dir.path + "/run", hooks: hooks, failOnHookError: failOnHookError,
            thawDeadlineSeconds: deadline, logger: testLogger(), logGate: gate, makeFreezer: { _ in freezer })
    }

    var recordExists: Bool { FileManager.default.fileExists(atPath: FrozenRecord.path(runtimeDirectory: dir.path + "/run")) }
    func finish() {
        engine.waitForHooks()
        engine.stop()
        dir.cleanup()
    }
}

@Suite struct FreezeEngineTests {
    @Test func freezesInOrderThawsInReverseWithRecordAndLogGate() throws {
        let rig = try Rig()
        defer { rig.finish() }
        let f = rig.engine.freeze(targets(["/a", "/b", "/"]))
        #expect(f.status == .ok)
        #expect(f.frozen == ["/a", "/b", "/"])
        #expect(rig.recordSeen.current == [true, true, true], "record must exist before the first FIFREEZE")
        #expect(try FrozenRecord.read(runtimeDirectory: rig.dir.path + "/run") == ["/a", "/b", "/"])
        #expect(rig.gate.isHeld)
        #expect(rig.engine.isFrozen)
        #expect(rig.engine.status().frozenMountpoints == ["/a", "/b", "/"])

        let t = rig.engine.thaw(reason: .hostRequest)
        #expect(t.status == .ok)
        #expect(t.thawed == ["/", "/b", "/a"])
        #expect(!rig.gate.isHeld)
        #expect(!rig.recordExists)
        #expect(!rig.engine.isFrozen)
        #expect(rig.freezer.calls == [.freeze("/a"), .freeze("/b"), .freeze("/"), .thaw("/"), .thaw("/b"), .thaw("/a")])
    }

    @Test func partialFailureThawsTheRestInReverseAndFails() throws {
        let rig = try Rig(freezeErrors: ["/c": EOPNOTSUPP], hookNames: ["10-a", "20-b"])
        defer { rig.finish() }
        let f = rig.engine.freeze(targets(["/a", "/b", "/c", "/d"]))
        #expect(f.status == .fail)
        #expect(f.failure?.contains("/c") == true)
        #expect(f.rolledBack == ["/b", "/a"])
        #expect(rig.freezer.calls == [.freeze("/a"), .freeze("/b"), .freeze("/c"), .thaw("/b"), .thaw("/a")])
        #expect(rig.freezer.frozen.isEmpty)
        #expect(!rig.gate.isHeld)
        #expect(!rig.recordExists)
        #expect(!rig.engine.isFrozen)
        #expect(
            rig.hooks.calls.map { "\($0.name) \($0.phase.rawValue)" } == [
                "10-a freeze", "20-b freeze", "20-b freeze-fail", "10-a freeze-fail",
            ])
    }

    @Test func ebusyCountsAsFrozenAndIsThawedLater() throws {
        let rig = try Rig(freezeErrors: ["/b": EBUSY])
        defer { rig.finish() }
        let f = rig.engine.freeze(targets(["/a", "/b"]))
        #expect(f.status == .ok)
        #expect(f.alreadyFrozen == ["/b"])
        #expect(f.frozen == ["/a", "/b"])
        let t = rig.engine.thaw(reason: .hostRequest)
        #expect(t.status == .ok)
        #expect(rig.freezer.calls.suffix(2) == [.thaw("/b"), .thaw("/a")])
    }

    @Test func thawEinvalIsFineOtherErrorsFailButEverythingIsTried() throws {
        let rig = try Rig(thawErrors: ["/b": EINVAL, "/c": EIO])
        defer { rig.finish() }
        _ = rig.engine.freeze(targets(["/a", "/b", "/c"]))
        let t = rig.engine.thaw(reason: .hostRequest)
        #expect(t.status == .fail)
        #expect(t.thawed == ["/a"])
        #expect(t.notFrozen == ["/b"])
        #expect(t.failures.count == 1)
        #expect(rig.recordExists, "record kept so thaw-all can retry")
        #expect(!rig.gate.isHeld)
    }

    @Test func failingFreezeHookFailsTheBackupWithoutFreezing() throws {
        let rig = try Rig(hookNames: ["10-a", "20-b", "30-c"], hookOutcomes: ["20-b freeze": .exited(3)])
        defer { rig.finish() }
        let f = rig.engine.freeze(targets(["/a"]))
        #expect(f.status == .fail)
        #expect(rig.freezer.calls.isEmpty)
        #expect(!rig.recordExists)
        #expect(
            rig.hooks.calls.map { "\($0.name) \($0.phase.rawValue)" } == [
                "10-a freeze", "20-b freeze", "20-b freeze-fail", "10-a freeze-fail",
            ])
        #expect(rig.engine.status().lastHooks.count == 4)
    }

    @Test func failingFreezeHookIsToleratedWhenConfigured() throws {
        let rig = try Rig(hookNames: ["10-a", "20-b"], hookOutcomes: ["10-a freeze": .timedOut(seconds: 1)], failOnHookError: false)
        defer { rig.finish() }
        let f = rig.engine.freeze(targets(["/a"]))
        #expect(f.status == .ok)
        rig.engine.thaw(reason: .hostRequest)
        rig.engine.waitForHooks()
        #expect(
            rig.hooks.calls.map { "\($0.name) \($0.phase.rawValue)" } == [
                "10-a freeze", "20-b freeze", "20-b thaw", "10-a thaw",
            ])
    }

    @Test func deadlineThawsAndRecordsWhy() throws {
        let rig = try Rig(deadline: 0.3)
        defer { rig.finish() }
        let start = monotonicNanoseconds()
        #expect(rig.engine.freeze(targets(["/a", "/b"])).status == .ok)
        while rig.engine.isFrozen && monotonicNanoseconds() - start < 5_000_000_000 { sleepMilliseconds(10) }
        let elapsed = Double(monotonicNanoseconds() - start) / 1e9
        #expect(!rig.engine.isFrozen)
        #expect(elapsed >= 0.29 && elapsed < 2)
        #expect(rig.freezer.frozen.isEmpty)
        #expect(rig.engine.status().lastUnrequestedThaw?.contains("deadline") == true)
        #expect(!rig.recordExists)
        // A THAW that comes later finds nothing to do and still succeeds.
        #expect(rig.engine.thaw(reason: .hostRequest).status == .ok)
    }

    @Test func thawBeforeTheDeadlineDisarmsIt() throws {
        let rig = try Rig(deadline: 0.2)
        defer { rig.finish() }
        _ = rig.engine.freeze(targets(["/a"]))
        rig.engine.thaw(reason: .hostRequest)
        _ = rig.engine.freeze(targets(["/a"]))
        sleepMilliseconds(100)
        rig.engine.thaw(reason: .hostRequest)
        sleepMilliseconds(300)
        #expect(rig.engine.status().lastUnrequestedThaw == nil)
        #expect(rig.freezer.calls.count == 4)
    }

    @Test func freezeWhileFrozenThawsFirst() throws {
        let rig = try Rig()
        defer { rig.finish() }
        _ = rig.engine.freeze(targets(["/a"]))
        let f = rig.engine.freeze(targets(["/b"]))
        #expect(f.status == .ok)
        #expect(rig.freezer.calls == [.freeze("/a"), .thaw("/a"), .freeze("/b")])
    }

    @Test func emptySelectionStillRunsHooksAndThaws() throws {
        let rig = try Rig(hookNames: ["h"])
        defer { rig.finish() }
        #expect(rig.engine.freeze([]).status == .ok)
        #expect(rig.engine.isFrozen)
        rig.engine.thaw(reason: .hostRequest)
        rig.engine.waitForHooks()
        #expect(rig.hooks.calls.map(\.phase) == [.freeze, .thaw])
        #expect(!rig.recordExists)
    }

    @Test func logLinesAreHeldWhileFrozen() throws {
        let sink = LineCollector()
        let dir = try TempDir()
        defer { dir.cleanup() }
        let gate = LogGate()
        let freezer = RecordingFreezer()
        let engine = FreezeEngine(
            runtimeDirectory: dir.path, hooks: RecordingHookRunner(names: []), failOnHookError: true,
            thawDeadlineSeconds: 600, logger: testLogger(sink), logGate: gate, makeFreezer: { _ in freezer })
        defer { engine.stop() }
        _ = engine.freeze(targets(["/a"]))
        #expect(!sink.all.contains { $0.contains("frozen 1") }, "nothing logged while frozen")
        engine.thaw(reason: .hostRequest)
        #expect(sink.all.contains { $0.contains("frozen 1 filesystem(s): /a") })
        #expect(sink.all.contains { $0.contains("thawed 1") })
    }

    @Test func recoveryThawsWhatARecordLists() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try FrozenRecord.write(["/x", "/weird\nname", "/"], runtimeDirectory: dir.path)
        #expect(try FrozenRecord.read(runtimeDirectory: dir.path) == ["/x", "/weird\nname", "/"])
        let freezer = RecordingFreezer()
        let hooks = RecordingHookRunner(names: ["a", "b"])
        let engine = FreezeEngine(
            runtimeDirectory: dir.path, hooks: hooks, failOnHookError: true, thawDeadlineSeconds: 600,
            logger: testLogger(), logGate: LogGate(), makeFreezer: { _ in freezer })
        let o = engine.recover()
        #expect(o.status == .ok)
        #expect(freezer.calls == [.thaw("/"), .thaw("/weird\nname"), .thaw("/x")])
        #expect(hooks.calls.map { "\($0.name) \($0.phase.rawValue)" } == ["b thaw", "a thaw"])
        #expect(try FrozenRecord.read(runtimeDirectory: dir.path) == nil)
        #expect(engine.status().lastUnrequestedThaw != nil)
    }

    @Test func recordWriteFailureMeansNoFreeze() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        // The runtime "directory" is a file: the record cannot be written.
        _ = FileManager.default.createFile(atPath: dir.path + "/file", contents: Data())
        let freezer = RecordingFreezer()
        let engine = FreezeEngine(
            runtimeDirectory: dir.path + "/file", hooks: RecordingHookRunner(names: []), failOnHookError: true,
            thawDeadlineSeconds: 600, logger: testLogger(), logGate: LogGate(), makeFreezer: { _ in freezer })
        let f = engine.freeze(targets(["/a"]))
        #expect(f.status == .fail)
        #expect(f.failure?.contains("frozen record") == true)
        #expect(freezer.calls.isEmpty)
    }

    @Test func liveFreezerRefusesAnythingNotPermitted() {
        let emulated = LiveFreezer(permitted: ["/", "/mnt/a", "/mnt/b"], allowList: ["/mnt/a", "/"], allowRoot: false)
        #expect(throws: FreezerError.self) { try emulated.freeze("/") }
        #expect(throws: FreezerError.self) { try emulated.freeze("/mnt/b") }
        #expect(throws: FreezerError.self) { try emulated.freeze("/mnt/c") }
        #expect(throws: FreezerError.self) { try emulated.thaw("/") }
        let real = LiveFreezer(permitted: ["/mnt/a"], allowList: nil, allowRoot: true)
        #expect(throws: FreezerError.self) { try real.freeze("/") }
    }
}
