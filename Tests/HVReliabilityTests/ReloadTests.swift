import Foundation
import HVEmulator
import HVSystem
import HVTesting
import Testing

@Suite("SIGHUP: the real daemon re-reads its configuration")
struct ReloadTests {
    private static func config(_ level: String) -> String { "[log]\ntarget = \"stderr\"\nlevel = \"\(level)\"\n" }

    @Test("a bad configuration changes nothing; a good one applies log.level to running services")
    func sighupAppliesTheLogLevel() async throws {
        let dir = try TempDir("hvrel-reload-")
        let host = try EmulatedHost(root: dir.path, devices: [.kvp])
        try host.start()
        defer { host.stop() }
        let daemon = try DaemonUnderTest(dir: dir.path, config: Self.config("info"), services: ["kvp"])
        try daemon.start()
        defer { daemon.stop() }
        #expect(await host.kvp.device.waitForRegistration(count: 1, timeout: .seconds(30)), "\(daemon.log)")

        // At info level a successful SET is not logged.
        #expect(await host.kvp.set(pool: .external, key: "before-reload", value: "1") == .ok)

        // An invalid level: the error is logged and the running configuration stays.
        try "[log]\ntarget = \"stderr\"\nlevel = \"loud\"\n".write(toFile: daemon.configFile, atomically: true, encoding: .utf8)
        daemon.process?.signal(SIGHUP)
        #expect(await eventually(timeout: .seconds(10)) { daemon.log.contains("configuration not reloaded") }, "\(daemon.log)")
        #expect(await host.kvp.set(pool: .external, key: "after-bad-reload", value: "2") == .ok)

        // debug: the SET after the reload is logged by the KVP channel's logger, which was
        // made before the reload.
        try Self.config("debug").write(toFile: daemon.configFile, atomically: true, encoding: .utf8)
        daemon.process?.signal(SIGHUP)
        #expect(await eventually(timeout: .seconds(10)) { daemon.log.contains("log level info → debug") }, "\(daemon.log)")
        #expect(await host.kvp.set(pool: .external, key: "after-good-reload", value: "3") == .ok)
        #expect(await eventually(timeout: .seconds(10)) { daemon.log.contains("after-good-reload") }, "\(daemon.log)")
        let log = daemon.log
        #expect(!log.contains("before-reload"))
        #expect(!log.contains("after-bad-reload"))
        #expect(daemon.process?.isRunning == true)
        #expect(daemon.stop().map(ChildProcess.exitCode) == 0)
    }
}
