import HVServiceKit
import Testing

@testable import HVFileCopy

func section(_ values: [String: ConfigValue]) -> ConfigSection {
    ConfigSection(name: "fcopy", values: values, locate: { _ in ConfigLocation(file: "test.toml", line: 3) })
}

@Suite struct ConfigurationTests {
    @Test func defaults() throws {
        let c = try FileCopyConfiguration(section: .empty("fcopy"))
        #expect(c == FileCopyConfiguration())
        #expect(c.allowedRoots == [])
        #expect(c.fileMode == 0o644)
        #expect(c.directoryMode == 0o755)
        #expect(c.owner == nil)
        #expect(c.group == nil)
        #expect(c.fsync)
    }

    @Test func everyKey() throws {
        let c = try FileCopyConfiguration(section: section([
            "allowed_roots": .array([.string("/srv/in/"), .string("//data//x")]),
            "file_mode": .string("0640"),
            "directory_mode": .integer(0o750),
            "owner": .string("root"),
            "group": .integer(100),
            "fsync": .bool(false),
        ]))
        #expect(c.allowedRoots == ["/srv/in", "/data/x"])
        #expect(c.fileMode == 0o640)
        #expect(c.directoryMode == 0o750)
        #expect(c.owner == 0)
        #expect(c.group == 100)
        #expect(!c.fsync)
        #expect(try FileCopyConfiguration(section: section(["owner": .string("1000")])).owner == 1000)
        #expect(try FileCopyConfiguration(section: section(["group": .string("root")])).group == 0)
    }

    @Test(arguments: [
        ("file_mode", ConfigValue.integer(644)),  // decimal 644 = 0o1204: a typo, not a mode
        ("file_mode", .string("0844")),
        ("file_mode", .string("4755")),
        ("file_mode", .bool(true)),
        ("directory_mode", .integer(-1)),
        ("owner", .string("no-such-user-hvguest")),
        ("group", .string("no-such-group-hvguest")),
        ("owner", .integer(-5)),
        ("allowed_roots", .array([.string("relative/path")])),
        ("allowed_roots", .array([.string("/srv/../etc")])),
        ("fsync", .string("yes")),
        ("fsnyc", .bool(true)),
    ])
    func invalidValuesNameTheKey(key: String, value: ConfigValue) {
        #expect {
            try FileCopyConfiguration(section: section([key: value]))
        } throws: { error in
            guard let e = error as? ConfigError else { return false }
            return e.key == "fcopy.\(key)" && e.location.line == 3
        }
    }
}
