import Foundation
import HVEmulator
import HVServiceKit
import HVShutdown
import HVSystem
import HVTesting
import HVWire
import Testing

/// An executor that proves "reply first, then act": it waits until the test has seen the host
/// receive its answer. Were the action run before the reply, the host would time out first.
final class AnswerFirstExecutor: PowerExecutor, @unchecked Sendable {
    let hostHasAnswer = Locked(false)
    let log = Locked<[(PowerAction, Bool, sawAnswer: Bool)]>([])
    func perform(_ action: PowerAction, force: Bool) -> PowerOutcome {
        let deadline = monotonicNanoseconds() + 60_000_000_000
        while !hostHasAnswer.current && monotonicNanoseconds() < deadline { sleepMilliseconds(2) }
        log.withLock { $0.append((action, force, hostHasAnswer.current)) }
        return .loggedOnly
    }
}

let blockShutdown = Inhibitor(who: "backup-job", what: ["shutdown"], why: "copying", mode: "block")
let blockSleep = Inhibitor(who: "player", what: ["sleep", "idle"], why: "playing", mode: "block")
let delayShutdown = Inhibitor(who: "NetworkManager", what: ["shutdown", "sleep"], why: "cleanup", mode: "delay")

@Suite struct ShutdownDecisionTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var flags: UInt32
        var inhibitors: [Inhibitor]?
        var expected: ShutdownDecision
        var testDescription: String { "flags \(flags) with \(inhibitors.map { $0.map(\.who) } ?? ["<unknown>"])" }
    }

    static func proceed(_ a: PowerAction, _ force: Bool) -> ShutdownDecision {
        .proceed(ShutdownRequest(action: a, force: force, reasonCode: 7, message: "m", origin: .userspace))
    }

    /// Every flag combination, with no inhibitor, a shutdown inhibitor, a sleep inhibitor, a delay
    /// inhibitor, and an inhibitor list that could not be read.
    static let cases: [Case] = {
        var out: [Case] = []
        let actions: [UInt32: PowerAction] = [0: .poweroff, 2: .reboot, 4: .hibernate]
        for flags: UInt32 in 0...7 {
            let force = flags & 1 != 0
            for locks in [[], [blockShutdown], [blockSleep], [delayShutdown], nil] as [[Inhibitor]?] {
                let expected: ShutdownDecision
                if let action = actions[flags & ~1] {
                    let inhibitedBy = action == .hibernate ? blockSleep : blockShutdown
                    if !force, locks?.contains(inhibitedBy) == true {
                        expected = .refuse(.machineLocked, reason: "")
                    } else {
                        expected = proceed(action, force)
                    }
                } else {
                    expected = .refuse(.fail, reason: "")
                }
                out.append(Case(flags: flags, inhibitors: locks, expected: expected))
            }
        }
        out.append(Case(flags: 8, inhibitors: [], expected: .refuse(.fail, reason: "")))
        out.append(Case(flags: 9, inhibitors: [], expected: .refuse(.fail, reason: "")))
        return out
    }()

    @Test(arguments: cases)
    func everyFlagCombination(_ c: Case) {
        let m = ShutdownMessage(reasonCode: 7, flags: ShutdownFlags(rawValue: c.flags), displayMessage: "m")
        let d = ShutdownDecision.decide(m, inhibitors: c.inhibitors, hibernationSupported: true)
        switch (d, c.expected) {
        case (.refuse(let a, _), .refuse(let b, _)): #expect(a == b)
        default: #expect(d == c.expected)
        }
    }

    @Test func hibernateWithoutSupportFails() {
        let m = ShutdownMessage(flags: [.hibernate, .force])
        guard case .refuse(.fail, _) = ShutdownDecision.decide(m, inhibitors: [], hibernationSupported: false) else {
            Issue.record("hibernate without support must fail")
            return
        }
    }

    @Test func hibernationSupportFromSysPowerState() throws {
        let dir = try TempDir()
        #expect(!hibernationSupported(deviceRoot: dir.path))
        try makeDirectories(dir.path + "/sys/power")
        try Sysfs.writeFile(dir.path + "/sys/power/state", contents: "freeze mem\n")
        #expect(!hibernationSupported(deviceRoot: dir.path))
        try Sysfs.writeFile(dir.path + "/sys/power/state", contents: "freeze mem disk\n")
        #expect(hibernationSupported(deviceRoot: dir.path))
    }

    @Test func parsesSystemdInhibitList() {
        let text = """
            GNOME Shell      1000 alice 2046 gnome-shell handle-power-key:handle-suspend-key:handle-hibernate-key GNOME handling keypresses block
            NetworkManager   0    root  812  NetworkManager sleep NetworkManager needs to turn off networks delay
            systemd-inhibit  0    root  4242 systemd-inhibit shutdown backup in progress block
            garbage line
            """
        let locks = SystemdInhibitorCheck.parse(text)
        #expect(locks.count == 3)
        #expect(locks[0].who == "GNOME Shell")
        #expect(locks[0].what == ["handle-power-key", "handle-suspend-key", "handle-hibernate-key"])
        #expect(locks[1].why == "NetworkManager needs to turn off networks")
        #expect(locks[1].mode == "delay")
        #expect(locks[2] == Inhibitor(who: "systemd-inhibit", what: ["shutdown"], why: "backup in progress", mode: "block"))
        #expect(locks[2].blocks(.poweroff) && locks[2].blocks(.reboot) && !locks[2].blocks(.hibernate))
        #expect(!locks[0].blocks(.poweroff))
    }

    @Test func systemctlArguments() {
        #expect(SystemctlPowerExecutor.arguments(.poweroff, force: false) == ["--no-block", "poweroff"])
        #expect(SystemctlPowerExecutor.arguments(.reboot, force: true) == ["-i", "--no-block", "reboot"])
        // Emulated: only logged, never run.
        let e = SystemctlPowerExecutor(isEmulated: true, logger: silentLogger(), systemctl: "/nonexistent")
        #expect(e.perform(.poweroff, force: true) == .loggedOnly)
    }
}

@Suite struct ShutdownChannelTests {
    /// Over the emulated channel: every flag combination with and without an inhibitor; what the
    /// host sees, and what the guest does (after answering).
    @Test(arguments: [false, true])
    func flagsOverTheChannel(inhibited: Bool) async throws {
        let executor = RecordingPowerExecutor()
        let dir = try TempDir()
        let service = shutdownService(dir.path, executor: executor, inhibitors: inhibited ? [blockShutdown, blockSleep] : [])
        let rig = try ICRig(makeHost: { try ShutdownHost(deviceRoot: $0) }, service: service)
        var expectedCalls: [RecordingPowerExecutor.Call] = []
        for flags: UInt32 in [0, 1, 2, 3, 4, 5, 6, 7] {
            let outcome = await blocking { rig.host.send(flags: ShutdownFlags(rawValue: flags), reason: flags, message: "req \(flags)") }
            let force = flags & 1 != 0
            let action: PowerAction? = [0: .poweroff, 2: .reboot, 4: .hibernate][flags & ~1]
            if action == nil {
                #expect(outcome.status == .fail, "flags \(flags)")
            } else if inhibited && !force {
                #expect(outcome.status == .machineLocked, "flags \(flags)")
            } else {
                #expect(outcome.status == .ok, "flags \(flags)")
                expectedCalls.append(RecordingPowerExecutor.Call(action: action!, force: force))
            }
            #expect(rig.host.componentStatus == .ok)
        }
        #expect(await eventually { executor.calls.count == expectedCalls.count })
        #expect(executor.calls == expectedCalls)
        // The host's reason and message reached the guest.
        #expect(
            service.actions.map(\.request.reasonCode)
                == expectedCalls.map { c in
                    UInt32((c.action == .reboot ? 2 : c.action == .hibernate ? 4 : 0) | (c.force ? 1 : 0))
                })
        #expect(service.actions.allSatisfy { $0.request.message == "req \($0.request.reasonCode)" })
        #expect(await eventually { rig.status[.shutdown]?.failures == (inhibited ? 5 : 2) })
    }

    @Test func repliesBeforeActing() async throws {
        let executor = AnswerFirstExecutor()
        let dir = try TempDir()
        let rig = try ICRig(makeHost: { try ShutdownHost(deviceRoot: $0) }, service: shutdownService(dir.path, executor: executor))
        let outcome = await blocking { rig.host.initiateShutdown(force: false, reason: 3, message: "maintenance") }
        #expect(outcome.status == .ok)
        executor.hostHasAnswer.withLock { $0 = true }
        #expect(await eventually { executor.log.current.count == 1 })
        #expect(executor.log.current.first?.sawAnswer == true)
        #expect(executor.log.current.first?.0 == .poweroff)
    }

    @Test func hooksRunInOrderWithATimeLimitBeforeTheAction() async throws {
        let dir = try TempDir()
        let hooksDir = dir.path + "/etc/shutdown.d"
        try makeDirectories(hooksDir)
        let out = dir.path + "/hooks.log"
        func hook(_ name: String, _ body: String, executable: Bool = true) throws {
            try "#!/bin/sh\n\(body)\n".write(toFile: hooksDir + "/" + name, atomically: true, encoding: .utf8)
            chmod(hooksDir + "/" + name, executable ? 0o755 : 0o644)
        }
        try hook("20-second", "echo \"second $1 $HVGUEST_SHUTDOWN_FORCE\" >> \(out)")
        try hook("10-first", "echo \"first $1 $HVGUEST_SHUTDOWN_REASON $HVGUEST_SHUTDOWN_MESSAGE $HVGUEST_SHUTDOWN_ORIGIN\" >> \(out)")
        try hook("15-slow", "sleep 30; echo slow >> \(out)")
        try hook("30-disabled", "echo disabled >> \(out)", executable: false)
        try hook("40-failing", "exit 3")
        let executor = RecordingPowerExecutor()
        let service = ShutdownService(
            hooks: ShutdownHooks(directory: hooksDir, timeoutSeconds: 2), executor: executor,
            inhibitorCheck: FixedInhibitorCheck([]), hibernationSupported: { false }, logger: silentLogger())
        #expect(service.hooks.hookNames() == ["10-first", "15-slow", "20-second", "40-failing"])
        let rig = try ICRig(makeHost: { try ShutdownHost(deviceRoot: $0) }, service: service)
        let outcome = await blocking { rig.host.initiateShutdown(force: true, reboot: true, reason: 42, message: "patching") }
        #expect(outcome.status == .ok)
        #expect(await eventually { executor.calls.count == 1 })
        let log = try String(contentsOfFile: out, encoding: .utf8)
        #expect(log == "first reboot 42 patching userspace\nsecond reboot 1\n")
        #expect(executor.calls == [RecordingPowerExecutor.Call(action: .reboot, force: true)])
    }

    @Test func malformedRequestGetsEFail() async throws {
        let dir = try TempDir()
        let executor = RecordingPowerExecutor()
        let rig = try ICRig(makeHost: { try ShutdownHost(deviceRoot: $0) }, service: shutdownService(dir.path, executor: executor))
        let response = await blocking { () -> [UInt8]? in
            _ = try? rig.host.ensureNegotiated(timeoutMilliseconds: 5_000)
            let short = rig.host.uio.makeRequest(body: [UInt8](repeating: 0, count: 40))
            return try? rig.host.uio.send(icMessage: short, timeoutMilliseconds: 5_000)
        }
        let header = try ICMessageHeader.decode(from: try #require(response))
        #expect(header.status == .fail)
        sleepMilliseconds(50)
        #expect(executor.calls.isEmpty)
    }

    @Test func componentStatusFollowsTheGuest() async throws {
        let dir = try TempDir()
        let host = try ShutdownHost(deviceRoot: dir.path)
        defer { host.uio.close() }
        try host.uio.startAcceptingInBackground()
        #expect(host.componentStatus == .noContact)
        let none = await blocking { host.initiateShutdown(timeoutMilliseconds: 100) }
        #expect(none.status == nil)
        #expect(host.componentStatus == .noContact)
        let runner = try ICChannelRunner(
            service: shutdownService(dir.path), environment: testEnvironment(root: dir.path),
            status: StatusBoard(), settings: fastICSettings())
        try runner.start()
        #expect(await eventually { host.uio.negotiatedVersions != nil })
        #expect(host.componentStatus == .ok)
        runner.stop()
        let after = await blocking { host.initiateShutdown(timeoutMilliseconds: 300) }
        #expect(after.status == nil)
        #expect(host.componentStatus == .lostCommunication)
    }
}

@Suite struct KernelModeShutdownTests {
    @Test func recognisesHVUtilsLines() {
        let record = "6,1234,5678,-;hv_utils: Shutdown request received - graceful shutdown initiated"
        #expect(HostShutdownRecognizer.recognize(record[...]) == .poweroff)
        #expect(HostShutdownRecognizer.recognize("hv_utils: Restart request received - graceful restart initiated") == .reboot)
        #expect(HostShutdownRecognizer.recognize("6,9,9,-;hv_utils: Hibernation request received") == .hibernate)
        #expect(HostShutdownRecognizer.recognize("6,1,1,-;usb 1-1: new device") == nil)
        #expect(HostShutdownRecognizer.recognize("") == nil)
    }

    @Test func watcherRunsHooksForNewRecordsOnly() async throws {
        let dir = try TempDir()
        let kmsg = dir.path + "/kmsg"
        // An old record from before start must not trigger anything.
        try "6,1,1,-;hv_utils: Shutdown request received - graceful shutdown initiated\n".write(
            toFile: kmsg, atomically: false, encoding: .utf8)
        let hooksDir = dir.path + "/shutdown.d"
        try makeDirectories(hooksDir)
        try "#!/bin/sh\necho \"$1 $HVGUEST_SHUTDOWN_ORIGIN\" >> \(dir.path)/ran\n".write(
            toFile: hooksDir + "/10-note", atomically: true, encoding: .utf8)
        chmod(hooksDir + "/10-note", 0o755)
        let watcher = try KernelShutdownWatcher(
            kernelLogPath: kmsg, hooks: ShutdownHooks(directory: hooksDir, timeoutSeconds: 2), logger: silentLogger())
        watcher.filePollMilliseconds = 10
        try watcher.start()
        defer { watcher.stop() }
        let h = try #require(FileHandle(forWritingAtPath: kmsg))
        h.seekToEndOfFile()
        h.write(Data("6,2,2,-;e1000: link up\n6,3,3,-;hv_utils: Restart request rece".utf8))
        h.write(Data("ived - graceful restart initiated\n".utf8))
        h.closeFile()
        #expect(await eventually { watcher.recognized == [.reboot] })
        #expect(try String(contentsOfFile: dir.path + "/ran", encoding: .utf8) == "reboot kernel\n")
    }
}
