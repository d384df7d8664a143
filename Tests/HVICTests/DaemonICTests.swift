import HVDaemon
import HVEmulator
import HVServiceKit
import HVShutdown
import HVSystem
import HVTesting
import HVTimeSync
import Testing

@Suite struct ICConfigurationTests {
    func parse(_ text: String) throws(ConfigError) -> DaemonConfiguration {
        let doc = try ConfigDocument.parse([("t.toml", text)], knownSections: DaemonConfiguration.knownSections)
        return try DaemonConfiguration(document: doc, configDirectory: "/etc/hvguest")
    }

    @Test func defaultsAreKernelMode() throws {
        let c = try parse("")
        #expect(c.shutdown == ShutdownConfiguration(hooksDirectory: "/etc/hvguest/shutdown.d"))
        #expect(c.timeSync == TimeSyncConfiguration())
        #expect(c.timeSync.discipline == ClockDiscipline.Settings(stepThresholdSeconds: 0.1, slewMaxPPM: 500, staleSeconds: 600))
        #expect(c.heartbeat.mode == .kernel)
    }

    @Test func everyKeyIsRead() throws {
        let c = try parse(
            """
            [shutdown]
            mode = "userspace"
            hooks_directory = "/srv/hooks"
            hook_timeout_seconds = 5
            watch_kernel_log = false
            [timesync]
            mode = "userspace"
            output = "chrony"
            step_threshold_ms = 250
            slew_max_ppm = 200
            stale_seconds = 60
            chrony_socket = "/run/x.sock"
            ptp_poll_seconds = 2
            kernel_discipline = true
            warn_offset_ms = 5
            [heartbeat]
            mode = "userspace"
            """)
        #expect(
            c.shutdown
                == ShutdownConfiguration(
                    mode: .userspace, hooksDirectory: "/srv/hooks", hookTimeoutSeconds: 5,
                    watchKernelLog: false))
        #expect(
            c.timeSync
                == TimeSyncConfiguration(
                    mode: .userspace, output: .chrony, stepThresholdMilliseconds: 250, slewMaxPPM: 200, staleSeconds: 60,
                    chronySocket: "/run/x.sock", ptpPollSeconds: 2, kernelDiscipline: true, warnOffsetMilliseconds: 5))
        #expect(c.heartbeat.mode == .userspace)
    }

    @Test(arguments: [
        ("[timesync]\nslew_max_ppm = 900\n", "timesync.slew_max_ppm"),
        ("[timesync]\noutput = \"ntp\"\n", "timesync.output"),
        ("[timesync]\nstep_treshold_ms = 1\n", "timesync.step_treshold_ms"),
        ("[shutdown]\nhooks_directory = \"hooks\"\n", "shutdown.hooks_directory"),
        ("[shutdown]\nmode = \"user\"\n", "shutdown.mode"),
        ("[heartbeat]\ninterval = 1\n", "heartbeat.interval"),
    ])
    func badValuesNameTheKey(_ text: String, _ key: String) {
        do {
            _ = try parse(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.key == key)
        }
    }
}

@Suite struct DaemonICTests {
    /// hvguestd with all three ICs in userspace mode against the emulator's UIO devices.
    @Test func daemonAnswersTheICsInUserspaceMode() async throws {
        let dir = try TempDir("hvguest-dic-")
        let root = dir.path + "/root"
        let host = try EmulatedHost(root: root, devices: [], ics: Set(ICKind.allCases))
        try host.start()
        defer { host.stop() }
        let doc = try ConfigDocument.parse(
            [("t.toml", "[shutdown]\nmode = \"userspace\"\n[timesync]\nmode = \"userspace\"\n[heartbeat]\nmode = \"userspace\"\n")],
            knownSections: DaemonConfiguration.knownSections)
        let options = DaemonOptions(deviceRoot: root, stateDirectory: dir.path + "/state", services: [.shutdown, .timesync, .heartbeat])
        let daemon = Daemon(
            options: options, configuration: try DaemonConfiguration(document: doc, configDirectory: dir.path),
            logger: silentLogger())
        try daemon.start()
        defer { daemon.stop() }
        let heartbeat = try #require(host.heartbeat)
        let timeSync = try #require(host.timeSync)
        let shutdown = try #require(host.shutdown)
        #expect(await blocking { heartbeat.beat(timeoutMilliseconds: 20_000) }.echoed == 1)
        // Emulated: the clock is never touched, the power action only logged.
        #expect(await blocking { timeSync.sendSample(offsetMilliseconds: 3_000, sync: true, timeoutMilliseconds: 20_000) }.status == .ok)
        #expect(await blocking { shutdown.initiateShutdown(force: true, timeoutMilliseconds: 20_000) }.status == .ok)
        #expect(await eventually { daemon.status[.timesync]?.details["last_action"]?.hasPrefix("step ") == true })
        let offset = try #require(daemon.status[.timesync]?.details["offset_ms"].flatMap(Double.init))
        #expect(abs(offset - 3000) < 50)
        #expect(host.icHosts.allSatisfy { $0.componentStatus == .ok })
        for name in [ServiceName.shutdown, .timesync, .heartbeat] {
            #expect(daemon.status[name]?.state.isHealthy == true, "\(name)")
        }
        daemon.stop()
        #expect(await blocking { heartbeat.beat(timeoutMilliseconds: 300) }.outcome.status == nil)
        #expect(heartbeat.componentStatus == .lostCommunication)
    }
}

@Suite struct TakeoverRecoveryTests {
    func daemon(_ tree: FakeSysfs, heartbeatMode: String) throws -> Daemon {
        let doc = try ConfigDocument.parse(
            [("t.toml", "[heartbeat]\nmode = \"\(heartbeatMode)\"\n")],
            knownSections: DaemonConfiguration.knownSections)
        let options = DaemonOptions(deviceRoot: tree.root, stateDirectory: tree.root + "/state", services: [.heartbeat])
        return Daemon(
            options: options, configuration: try DaemonConfiguration(document: doc, configDirectory: tree.root + "/etc"),
            logger: silentLogger())
    }

    /// A run that crashed left the heartbeat device on uio_hv_generic; the next run in kernel mode
    /// gives it back to hv_utils.
    @Test func kernelModeGivesBackWhatACrashedRunTook() throws {
        let tree = try FakeSysfs()
        try makeDirectories(tree.device + "/uio/uio3")
        try makeDirectories(tree.root + "/state/run")
        try Sysfs.writeFile(tree.root + "/state/run/ic-takeovers", contents: "\(tree.instance) hv_utils\n")
        let d = try daemon(tree, heartbeatMode: "kernel")
        try d.start()
        d.stop()
        #expect(try Sysfs.readAttribute(tree.driver("uio_hv_generic") + "/unbind") == tree.instance)
        #expect(try Sysfs.readAttribute(tree.driver("hv_utils") + "/bind") == tree.instance)
        #expect(!PathOps.exists(tree.root + "/state/run/ic-takeovers"))
    }

    /// In userspace mode the next run adopts it and gives it back on a clean stop.
    @Test func userspaceModeAdoptsAndReleasesOnStop() async throws {
        let tree = try FakeSysfs()
        try makeDirectories(tree.device + "/uio/uio3")
        try makeDirectories(tree.root + "/state/run")
        try Sysfs.writeFile(tree.root + "/state/run/ic-takeovers", contents: "\(tree.instance) hv_utils\n")
        let d = try daemon(tree, heartbeatMode: "userspace")
        try d.start()
        #expect(try Sysfs.readAttribute(tree.driver("hv_utils") + "/bind") == "")
        #expect(PathOps.exists(tree.root + "/state/run/ic-takeovers"))
        d.stop()
        #expect(try Sysfs.readAttribute(tree.driver("hv_utils") + "/bind") == tree.instance)
        #expect(!PathOps.exists(tree.root + "/state/run/ic-takeovers"))
    }

    /// Devices that were on uio_hv_generic before us (the emulator's, or an admin's) stay there.
    @Test func foreignUIODevicesAreNeverReleased() throws {
        let tree = try FakeSysfs()
        try makeDirectories(tree.device + "/uio/uio3")
        let d = try daemon(tree, heartbeatMode: "userspace")
        try d.start()
        d.stop()
        #expect(try Sysfs.readAttribute(tree.driver("uio_hv_generic") + "/unbind") == "")
        #expect(try Sysfs.readAttribute(tree.driver("hv_utils") + "/bind") == "")
    }
}
