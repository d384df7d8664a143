import Testing

@testable import HVKVP

@Suite struct AdminTests {
    @Test func setGetListDeleteInTheGuestPool() throws {
        let dir = TemporaryDirectory("admin")
        let admin = KVPAdmin(stateDirectory: dir.path)
        #expect(try admin.list().isEmpty)  // no files yet: nothing, no error
        try admin.set("app/status", "ready")
        #expect(dir.bytes(".kvp_pool_1") == goldenRecord("app/status", "ready"))
        #expect(try admin.get("app/status") == KVPAdmin.Item(pool: .guest, key: "app/status", value: "ready"))
        #expect(try admin.get("app/status", pool: .external) == nil)
        try admin.set("HostName", "hv01", pool: .autoExternal)
        #expect(try admin.list().map(\.key) == ["app/status", "HostName"])
        #expect(try admin.list(pool: .autoExternal).map(\.value) == ["hv01"])
        #expect(KVPAdmin.json(try admin.list(pool: .guest)) == #"[{"pool":1,"key":"app/status","value":"ready"}]"#)
        #expect(try admin.delete("app/status"))
        #expect(try !admin.delete("app/status"))
        #expect(try admin.list(pool: .guest).isEmpty)
    }

    @Test func refusesWhatTheHostCouldNotReceive() throws {
        let dir = TemporaryDirectory("admin")
        let admin = KVPAdmin(stateDirectory: dir.path)
        #expect(throws: KVPStoreError.self) { try admin.set(String(repeating: "k", count: 255), "v") }
        #expect(throws: KVPStoreError.self) { try admin.set("k", String(repeating: "v", count: 1023)) }
        #expect(throws: KVPStoreError.emptyKey) { try admin.set("", "v") }
    }

    @Test func worksBesideARunningService() throws {
        let h = try KVPHarness()
        let admin = KVPAdmin(stateDirectory: h.dir.path)
        try admin.set("published", "1")
        let listed = try h.enumerate(1)
        #expect(listed.items.map(\.0) == ["published"])
        #expect(try h.set(0, "pushed", "x") == .ok)
        #expect(try admin.get("pushed")?.pool == .external)
    }

    @Test func cleanEmptiesPoolsAndRemovesLeftovers() throws {
        let dir = TemporaryDirectory("admin")
        let admin = KVPAdmin(stateDirectory: dir.path)
        try admin.set("a", "1", pool: .external)
        try admin.set("b", "2", pool: .external)
        try admin.set("c", "3", pool: .guest)
        try admin.set("d", "4", pool: .autoExternal)
        dir.write("ifcfg-eth0", "BOOTPROTO=none\n")
        dir.write("eth0.nmconnection", "[connection]\n")
        dir.write("unrelated", "keep\n")
        var report = try admin.clean(keepGuestPool: true)
        #expect(report.recordsRemoved[.external] == 2)
        #expect(report.recordsRemoved[.guest] == nil)
        #expect(report.filesRemoved == ["eth0.nmconnection", "ifcfg-eth0"])
        #expect(dir.bytes(".kvp_pool_0").isEmpty)
        #expect(dir.bytes(".kvp_pool_1").count == 2560)
        #expect(dir.bytes("unrelated") == Array("keep\n".utf8))
        report = try admin.clean()
        #expect(report.recordsRemoved[.guest] == 1)
        #expect(try admin.list().isEmpty)
    }

    @Test func jsonEscapesControlCharacters() {
        #expect(KVPAdmin.jsonString("a\"b\\c\n\u{1}é") == #""a\"b\\c\n\u0001é""#)
    }
}
