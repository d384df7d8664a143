import Glibc
import HVFileCopy
import HVServiceKit
import HVSystem
import HVVSS
import HVWire
import Logging

// Whole relay services fed a conversation of raw messages (see `splitMessages`), running
// emulated in a scratch directory. Invariants: every request gets an answer of the size the
// kernel accepts; after the channel resets nothing is left frozen and no partial copy remains;
// nothing is written outside the allowed root.

extension FuzzTargets {
    static let serviceTargets: [FuzzTarget] = [
        FuzzTarget(name: "vss-service", summary: "VSSService.handle over message sequences (recording freezer, synthetic mounts)",
                   seeds: vssServiceSeeds, body: vssServiceBody),
        FuzzTarget(name: "fcopy-service", summary: "FileCopyService.handle over message sequences, emulated in a scratch root",
                   seeds: fcopyServiceSeeds, body: fcopyServiceBody),
    ]
}

private func quietLogger() -> Logger {
    var l = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
    l.logLevel = .critical
    return l
}

private func scratchEnvironment(_ dir: String) -> ServiceEnvironment {
    ServiceEnvironment(deviceRoot: dir, stateDirectory: dir + "/state", runtimeDirectory: dir + "/run",
                       configDirectory: dir + "/etc", logger: quietLogger())
}

// MARK: VSS

/// Freezes nothing real: records which mountpoints are "frozen".
final class RecordingFreezer: Freezer, @unchecked Sendable {
    let frozen = Locked<Set<String>>([])
    func freeze(_ mountPoint: String) throws(FreezerError) -> FilesystemFreeze.FreezeResult {
        frozen.withLock { $0.insert(mountPoint).inserted } ? .frozen : .alreadyFrozen
    }
    func thaw(_ mountPoint: String) throws(FreezerError) -> FilesystemFreeze.ThawResult {
        frozen.withLock { $0.remove(mountPoint) != nil } ? .thawed : .notFrozen
    }
}

private struct NoLoopInspector: BlockDeviceInspector {
    func isLoopBacked(source: String, device: DeviceNumber) -> Bool { false }
}

private let fakeMounts = MountTable(entries: [
    MountEntry(mountID: 1, parentID: 0, device: .init(major: 8, minor: 1), root: "/", mountPoint: "/", mountOptions: ["rw"],
               fileSystemType: "ext4", source: "/dev/sda1", superOptions: ["rw"]),
    MountEntry(mountID: 2, parentID: 1, device: .init(major: 8, minor: 2), root: "/", mountPoint: "/fuzz/a", mountOptions: ["rw"],
               fileSystemType: "ext4", source: "/dev/sda2", superOptions: ["rw"]),
    MountEntry(mountID: 3, parentID: 1, device: .init(major: 8, minor: 3), root: "/", mountPoint: "/fuzz/b", mountOptions: ["rw"],
               fileSystemType: "xfs", source: "/dev/sda3", superOptions: ["rw"]),
])

private func vssServiceSeeds() -> [[UInt8]] {
    let f = VSSRequest(operation: .freeze).encode()
    let t = VSSRequest(operation: .thaw).encode()
    return [joinMessages([f, t]), joinMessages([f, f, t, t]), joinMessages([VSSRequest(operation: .hotBackup).encode(), f])]
}

/// One service for the whole run (a fresh one per input costs a timer thread and a
/// shutdown each); every input ends with a channel reset, so inputs stay independent.
private final class VSSFuzzHarness: Sendable {
    let dir = FuzzScratch.path + "/vss"
    let freezer = RecordingFreezer()
    let service: VSSService
    init() {
        let freezer = self.freezer
        service = VSSService(
            environment: scratchEnvironment(dir),
            configuration: VSSConfiguration(mountpoints: ["/fuzz/a", "/fuzz/b"], thawDeadlineSeconds: 900, hooksDirectory: dir + "/no-hooks"),
            readMountTable: { fakeMounts }, inspector: NoLoopInspector(), makeFreezer: { _ in freezer },
            hooks: RecordingHookRunner(names: []), logGate: LogGate())
    }
}

private let vssHarness = VSSFuzzHarness()

private func vssServiceBody(_ data: [UInt8]) -> String? {
    let h = vssHarness
    for m in splitMessages(data) {
        let r = h.service.handle(request: m)
        if r.bytes.count != VSSLayout.messageSize { return "VSS reply of \(r.bytes.count) bytes" }
        if (try? VSSReply.decode(r.bytes))?.status != r.status { return "VSS reply bytes disagree with status \(r.status)" }
        if !h.freezer.frozen.current.isSubset(of: ["/fuzz/a", "/fuzz/b"]) { return "froze outside the allow-list" }
    }
    h.service.channelReset(reason: "fuzz")
    if !h.freezer.frozen.current.isEmpty { return "still frozen after channel reset: \(h.freezer.frozen.current)" }
    if !h.service.status().frozenMountpoints.isEmpty { return "service reports frozen mountpoints after reset" }
    if fileKind(FrozenRecord.path(runtimeDirectory: h.dir + "/run")) != .missing { return "frozen record left after reset" }
    return nil
}

// MARK: fcopy

/// START paths beginning with this are rewritten to the scratch root (the scratch path differs
/// per process, the corpus must not).
public let fuzzRootPlaceholder = "/FUZZROOT"

private func fcopyServiceSeeds() -> [[UInt8]] {
    let data = [UInt8](repeating: 0x61, count: 100)
    func start(_ name: String, _ path: String, _ flags: FCopyFlags = [], size: UInt64 = 100) -> [UInt8] {
        FCopyRequest.start(FCopyStart(fileName: name, pathName: path, flags: flags, fileSize: size)).encode()
    }
    let w = FCopyRequest.write(FCopyWrite(offset: 0, data: data[...])).encode()
    let c = FCopyRequest.complete.encode()
    return [
        joinMessages([start("a.txt", fuzzRootPlaceholder), w, c]),
        joinMessages([start("b.txt", fuzzRootPlaceholder + "/x/y", [.createPath]), w, w, c]),
        joinMessages([start("c.txt", fuzzRootPlaceholder, [.overwrite]), w, FCopyRequest.cancel.encode()]),
        joinMessages([start("../up", fuzzRootPlaceholder), w, c]),
    ]
}

/// One service for the run (a copy in progress is its only state, and every input ends with a
/// channel reset, so inputs stay independent); the root starts empty every 32 inputs, which
/// keeps the tree the invariant check walks small.
private struct FCopyHarness {
    var scratch = ""
    var executions = 0
    var service: FileCopyService?
}

private let fcopyHarness = Locked(FCopyHarness())

private func fcopyServiceBody(_ data: [UInt8]) -> String? {
    let scratch = FuzzScratch.path + "/fcopy"
    let root = scratch + "/root"
    let service = fcopyHarness.withLock { h -> FileCopyService in
        h.executions &+= 1
        if h.executions % 32 == 1 || h.scratch != scratch || fileKind(root) != .directory {
            removeTree(root)
            _ = try? makeDirectories(root)
        }
        if h.scratch != scratch || h.service == nil {
            h.scratch = scratch
            h.service = FileCopyService(
                configuration: FileCopyConfiguration(allowedRoots: [root], fsync: false), environment: scratchEnvironment(scratch))
        }
        return h.service!
    }
    for var m in splitMessages(data) {
        rewritePlaceholder(&m, root: root)
        let r = service.handle(request: m)
        if r.bytes.count != FCopyLayout.replySize { return "fcopy reply of \(r.bytes.count) bytes" }
        if (try? FCopyReply.decode(r.bytes)) != r.status { return "fcopy reply bytes disagree with status" }
    }
    service.channelReset(reason: "fuzz")
    if service.engine.isActive { return "copy still active after channel reset" }
    // Nothing outside the root; no temporary file left anywhere below it.
    let top = (try? Descriptor.openDirectory(scratch).entries().map(\.name)) ?? []
    for name in top where !["root", "state", "run", "etc"].contains(name) { return "wrote \(name) outside the allowed root" }
    if let leftover = findTemporary(root, depth: 0) { return "temporary file left after reset: \(leftover)" }
    return nil
}

private func rewritePlaceholder(_ m: inout [UInt8], root: String) {
    guard m.count == FCopyLayout.startSize, case .start(let s)? = try? FCopyRequest.decode(m), s.pathName.hasPrefix(fuzzRootPlaceholder)
    else { return }
    let path = root + s.pathName.dropFirst(fuzzRootPlaceholder.count)
    let rewritten = FCopyRequest.start(FCopyStart(fileName: s.fileName, pathName: path, flags: s.flags, fileSize: s.fileSize)).encode()
    if rewritten.count == m.count { m = rewritten }
}

private func findTemporary(_ dir: String, depth: Int) -> String? {
    guard depth < 16, let entries = try? Descriptor.openDirectory(dir).entries() else { return nil }
    for e in entries {
        if e.name.contains(".hvguest-") { return dir + "/" + e.name }
        if e.type == .directory, let found = findTemporary(dir + "/" + e.name, depth: depth + 1) { return found }
    }
    return nil
}
