import Foundation
import HVEmulator
import HVSystem
import HVTesting
import HVVSS
import Testing

// VSS through the REAL hvguestd and the emulated host, on loop-mounted ext4 images this test
// creates. SAFETY: the daemon runs emulated (device root = our temp dir) with `[vss]
// mountpoints` naming only our own mountpoint, so its freezer is fenced to that list; before
// starting it, each test checks that the selection the daemon will make contains only
// mountpoints inside our temp dir. Cleanup thaws only our mountpoint, reaps our writers,
// stops our daemon, unmounts, detaches our loop device and removes the directory.

/// A temp dir with one ext4 image mounted at `mnt`, and the daemon's files beside it.
private final class LoopRig: @unchecked Sendable {
    let dir: TempDir
    let mnt: String
    private var writers: [pid_t] = []
    private var mounted = false

    init() throws {
        dir = try TempDir("hvrel-vss-")
        mnt = dir.path + "/mnt"
        let image = dir.path + "/fs.img"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: false)
        try #require(try run(["truncate", "-s", "64M", image]) == 0)
        try #require(try run(["mkfs.ext4", "-q", "-F", image]) == 0, "mkfs.ext4")
        try #require(try run(["mount", "-o", "loop", image, mnt]) == 0, "mount \(image)")
        mounted = true
        // The daemon's selection, computed the same way: only our mountpoint. (Read with
        // HVSystem's readFile as the daemon does: Foundation returns only the first 4 KiB of a
        // /proc file, which misses mounts on a machine with many.)
        let table = MountTable.parse(String(decoding: try readFile("/proc/self/mountinfo"), as: UTF8.self))
        let selection = try MountSelector(
            configuration: VSSConfiguration(mountpoints: [mnt], hooksDirectory: "/none"), isEmulated: true,
            inspector: SysfsBlockDeviceInspector()
        ).select(from: table)
        if selection.targets.map(\.mountPoint) != [mnt] { cleanup() }  // init fails below: undo the mount now
        try #require(selection.targets.map(\.mountPoint) == [mnt], "refusing to run: selection \(selection.targets), skipped \(selection.skipped.filter { $0.mountPoint.hasPrefix(dir.path) }), rejected \(table.rejected)")
    }

    func config(deadline: Int = 600, hooks: String? = nil, hookTimeout: Double = 60) -> String {
        """
        [log]
        target = "stderr"
        level = "debug"
        [vss]
        mountpoints = ["\(mnt)"]
        thaw_deadline_seconds = \(deadline)
        hook_timeout_seconds = \(hookTimeout)
        hooks_directory = "\(hooks ?? dir.path + "/no-hooks")"
        """
    }

    /// Forks a writer that creates a file on our filesystem and fsyncs it (blocks while frozen).
    func startWriter(_ name: String) -> pid_t {
        let cPath = strdup(mnt + "/" + name)!
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
        writers.append(pid)
        return pid
    }

    /// Whether our filesystem was still frozen (FITHAW answers; thaws it if it was).
    func isFrozen() -> Bool { (try? FilesystemFreeze.thaw(mnt)) == .thawed }

    func cleanup() {
        _ = try? FilesystemFreeze.thaw(mnt)
        for pid in writers {
            var status: Int32 = 0
            for _ in 0..<100 where waitpid(pid, &status, WNOHANG) == 0 { usleep(20_000) }
            kill(pid, SIGKILL)
            _ = waitpid(pid, &status, 0)
        }
        if mounted, (try? run(["umount", mnt])) != 0 { _ = try? run(["umount", "-l", mnt]) }
        mounted = false
        let table = (try? readFile("/proc/self/mountinfo")).map { MountTable.parse(String(decoding: $0, as: UTF8.self)) }?.entries ?? []
        if table.contains(where: { $0.mountPoint.hasPrefix(dir.path + "/") }) {
            Issue.record("something is still mounted below \(dir.path); not removing it")
        }
    }
}

/// Waits (async) for a writer; its exit code, or nil if still blocked after `seconds`.
private func writerResult(_ pid: pid_t, within seconds: Double) async -> Int32? {
    let clock = ContinuousClock()
    let end = clock.now + .milliseconds(Int(seconds * 1000))
    repeat {
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { return (status >> 8) & 0xff }
        try? await Task.sleep(for: .milliseconds(10))
    } while clock.now < end
    return nil
}

@Suite("VSS end to end through hvguestd", .serialized, .enabled(if: getuid() == 0, "needs root: loop mounts"))
struct VSSEndToEndTests {
    private func startDaemon(_ rig: LoopRig, config: String, timeouts: KernelTimeouts = .kernel) async throws
        -> (EmulatedHost, DaemonUnderTest)
    {
        let host = try EmulatedHost(root: rig.dir.path, devices: [.vss], timeouts: timeouts)
        try host.start()
        let daemon = try DaemonUnderTest(dir: rig.dir.path, config: config, services: ["vss"])
        try daemon.start()
        #expect(await host.vss.device.waitForRegistration(count: 1, timeout: .seconds(30)), "\(daemon.log)")
        return (host, daemon)
    }

    @Test("backup: a writer blocks while frozen and completes after THAW")
    func backup() async throws {
        let rig = try LoopRig()
        defer { rig.cleanup() }
        let (host, daemon) = try await startDaemon(rig, config: rig.config())
        defer { host.stop(); daemon.stop() }
        #expect(await host.vss.freeze() == .ok, "\(daemon.log)")
        let w = rig.startWriter("during-backup")
        #expect(await writerResult(w, within: 0.5) == nil, "writer must block while frozen")
        #expect(await host.vss.thaw() == .ok)
        #expect(await writerResult(w, within: 5) == 0)
        #expect(!rig.isFrozen())
    }

    @Test("THAW never sent: the daemon's deadline thaws; a late THAW gets S_OK")
    func deadlineThaws() async throws {
        let rig = try LoopRig()
        defer { rig.cleanup() }
        // 5 s: long enough that a loaded machine (the whole suite runs in parallel) still
        // starts the writer while frozen; a 2 s deadline once expired before that.
        let (host, daemon) = try await startDaemon(rig, config: rig.config(deadline: 5))
        defer { host.stop(); daemon.stop() }
        let report = await host.vss.backup(hold: .milliseconds(10), sendThaw: false)
        #expect(report.freeze == .ok && report.thaw == nil)
        let clock = ContinuousClock()
        let t0 = clock.now
        let w = rig.startWriter("after-deadline")
        #expect(await writerResult(w, within: 0.5) == nil, "writer must block while frozen")
        #expect(await writerResult(w, within: 20) == 0, "the deadline must thaw")
        #expect(clock.now - t0 < .seconds(20))
        #expect(!rig.isFrozen())
        #expect(await host.vss.thaw() == .ok)
    }

    @Test("the daemon killed while frozen: a restart or thaw-all thaws within 5 s", arguments: ["restart", "thaw-all"])
    func killedWhileFrozen(how: String) async throws {
        let rig = try LoopRig()
        defer { rig.cleanup() }
        let (host, daemon) = try await startDaemon(rig, config: rig.config())
        defer { host.stop(); daemon.stop() }
        #expect(await host.vss.freeze() == .ok)
        daemon.kill9()
        let w = rig.startWriter("after-kill")
        #expect(await writerResult(w, within: 0.5) == nil, "still frozen after the daemon died")
        #expect(FileManager.default.fileExists(atPath: FrozenRecord.path(runtimeDirectory: daemon.runtimeDirectory)))
        let clock = ContinuousClock()
        let t0 = clock.now
        if how == "restart" {
            try daemon.start()
        } else {
            let thawAll = try ChildProcess(
                executable: try daemonBinary(),
                arguments: ["thaw-all", "--config", daemon.configFile, "--device-root", rig.dir.path, "--state-dir", daemon.stateDirectory],
                environment: ["PATH=/usr/bin:/bin", "SWIFT_BACKTRACE=enable=no"], outputFile: rig.dir.path + "/thaw-all.log")
            #expect(await eventually(timeout: .seconds(10)) { thawAll.poll() != nil })
            #expect(thawAll.poll().flatMap(ChildProcess.exitCode) == 0)
        }
        #expect(await writerResult(w, within: 5) == 0)
        #expect(clock.now - t0 < .seconds(5))
        #expect(!FileManager.default.fileExists(atPath: FrozenRecord.path(runtimeDirectory: daemon.runtimeDirectory)))
        #expect(!rig.isFrozen())
    }

    @Test("a duplicate FREEZE is answered S_OK and one THAW thaws")
    func duplicateFreeze() async throws {
        let rig = try LoopRig()
        defer { rig.cleanup() }
        let (host, daemon) = try await startDaemon(rig, config: rig.config())
        defer { host.stop(); daemon.stop() }
        #expect(await host.vss.freeze() == .ok)
        #expect(await host.vss.freeze() == .ok)
        let w = rig.startWriter("dup")
        #expect(await writerResult(w, within: 0.5) == nil)
        #expect(await host.vss.thaw() == .ok)
        #expect(await writerResult(w, within: 5) == 0)
        #expect(!rig.isFrozen())
    }

    @Test("a freeze hook that hangs is killed at hook_timeout_seconds; FREEZE fails and nothing stays frozen")
    func hangingHook() async throws {
        let rig = try LoopRig()
        defer { rig.cleanup() }
        let hooks = rig.dir.path + "/hooks"
        try FileManager.default.createDirectory(atPath: hooks, withIntermediateDirectories: false)
        let hook = hooks + "/10-hang"
        try "#!/bin/sh\n[ \"$1\" = freeze ] && exec sleep 600\nexit 0\n".write(toFile: hook, atomically: true, encoding: .utf8)
        chmod(hook, 0o755)
        let (host, daemon) = try await startDaemon(rig, config: rig.config(hooks: hooks, hookTimeout: 1))
        defer { host.stop(); daemon.stop() }
        let clock = ContinuousClock()
        let t0 = clock.now
        #expect(await host.vss.freeze() == .fail)
        #expect(clock.now - t0 < .seconds(10))
        #expect(await writerResult(rig.startWriter("not-frozen"), within: 5) == 0)
        #expect(!rig.isFrozen())
    }

    @Test("a FREEZE answered after the kernel's timeout: the host sees E_FAIL, the daemon re-registers and thaws")
    func lateFreezeReply() async throws {
        let rig = try LoopRig()
        defer { rig.cleanup() }
        let hooks = rig.dir.path + "/hooks"
        try FileManager.default.createDirectory(atPath: hooks, withIntermediateDirectories: false)
        let hook = hooks + "/10-slow"
        try "#!/bin/sh\n[ \"$1\" = freeze ] && sleep 2\nexit 0\n".write(toFile: hook, atomically: true, encoding: .utf8)
        chmod(hook, 0o755)
        let (host, daemon) = try await startDaemon(
            rig, config: rig.config(hooks: hooks, hookTimeout: 30),
            timeouts: KernelTimeouts(request: .seconds(30), freeze: .milliseconds(500)))
        defer { host.stop(); daemon.stop() }
        #expect(await host.vss.freeze() == .fail)
        // The daemon's reply comes ~2 s later: a violation, so the channel resets (which
        // thaws) and the daemon registers again.
        #expect(await host.vss.device.waitForRegistration(count: 2, timeout: .seconds(15)), "\(daemon.log)")
        #expect(host.vss.device.violations.contains { $0.contains("no request in flight") }, "\(host.vss.device.violations)")
        #expect(await writerResult(rig.startWriter("after-late"), within: 10) == 0)
        #expect(!rig.isFrozen())
    }
}
