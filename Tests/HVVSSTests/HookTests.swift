import Foundation
import HVSystem
import Testing

@testable import HVVSS

private func writeHook(_ dir: TempDir, _ name: String, _ body: String, executable: Bool = true) throws {
    let path = dir.file(name)
    try ("#!/bin/sh\n" + body + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    try FileManager.default.setAttributes([.posixPermissions: executable ? 0o755 : 0o644], ofItemAtPath: path)
}

@Suite struct HookTests {
    @Test func hooksRunInNameOrderWithTheirArgumentAndReverseOnThaw() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let log = dir.file("calls.log")
        let body = "echo \"$(basename \"$0\") $1 $HVGUEST_HOOK_PHASE\" >> \(log)"
        try writeHook(dir, "20-second", body)
        try writeHook(dir, "10-first", body)
        try writeHook(dir, "30-disabled", body, executable: false)
        try writeHook(dir, ".hidden", body)
        try writeHook(dir, "40-old.dpkg-old", body)
        try writeHook(dir, "50-backup~", body)
        try FileManager.default.createDirectory(atPath: dir.file("60-dir"), withIntermediateDirectories: false)
        let runner = DirectoryHookRunner(directory: dir.path, timeoutSeconds: 10)
        #expect(runner.hookNames() == ["10-first", "20-second"])

        let run = try TempDir()
        defer { run.cleanup() }
        let freezer = RecordingFreezer()
        let engine = FreezeEngine(
            runtimeDirectory: run.path, hooks: runner, failOnHookError: true, thawDeadlineSeconds: 600,
            logger: testLogger(), logGate: .init(), makeFreezer: { _ in freezer })
        defer { engine.stop() }
        let f = engine.freeze([FreezeTarget(mountPoint: "/a", device: .init(major: 8, minor: 1), fileSystemType: "ext4", source: "/dev/sda1")])
        #expect(f.status == .ok)
        #expect(f.hooks.map(\.outcome) == [.succeeded, .succeeded])
        engine.thaw(reason: .hostRequest)
        engine.waitForHooks()
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(
            lines == [
                "10-first freeze freeze", "20-second freeze freeze", "20-second thaw thaw", "10-first thaw thaw",
            ])
        #expect(engine.status().lastHooks.map(\.phase) == [.thaw, .thaw])
    }

    @Test func failingHookFailsTheFreezeAndGetsFreezeFail() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let log = dir.file("calls.log")
        try writeHook(dir, "10-ok", "echo \"ok $1\" >> \(log)")
        try writeHook(dir, "20-bad", "echo \"bad $1\" >> \(log); echo 'database said no' >&2; [ \"$1\" != freeze ]")
        try writeHook(dir, "30-never", "echo \"never $1\" >> \(log)")
        let freezer = RecordingFreezer()
        let engine = FreezeEngine(
            runtimeDirectory: dir.file("run"), hooks: DirectoryHookRunner(directory: dir.path, timeoutSeconds: 10),
            failOnHookError: true, thawDeadlineSeconds: 600, logger: testLogger(), logGate: .init(),
            makeFreezer: { _ in freezer })
        defer { engine.stop() }
        let f = engine.freeze([FreezeTarget(mountPoint: "/a", device: .init(major: 8, minor: 1), fileSystemType: "ext4", source: "/dev/sda1")])
        #expect(f.status == .fail)
        #expect(freezer.calls.isEmpty)
        #expect(f.hooks[1].outcome == .exited(1))
        #expect(f.hooks[1].output.contains("database said no"))
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(lines == ["ok freeze", "bad freeze", "bad freeze-fail", "ok freeze-fail"])
    }

    @Test func timeoutKillsTheHooksWholeProcessGroup() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let pidFile = dir.file("child.pid")
        // The hook starts a helper in its process group and waits forever.
        try writeHook(dir, "10-slow", "sleep 60 & echo $! > \(pidFile); echo started; wait")
        let runner = DirectoryHookRunner(directory: dir.path, timeoutSeconds: 0.5)
        let start = monotonicNanoseconds()
        let r = runner.run("10-slow", phase: .freeze, mountPoints: ["/a"])
        let elapsed = Double(monotonicNanoseconds() - start) / 1e9
        #expect(r.outcome == .timedOut(seconds: 0.5))
        #expect(elapsed >= 0.45 && elapsed < 3)
        #expect(r.output.contains("started"))
        let helper = try #require(Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        // The helper was SIGKILLed with its group; give the kernel a moment to reap it (init adopts it).
        var alive = true
        for _ in 0..<100 {
            if kill(helper, 0) != 0 || isZombie(helper) { alive = false; break }
            usleep(20_000)
        }
        #expect(!alive)
    }

    @Test func backgroundHelperThatOutlivesAFinishedHookIsNotWaitedFor() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let pidFile = dir.file("child.pid")
        try writeHook(dir, "10-lock", "sleep 30 & echo $! > \(pidFile); echo done")
        let start = monotonicNanoseconds()
        let r = DirectoryHookRunner(directory: dir.path, timeoutSeconds: 10).run("10-lock", phase: .freeze, mountPoints: [])
        #expect(r.outcome == .succeeded)
        #expect(Double(monotonicNanoseconds() - start) / 1e9 < 2)
        if let pid = Int32((try? String(contentsOfFile: pidFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") {
            kill(pid, SIGKILL)
        }
    }

    @Test func outputIsBoundedAndSignalsAreReported() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try writeHook(dir, "big", "head -c 100000 /dev/zero | tr '\\0' x")
        try writeHook(dir, "suicide", "kill -TERM $$")
        let runner = DirectoryHookRunner(directory: dir.path, timeoutSeconds: 10, outputLimit: 1000)
        let big = runner.run("big", phase: .thaw, mountPoints: [])
        #expect(big.outcome == .succeeded)
        #expect(big.output.hasPrefix(String(repeating: "x", count: 1000)))
        #expect(big.output.hasSuffix("[output truncated]"))
        #expect(runner.run("suicide", phase: .thaw, mountPoints: []).outcome == .killed(signal: SIGTERM))
        #expect(
            runner.run("missing", phase: .thaw, mountPoints: []).outcome.isSuccess == false)
    }
}

private func isZombie(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
    guard let close = stat.lastIndex(of: ")") else { return false }
    return stat[stat.index(close, offsetBy: 2)] == "Z"
}
