import Foundation
import HVServiceKit
import Logging
import Testing

@testable import HVDaemon

/// A temporary directory holding `hvguest.toml` and `hvguest.toml.d/`, removed afterwards.
private final class ConfigDir {
    let path: String
    var main: String { path + "/hvguest.toml" }

    init() throws {
        path = NSTemporaryDirectory() + "hvguest-config-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func write(_ relative: String, _ text: String) throws {
        let full = path + "/" + relative
        try FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: true, encoding: .utf8)
    }

    func load(_ known: Set<String> = ["vss", "kvp", "fcopy"]) throws(ConfigError) -> ConfigDocument {
        try ConfigDocument.load(path: main, knownSections: known)
    }
}

private func expectConfigError(_ body: () throws -> Void) -> ConfigError? {
    do {
        try body()
        Issue.record("expected a ConfigError")
        return nil
    } catch let e as ConfigError {
        return e
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

@Suite struct ConfigDocumentTests {
    @Test func validFileGivesTypedValuesAndDaemonSettings() throws {
        let dir = try ConfigDir()
        try dir.write(
            "hvguest.toml",
            """
            # hvguest configuration
            [daemon]
            reconnect_max_seconds = 12.5
            watchdog = false

            [log]
            target = "stderr"   # for the test
            level = "debug"

            [vss]
            mountpoints = ["/mnt/a", "/mnt/b/"]
            thaw_deadline_seconds = 20
            """)
        let doc = try dir.load()
        #expect(doc.files == [dir.main])
        let settings = try DaemonSettings(document: doc)
        var expected = DaemonSettings()
        expected.reconnectMaxSeconds = 12.5
        expected.watchdog = false
        expected.logTarget = .stderr
        expected.logLevel = .debug
        #expect(settings == expected)

        let vss = doc.section("vss")
        #expect(try vss.absolutePaths("mountpoints", default: []) == ["/mnt/a", "/mnt/b"])
        #expect(try vss.integer("thaw_deadline_seconds", default: 10, range: 1...600) == 20)
        #expect(vss.location(of: "thaw_deadline_seconds") == ConfigLocation(file: dir.main, line: 12))
        #expect(doc.section("log").location(of: "target") == ConfigLocation(file: dir.main, line: 7))
        #expect(doc.sectionNames == ["daemon", "log", "vss"])
    }

    @Test func dropInsOverrideInNameOrderAndArraysAreReplaced() throws {
        let dir = try ConfigDir()
        try dir.write(
            "hvguest.toml",
            """
            [vss]
            mountpoints = ["/a", "/b"]
            thaw_deadline_seconds = 5
            [vss.hooks]
            freeze = "/x"
            thaw = "/y"
            """)
        try dir.write("hvguest.toml.d/20-late.toml", "[vss]\n\nthaw_deadline_seconds = 7\n")
        try dir.write("hvguest.toml.d/10-early.toml", "[vss]\nthaw_deadline_seconds = 6\nmountpoints = [\"/c\"]\nhooks.thaw = \"/z\"\n")
        try dir.write("hvguest.toml.d/30-ignored.conf", "[vss]\nthaw_deadline_seconds = 99\n")
        try dir.write("hvguest.toml.d/.40-hidden.toml", "[vss]\nthaw_deadline_seconds = 98\n")

        let doc = try dir.load()
        #expect(doc.files == [dir.main, dir.path + "/hvguest.toml.d/10-early.toml", dir.path + "/hvguest.toml.d/20-late.toml"])
        let vss = doc.section("vss")
        #expect(try vss.stringArray("mountpoints", default: []) == ["/c"])
        #expect(try vss.integer("thaw_deadline_seconds", default: 10, range: 1...600) == 7)
        #expect(vss.location(of: "thaw_deadline_seconds") == ConfigLocation(file: dir.path + "/hvguest.toml.d/20-late.toml", line: 3))
        #expect(vss.location(of: "mountpoints") == ConfigLocation(file: dir.path + "/hvguest.toml.d/10-early.toml", line: 3))
        // Tables merge key by key.
        #expect(vss.values["hooks"] == .table(["freeze": .string("/x"), "thaw": .string("/z")]))
        #expect(vss.location(of: "hooks") == ConfigLocation(file: dir.path + "/hvguest.toml.d/10-early.toml", line: 4))
    }

    @Test func wrongTypeNamesFileLineAndKey() throws {
        let dir = try ConfigDir()
        try dir.write(
            "hvguest.toml",
            """
            [kvp]
            ip_config_backend = "dry-run"

            # VSS settings

            [vss]
            thaw_deadline_seconds = "x"
            """)
        let doc = try dir.load()
        let error = expectConfigError {
            _ = try doc.section("vss").integer("thaw_deadline_seconds", default: 10, range: 1...600)
        }
        #expect(error?.description == "\(dir.main):7: vss.thaw_deadline_seconds: expected an integer, got a string \"x\"")
    }

    @Test func outOfRangeValueIsRejected() throws {
        let dir = try ConfigDir()
        try dir.write("hvguest.toml", "[daemon]\nreconnect_max_seconds = 7200\n")
        let error = expectConfigError { _ = try DaemonSettings(document: try dir.load()) }
        #expect(error?.description == "\(dir.main):2: daemon.reconnect_max_seconds: must be between 1.0 and 3600.0 seconds, got 7200.0")
    }

    @Test func badChoiceIsRejected() throws {
        let dir = try ConfigDir()
        try dir.write("hvguest.toml", "[log]\nlevel = \"verbose\"\n")
        let error = expectConfigError { _ = try DaemonSettings(document: try dir.load()) }
        #expect(error?.location == ConfigLocation(file: dir.main, line: 2))
        #expect(error?.key == "log.level")
        #expect(error?.message.contains("\"verbose\"") == true)
    }

    @Test func unknownKeyIsRejectedWithItsLine() throws {
        let dir = try ConfigDir()
        try dir.write("hvguest.toml", "[log]\nlevel = \"info\"\n\"targte\" = \"journal\" # typo\n")
        let error = expectConfigError { _ = try DaemonSettings(document: try dir.load()) }
        #expect(error?.location == ConfigLocation(file: dir.main, line: 3))
        #expect(error?.key == "log.targte")
        #expect(error?.message.hasPrefix("unknown key") == true)
    }

    @Test func unknownSectionsAreNamed() throws {
        let dir = try ConfigDir()
        try dir.write("hvguest.toml", "[vss]\n\n[vsss]\nx = 1\n[fcopyy]\n")
        let error = expectConfigError { _ = try dir.load() }
        #expect(error?.location == ConfigLocation(file: dir.main, line: 5))  // "fcopyy" sorts first
        #expect(error?.message.hasPrefix("unknown sections [fcopyy], [vsss] (known sections: daemon, fcopy, kvp, log, vss)") == true)
    }

    @Test func topLevelValueIsNotASection() throws {
        let dir = try ConfigDir()
        try dir.write("hvguest.toml", "# comment\nvss = 3\n")
        let error = expectConfigError { _ = try dir.load() }
        #expect(error?.description == "\(dir.main):2: vss: expected a table (a [vss] section), got an integer 3")
    }

    @Test func syntaxErrorGivesLineAndColumn() throws {
        let dir = try ConfigDir()
        try dir.write("hvguest.toml", "[vss]\nthaw_deadline_seconds = 5\nmountpoints = [\"/a\",\n")
        try dir.write("hvguest.toml.d/50-bad.toml", "[vss]\n\nthaw_deadline_seconds == 5\n")
        let error = expectConfigError { _ = try dir.load() }
        #expect(error?.location.file == dir.main)
        // An unterminated array is reported where it opens.
        #expect(error?.location.line == 3)
        #expect(error?.description == "\(dir.main):3: syntax error at column 15: the array is not closed (expected ']')")

        try dir.write("hvguest.toml", "")
        let error2 = expectConfigError { _ = try dir.load() }
        #expect(error2?.location == ConfigLocation(file: dir.path + "/hvguest.toml.d/50-bad.toml", line: 3))
        #expect(error2?.description == "\(dir.path)/hvguest.toml.d/50-bad.toml:3: syntax error at column 24: expected a value, found '='")
    }

    @Test func missingExplicitFileIsAnError() throws {
        let dir = try ConfigDir()
        let error = expectConfigError { _ = try dir.load() }
        #expect(error?.location == ConfigLocation(file: dir.main))
        #expect(error?.message == "cannot read configuration: No such file or directory")
    }

    @Test func missingDefaultFileMeansDefaultsButDropInsStillApply() throws {
        let dir = try ConfigDir()
        let doc = try ConfigDocument.load(mainFile: dir.main, mustExist: false, knownSections: [])
        #expect(doc.files.isEmpty)
        #expect(try DaemonSettings(document: doc) == DaemonSettings())

        try dir.write("hvguest.toml.d/10-log.toml", "[log]\ntarget = \"journal\"\n")
        let withDropIn = try ConfigDocument.load(mainFile: dir.main, mustExist: false, knownSections: [])
        #expect(try DaemonSettings(document: withDropIn).logTarget == .journal)
    }

    @Test func emptyFileMeansDefaults() throws {
        let dir = try ConfigDir()
        try dir.write("hvguest.toml", "")
        let doc = try dir.load()
        #expect(doc.files == [dir.main])
        #expect(doc.sectionNames.isEmpty)
        let settings = try DaemonSettings(document: doc)
        #expect(settings == DaemonSettings())
        #expect(settings.logTarget == .auto && settings.logLevel == .info)
        #expect(settings.reconnectMaxSeconds == 30 && settings.watchdog)
        // An absent section still answers with defaults, and names the file when complaining.
        #expect(try doc.section("vss").integer("thaw_deadline_seconds", default: 10, range: 1...600) == 10)
        #expect(doc.section("vss").location(of: "x") == ConfigLocation(file: dir.main))
    }

    @Test func invalidUTF8IsReported() throws {
        let dir = try ConfigDir()
        try Data([0x5B, 0x76, 0x73, 0x73, 0x5D, 0x0A, 0xFF, 0xFE]).write(to: URL(fileURLWithPath: dir.main))
        let error = expectConfigError { _ = try dir.load() }
        #expect(error?.description == "\(dir.main): not valid UTF-8")
    }

    @Test func valuesConvertToNeutralTypes() throws {
        let doc = try ConfigDocument.parse(
            [("mem.toml", "[kvp]\ni = -3\nf = 1.5\nb = true\ns = 'lit'\na = [1, \"two\", [3]]\nt = { x = 1 }\nd = 1979-05-27\n")],
            knownSections: ["kvp"])
        let kvp = doc.section("kvp")
        #expect(kvp.values["i"] == .integer(-3))
        #expect(kvp.values["f"] == .float(1.5))
        #expect(kvp.values["b"] == .bool(true))
        #expect(kvp.values["s"] == .string("lit"))
        #expect(kvp.values["a"] == .array([.integer(1), .string("two"), .array([.integer(3)])]))
        #expect(kvp.values["t"] == .table(["x": .integer(1)]))
        #expect(kvp.values["d"] == .string("1979-05-27"))
    }
}

@Suite struct ConfigLocationTests {
    @Test func headersBareQuotedAndDottedKeysHaveTheirLines() throws {
        let doc = try ConfigDocument.parse([("f.toml", """
            [vss]   # the VSS section
            a = 1
              "quoted key" = 2
            'literal' = 3
            hooks . freeze = "/x"  # dotted, with spaces
            [ vss.hooks2 ]
            thaw = "/y"
            [kvp]
            text = \"\"\"
            fake = 1
            \"\"\"
            list = [
              { y = 2 },
            ]
            after = 1
            """)], knownSections: ["vss", "kvp"])
        let vss = doc.section("vss")
        #expect(vss.location(of: "a") == ConfigLocation(file: "f.toml", line: 2))
        #expect(vss.location(of: "quoted key") == ConfigLocation(file: "f.toml", line: 3))
        #expect(vss.location(of: "literal") == ConfigLocation(file: "f.toml", line: 4))
        #expect(vss.location(of: "hooks") == ConfigLocation(file: "f.toml", line: 5))
        #expect(vss.location(of: "hooks2") == ConfigLocation(file: "f.toml", line: 6))
        let kvp = doc.section("kvp")
        #expect(kvp.location(of: "text") == ConfigLocation(file: "f.toml", line: 9))
        #expect(kvp.values["fake"] == nil)
        #expect(kvp.location(of: "list") == ConfigLocation(file: "f.toml", line: 12))
        #expect(kvp.location(of: "after") == ConfigLocation(file: "f.toml", line: 15))
    }

    @Test func keysInInlineTablesAndDottedTopLevelKeysHaveTheirLines() throws {
        // (The former key scanner could not place a key inside an inline table.)
        let doc = try ConfigDocument.parse([("f.toml", "\nvss = { thaw_deadline_seconds = \"x\" }\n")], knownSections: ["vss"])
        #expect(doc.section("vss").location(of: "thaw_deadline_seconds") == ConfigLocation(file: "f.toml", line: 2))
        let dotted = try ConfigDocument.parse([("g.toml", "\nvss.thaw_deadline_seconds = 4\n")], knownSections: ["vss"])
        #expect(dotted.section("vss").location(of: "thaw_deadline_seconds") == ConfigLocation(file: "g.toml", line: 2))
    }

    @Test func structuralErrorsAreSyntaxErrorsWithLineAndColumn() {
        for (text, line, message) in [
            ("[vss]\na = 1\na = 2\n", 3, "syntax error at column 1: duplicate key 'a'"),
            ("[vss]\n[vss]\n", 2, "syntax error at column 1: table [vss] is defined more than once"),
            ("[vss]\nx = 0x8000000000000000\n", 2, "syntax error at column 5: '0x8000000000000000' does not fit in a 64-bit integer"),
            ("# ok\n\u{0}", 2, "syntax error at column 1: NUL byte (U+0000) is not allowed in TOML"),
        ] {
            let error = expectConfigError { _ = try ConfigDocument.parse([("t.toml", text)], knownSections: ["vss"]) }
            #expect(error?.location == ConfigLocation(file: "t.toml", line: line), "\(text.debugDescription)")
            #expect(error?.message == message, "\(text.debugDescription)")
            #expect(error?.key == "")
        }
    }
}
