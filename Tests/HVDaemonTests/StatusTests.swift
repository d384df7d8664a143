import Glibc
import HVDaemon
import HVEmulator
import HVServiceKit
import HVSystem
import HVTesting
import HVVSS
import HVWire
import Testing

@Suite("JSON writer and reader")
struct JSONTests {
    @Test("round-trips nested documents, escapes and extreme integers")
    func roundTrip() throws {
        let doc: JSONValue = .object([
            ("text", .string("quote \" backslash \\ newline \n tab \t nul \u{0} del \u{7F} é 🙂")),
            ("numbers", .array([.integer(0), .integer(-1), .integer(Int64.max), .integer(Int64.min)])),
            ("flags", .array([.bool(true), .bool(false), .null])),
            ("empty", .object([])), ("none", .array([])),
        ])
        for pretty in [false, true] {
            #expect(try JSONValue.parse(doc.serialized(pretty: pretty)) == doc)
        }
        #expect(JSONValue.string("a\"b\n\u{1}").serialized() == #""a\"b\n\u0001""#)
        #expect(doc["numbers"]?.arrayValue?[2].integerValue == Int64.max)
    }

    @Test("reads escapes written by other JSON writers")
    func foreignEscapes() throws {
        let v = try JSONValue.parse(#" { "k" : "\u00e9\/\ud83d\ude42\b\f" , "n": [ ] } "#)
        #expect(v["k"]?.stringValue == "é/🙂\u{8}\u{C}")
        #expect(v["n"] == .array([]))
    }

    @Test("rejects malformed and hostile input with an error, never a trap",
          arguments: ["", "{", "[1,]", "{\"a\" 1}", "\"abc", "tru", "1.5", "1e3", "99999999999999999999", "-9223372036854775809",
                      "\"\\ud800\"", "\"\\x\"", "[1] 2", "\"\u{1}\"", String(repeating: "[", count: 100_000)])
    func rejects(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
    }
}

@Suite("Status socket and hvguestctl status")
struct StatusSocketTests {
    @Test("socket names say which services a daemon runs")
    func socketNames() {
        #expect(StatusServer.socketName(for: []) == "status.sock")
        #expect(StatusServer.socketName(for: [.kvp, .fcopy]) == "status-kvp-fcopy.sock")
        #expect(StatusServer.services(inSocketName: "status-kvp-fcopy.sock") == [.kvp, .fcopy])
        #expect(StatusServer.services(inSocketName: "status.sock") == [])
        #expect(StatusServer.services(inSocketName: "status-nope.sock") == nil)
        #expect(StatusServer.services(inSocketName: "vss-frozen") == nil)
    }

    func makeDaemon(root: String, services: [ServiceName], toml: String = "") throws -> Daemon {
        let document = try ConfigDocument.parse([("test.toml", toml)], knownSections: DaemonConfiguration.knownSections)
        let configuration = try DaemonConfiguration(document: document, configDirectory: root + "/etc")
        let options = DaemonOptions(configFile: root + "/etc/hvguest.toml", deviceRoot: root, stateDirectory: root + "/state",
                                    services: services)
        let daemon = Daemon(options: options, configuration: configuration, logger: silentLogger())
        daemon.runnerSettings = fastRunnerSettings()
        return daemon
    }

    @Test("reports channel states, last requests and service details; exit codes 0, 1 and 2")
    func endToEnd() async throws {
        let dir = try TempDir()
        let host = try EmulatedHost(root: dir.path, devices: [.vss, .fcopy])
        try host.start()
        defer { host.stop() }
        try makeDirectories(dir.path + "/in")
        let daemon = try makeDaemon(root: dir.path, services: [.vss, .fcopy],
                                    toml: "[fcopy]\nallowed_roots = [\"\(dir.path)/in\"]\n")
        try daemon.start()
        defer { daemon.stop() }
        #expect(await host.waitForAllRegistered(timeout: .seconds(10)))
        // Emulated with no allow-list: FREEZE is refused (nothing is ever frozen here).
        #expect(await host.vss.freeze() == .fail)
        let job = await host.fcopy.copy(Array("hello".utf8), toDirectory: dir.path + "/in", name: "f.txt")
        #expect(job.errorCode == .ok)

        let runtime = dir.path + "/state/run"
        #expect(fileKind(runtime + "/status-vss-fcopy.sock") == .socket)
        let collection = StatusCollection.gather(runtimeDirectory: runtime)
        #expect(collection.health == .healthy)
        let services = collection.services
        #expect(services.compactMap { $0["service"]?.stringValue } == ["fcopy", "vss"])
        let vss = try #require(services.first { $0["service"]?.stringValue == "vss" })
        #expect(vss["state"]?.stringValue == "registered")
        #expect(vss["last_request"]?["operation"]?.stringValue == "FREEZE")
        #expect(vss["last_request"]?["hresult"]?.integerValue == Int64(HResult.fail.rawValue))
        #expect(vss["failures"]?.integerValue == 1)
        #expect(vss["details"]?["frozen"]?.stringValue == "no")
        let fcopy = try #require(services.first { $0["service"]?.stringValue == "fcopy" })
        #expect(fcopy["details"]?["last_copy"]?.stringValue == dir.path + "/in/f.txt")
        #expect(fcopy["details"]?["last_copy_result"]?.stringValue == "ok")
        #expect(fcopy["details"]?["last_copy_bytes"]?.stringValue == "5")
        #expect(collection.json["daemons"]?.arrayValue?.first?["daemon"]?["pid"]?.integerValue == Int64(getpid()))
        let table = collection.table()
        #expect(table.contains("SERVICE  STATE"))
        #expect(table.contains("FREEZE 0x80004005 (E_FAIL)"))

        // A second, stale socket (its daemon died): that daemon's services are unhealthy.
        let stale = try SeqPacket.listen(runtime + "/status-kvp.sock")
        stale.close()
        let withStale = StatusCollection.gather(runtimeDirectory: runtime)
        #expect(withStale.health == .unhealthy)
        #expect(withStale.services.first?["state"]?.stringValue == "daemon_unreachable")
        unlink(runtime + "/status-kvp.sock")

        daemon.stop()
        #expect(fileKind(runtime + "/status-vss-fcopy.sock") == .missing)
        #expect(StatusCollection.gather(runtimeDirectory: runtime).health == .unreachable)
    }

    @Test("an error state makes status unhealthy")
    func errorIsUnhealthy() {
        var s = ServiceStatus(service: .kvp)
        s.state = .error("boom")
        #expect(s.json()["healthy"] == .bool(false))
        s.state = .waitingForDevice("/dev/vmbus/hv_kvp")
        #expect(s.json()["healthy"] == .bool(true))
        #expect(s.json()["state"] == .string("waiting_for_device"))
    }

    @Test("only the daemon that runs VSS acts on the frozen record")
    func frozenRecordBelongsToVSS() async throws {
        let dir = try TempDir()
        let runtime = dir.path + "/state/run"
        // A path that does not exist: thawing it can touch nothing (ENOENT counts as not frozen).
        try FrozenRecord.write([dir.path + "/no-such-mount"], runtimeDirectory: runtime)
        let other = try makeDaemon(root: dir.path, services: [.fcopy])
        try other.start()
        other.stop()
        #expect(try FrozenRecord.read(runtimeDirectory: runtime) != nil)
        let vss = try makeDaemon(root: dir.path, services: [.vss])
        try vss.start()
        vss.stop()
        #expect(try FrozenRecord.read(runtimeDirectory: runtime) == nil)
    }
}
