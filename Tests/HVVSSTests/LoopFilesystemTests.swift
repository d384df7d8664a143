import Foundation
import HVServiceKit
import HVSystem
import Testing

@testable import HVVSS

// Root-only tests on loop-mounted images this test creates. SAFETY: every freeze goes through
// a service running emulated (device root ≠ /) with an allow-list naming only mountpoints
// inside our own temp directory, or through a LiveFreezer permitted only those; each test
// also checks the selection before freezing. Cleanup thaws our mountpoints (only ours),
// unmounts, detaches and removes, even after a failure.

@discardableResult
private func run(_ args: [String]) throws -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    return p.terminationStatus
}

/// A work area holding sparse images and their mountpoints.
private final class LoopArea: @unchecked Sendable {
    let dir: TempDir
    private(set) var mounts: [String] = []
    private var children: [pid_t] = []

    init() throws { dir = try TempDir("hvvss-loop") }

    /// Creates a 512 MiB sparse image with `type`, mounts it with `-o loop` and returns the mountpoint.
    func mount(_ type: String, name: String, options: String = "loop") throws -> String {
        let image = dir.file(name + ".img")
        let mnt = dir.file(name)
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: false)
        if type == "tmpfs" {
            try #require(try run(["mount", "-t", "tmpfs", "-o", "size=4m", "hvvss-test", mnt]) == 0)
        } else {
            try #require(try run(["truncate", "-s", "512M", image]) == 0)
            let force = type == "ext4" ? "-F" : "-f"
            try #require(try run(["mkfs.\(type)", "-q", force, image]) == 0, "mkfs.\(type)")
            try #require(try run(["mount", "-o", options, image, mnt]) == 0, "mount \(image)")
        }
        mounts.append(mnt)
        return mnt
    }

    func track(_ pid: pid_t) { children.append(pid) }

    /// Thaw (ours only), reap writers, unmount, detach, remove. Never removes a directory that
    /// still has something mounted below it.
    func cleanup() {
        for m in mounts { _ = try? FilesystemFreeze.thaw(m) }
        for pid in children {
            var status: Int32 = 0
            // Thawed writers finish on their own; give them a moment, then make sure.
            for _ in 0..<100 where waitpid(pid, &status, WNOHANG) == 0 { usleep(20_000) }
            kill(pid, SIGKILL)
            _ = waitpid(pid, &status, 0)
        }
        for m in mounts.reversed() {
            if (try? run(["umount", m])) != 0 { _ = try? run(["umount", "-l", m]) }
        }
        // `mount -o loop` sets autoclear; detach anything still bound to our images anyway.
        for m in mounts {
            let image = m + ".img"
            if let out = try? capture(["losetup", "-j", image]) {
                for line in out.split(separator: "\n") {
                    if let dev = line.split(separator: ":").first { _ = try? run(["losetup", "-d", String(dev)]) }
                }
            }
        }
        let table = (FileManagerShim.read("/proc/self/mountinfo")).map(MountTable.parse)?.entries ?? []
        if table.contains(where: { $0.mountPoint.hasPrefix(dir.path + "/") }) {
            Issue.record("something is still mounted below \(dir.path); not removing it")
            return
        }
        dir.cleanup()
    }

    private func capture(_ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// A service running emulated (device root = our temp dir) with `allowList`.
    func service(
        allowList: [String], deadline: Double = 600, excludeMountpoints: [String] = [], runtime: String? = nil
    ) -> VSSService {
        VSSService(
            environment: environment(runtime: runtime ?? dir.file("run"), deviceRoot: dir.path),
            configuration: VSSConfiguration(
                mountpoints: allowList, excludeMountpoints: excludeMountpoints, thawDeadlineSeconds: deadline,
                hooksDirectory: dir.file("no-hooks")),
            logGate: LogGate())
    }

    /// The selection the service will make, checked to contain only our own mountpoints.
    func checkedSelection(allowList: [String], excludeMountpoints: [String] = []) throws -> MountSelection {
        let table = MountTable.parse(try #require(FileManagerShim.read("/proc/self/mountinfo")))
        let selection = try MountSelector(
            configuration: VSSConfiguration(
                mountpoints: allowList, excludeMountpoints: excludeMountpoints, hooksDirectory: "/none"),
            isEmulated: true, inspector: SysfsBlockDeviceInspector()
        ).select(from: table)
        for t in selection.targets {
            try #require(t.mountPoint.hasPrefix(dir.path + "/") && t.mountPoint != "/", "refusing to freeze \(t)")
        }
        return selection
    }
}

/// Forks a process that creates `path`, writes a byte and fsyncs (async-signal-safe calls only).
private func startWriter(_ path: String) -> pid_t {
    let cPath = strdup(path)!
    defer { free(cPath) }
    let pid = fork()
    if pid == 0 {
        closeInheritedDescriptors()
        let fd = open(cPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if fd < 0 { _exit(2) }
        var byte: UInt8 = 0x41
        if write(fd, &byte, 1) != 1 { _exit(3) }
        if fsync(fd) != 0 { _exit(4) }
        close(fd)
        _exit(0)
    }
    return pid
}

/// Waits up to `seconds` for `pid`; its exit status, or nil if it is still running.
private func waitFor(_ pid: pid_t, seconds: Double) -> Int32? {
    let end = monotonicNanoseconds() + UInt64(seconds * 1e9)
    repeat {
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { return (status >> 8) & 0xff }
        usleep(10_000)
    } while monotonicNanoseconds() < end
    return nil
}

private let freezeRequest: [UInt8] = [5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
private let thawRequest: [UInt8] = [6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
private let sOK: [UInt8] = [UInt8](repeating: 0, count: 12)

@Suite(.serialized, .enabled(if: getuid() == 0, "needs root: loop mounts"))
struct LoopFilesystemTests {
    @Test(arguments: ["ext4", "xfs", "btrfs"])
    func writerBlocksWhileFrozenAndContinuesAfterThaw(type: String) throws {
        let area = try LoopArea()
        defer { area.cleanup() }
        let mnt = try area.mount(type, name: type)
        let selection = try area.checkedSelection(allowList: [mnt])
        try #require(selection.targets.map(\.mountPoint) == [mnt])

        let service = area.service(allowList: [mnt])
        defer { service.shutdown() }
        #expect(service.handle(request: freezeRequest).bytes == sOK)
        #expect(FileManager.default.fileExists(atPath: FrozenRecord.path(runtimeDirectory: area.dir.file("run"))))
        let writer = startWriter(mnt + "/file")
        area.track(writer)
        #expect(waitFor(writer, seconds: 0.5) == nil, "writer must block while \(type) is frozen")
        #expect(service.handle(request: thawRequest).bytes == sOK)
        #expect(waitFor(writer, seconds: 5) == 0, "writer must finish after thaw")
        #expect(!FileManager.default.fileExists(atPath: FrozenRecord.path(runtimeDirectory: area.dir.file("run"))))
        #expect(try FilesystemFreeze.thaw(mnt) == .notFrozen)
    }

    /// The mount table is cached between FREEZEs (re-read only when the kernel reports a
    /// change on /proc/self/mountinfo): a filesystem mounted after one backup, and one unmounted,
    /// must be seen by the next.
    @Test func mountChangesBetweenBackupsAreSeen() throws {
        let area = try LoopArea()
        defer { area.cleanup() }
        let a = try area.mount("ext4", name: "a")
        let b = area.dir.file("b")
        _ = try area.checkedSelection(allowList: [a, b])
        let service = area.service(allowList: [a, b])
        defer { service.shutdown() }

        #expect(service.handle(request: freezeRequest).bytes == sOK)
        #expect(service.status().frozenMountpoints == [a])
        #expect(service.handle(request: thawRequest).bytes == sOK)

        _ = try area.mount("ext4", name: "b")
        _ = try area.checkedSelection(allowList: [a, b])
        #expect(service.handle(request: freezeRequest).bytes == sOK)
        #expect(Set(service.status().frozenMountpoints) == [a, b], "a filesystem mounted after the last FREEZE is frozen")
        #expect(service.handle(request: thawRequest).bytes == sOK)

        try #require(try run(["umount", b]) == 0)
        #expect(service.handle(request: freezeRequest).bytes == sOK)
        #expect(service.status().frozenMountpoints == [a], "an unmounted filesystem is no longer selected")
        #expect(service.handle(request: thawRequest).bytes == sOK)
    }

    @Test func partialFailureThawsTheRest() throws {
        let area = try LoopArea()
        defer { area.cleanup() }
        let a = try area.mount("ext4", name: "a")
        let b = try area.mount("xfs", name: "b")
        let missing = area.dir.file("not-a-mount-and-missing")
        _ = try area.checkedSelection(allowList: [a, b])
        let engine = FreezeEngine(
            runtimeDirectory: area.dir.file("run"), hooks: RecordingHookRunner(names: []), failOnHookError: true,
            thawDeadlineSeconds: 600, logger: testLogger(), logGate: LogGate(),
            makeFreezer: { LiveFreezer(permitted: Set($0), allowList: [a, b, missing], allowRoot: false) })
        defer { engine.stop() }
        let targets = [a, b, missing].map {
            FreezeTarget(mountPoint: $0, device: .init(major: 7, minor: 0), fileSystemType: "ext4", source: "/dev/loop")
        }
        let o = engine.freeze(targets)
        #expect(o.status == .fail)
        #expect(o.rolledBack == [b, a])
        #expect(!engine.isFrozen)
        // Both really thawed: writers finish at once, and FITHAW says "not frozen".
        for m in [a, b] {
            let w = startWriter(m + "/file")
            area.track(w)
            #expect(waitFor(w, seconds: 5) == 0)
            #expect(try FilesystemFreeze.thaw(m) == .notFrozen)
        }
        #expect(!FileManager.default.fileExists(atPath: FrozenRecord.path(runtimeDirectory: area.dir.file("run"))))
    }

    @Test func deadlineThawsWithoutTHAW() throws {
        let area = try LoopArea()
        defer { area.cleanup() }
        let mnt = try area.mount("ext4", name: "d")
        _ = try area.checkedSelection(allowList: [mnt])
        let service = area.service(allowList: [mnt], deadline: 1)
        defer { service.shutdown() }
        let start = monotonicNanoseconds()
        #expect(service.handle(request: freezeRequest).bytes == sOK)
        let writer = startWriter(mnt + "/file")
        area.track(writer)
        #expect(waitFor(writer, seconds: 0.5) == nil)
        #expect(waitFor(writer, seconds: 5) == 0, "the deadline must thaw")
        let elapsed = Double(monotonicNanoseconds() - start) / 1e9
        #expect(elapsed >= 0.9 && elapsed < 5)
        #expect(service.status().lastUnrequestedThaw?.contains("deadline") == true)
        #expect(service.handle(request: thawRequest).bytes == sOK)
    }

    /// A daemon killed with SIGKILL while frozen: the record survives, and thaw-all (or the
    /// next start's registration) thaws within 5 s.
    @Test(arguments: ["thaw-all", "restart"])
    func killedWhileFrozenIsThawedByRecovery(how: String) throws {
        let area = try LoopArea()
        defer { area.cleanup() }
        let mnt = try area.mount("ext4", name: "k")
        try #require(try area.checkedSelection(allowList: [mnt]).targets.map(\.mountPoint) == [mnt])
        let runtime = area.dir.file("run")

        var fds: [Int32] = [-1, -1]
        try #require(pipe(&fds) == 0)
        let child = fork()
        if child == 0 {
            // The "daemon": freeze through the real service, report, then wait to be killed.
            // It holds nothing of the parent's but the pipe (see closeInheritedDescriptors).
            closeInheritedDescriptors(keeping: fds[1])
            let service = area.service(allowList: [mnt], runtime: runtime)
            var ok: UInt8 = service.handle(request: freezeRequest).status == .ok ? 1 : 0
            _ = write(fds[1], &ok, 1)
            while true { pause() }
        }
        close(fds[1])
        area.track(child)
        var pfd = pollfd(fd: fds[0], events: Int16(POLLIN), revents: 0)
        let ready = poll(&pfd, 1, 30_000)
        var ok: UInt8 = 0
        if ready == 1 { _ = read(fds[0], &ok, 1) }
        close(fds[0])
        kill(child, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(child, &status, 0)
        try #require(ok == 1, "child did not report a successful freeze")

        let writer = startWriter(mnt + "/file")
        area.track(writer)
        #expect(waitFor(writer, seconds: 0.5) == nil, "still frozen after the daemon died")
        #expect(try FrozenRecord.read(runtimeDirectory: runtime) == [mnt])

        let start = monotonicNanoseconds()
        if how == "thaw-all" {
            let report = VSSRecovery.thawAll(runtimeDirectory: runtime)
            #expect(report.hadRecord)
            #expect(report.thawed == [mnt])
        } else {
            let restarted = area.service(allowList: [mnt], runtime: runtime)
            _ = restarted.registrationMessage()
            restarted.shutdown()
        }
        #expect(waitFor(writer, seconds: 5) == 0)
        #expect(Double(monotonicNanoseconds() - start) / 1e9 < 5)
        #expect(try FrozenRecord.read(runtimeDirectory: runtime) == nil)
    }

    @Test func excludedAndUnfreezableMountsAreSkipped() throws {
        let area = try LoopArea()
        defer { area.cleanup() }
        let frozen = try area.mount("ext4", name: "frozen")
        let excluded = try area.mount("ext4", name: "excluded")
        let readOnly = try area.mount("ext4", name: "readonly", options: "loop,ro")
        let tmp = try area.mount("tmpfs", name: "tmp")
        let allow = [frozen, excluded, readOnly, tmp]
        let selection = try area.checkedSelection(allowList: allow, excludeMountpoints: [excluded])
        #expect(selection.targets.map(\.mountPoint) == [frozen])
        let reasons = Dictionary(selection.skipped.map { ($0.mountPoint, $0.reason) }, uniquingKeysWith: { a, _ in a })
        #expect(reasons[excluded] == .excludedMountpoint)
        #expect(reasons[readOnly] == .readOnly)
        #expect(reasons[tmp] == .cannotFreeze(fileSystemType: "tmpfs"))

        let service = area.service(allowList: allow, excludeMountpoints: [excluded])
        defer { service.shutdown() }
        #expect(service.handle(request: freezeRequest).bytes == sOK)
        #expect(service.status().frozenMountpoints == [frozen])
        for m in [excluded, tmp] {
            let w = startWriter(m + "/file")
            area.track(w)
            #expect(waitFor(w, seconds: 5) == 0, "\(m) must not be frozen")
        }
        let blocked = startWriter(frozen + "/file")
        area.track(blocked)
        #expect(waitFor(blocked, seconds: 0.5) == nil)
        #expect(service.handle(request: thawRequest).bytes == sOK)
        #expect(waitFor(blocked, seconds: 5) == 0)
    }
}
