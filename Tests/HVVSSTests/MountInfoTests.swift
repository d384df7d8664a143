import Testing

@testable import HVVSS

@Suite struct MountInfoTests {
    @Test func parsesTheProcManExample() throws {
        let e = try MountEntry.parse(line: "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue")
        #expect(e.mountID == 36)
        #expect(e.parentID == 35)
        #expect(e.device == DeviceNumber(major: 98, minor: 0))
        #expect(e.root == "/mnt1")
        #expect(e.mountPoint == "/mnt2")
        #expect(e.mountOptions == ["rw", "noatime"])
        #expect(e.optionalFields == ["master:1"])
        #expect(e.fileSystemType == "ext3")
        #expect(e.source == "/dev/root")
        #expect(e.superOptions == ["rw", "errors=continue"])
        #expect(!e.isReadOnly)
    }

    @Test func decodesOctalEscapes() throws {
        let e = try MountEntry.parse(line: #"40 27 8:17 / /mnt/my\040disk\011tab\134back rw - ext4 /dev/sdb1 rw"#)
        #expect(e.mountPoint == "/mnt/my disk\ttab\\back")
    }

    @Test func noOptionalFieldsAndSeveral() throws {
        let none = try MountEntry.parse(line: "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard")
        #expect(none.optionalFields.isEmpty)
        let many = try MountEntry.parse(line: "27 1 254:0 / / rw shared:1 master:2 propagate_from:3 - ext4 /dev/vda rw")
        #expect(many.optionalFields == ["shared:1", "master:2", "propagate_from:3"])
    }

    @Test func readOnlyFromMountOrSuperOptions() throws {
        #expect(try MountEntry.parse(line: "1 0 8:1 / /a ro,relatime - ext4 /dev/sda1 rw").isReadOnly)
        #expect(try MountEntry.parse(line: "1 0 8:1 / /a rw,relatime - ext4 /dev/sda1 ro,errors=remount-ro").isReadOnly)
        #expect(!(try MountEntry.parse(line: "1 0 8:1 / /a rw - ext4 /dev/sda1 rw,errors=remount-ro").isReadOnly))
    }

    @Test func emptySourceIsKept() throws {
        let e = try MountEntry.parse(line: "50 27 0:45 / /run/x rw - tmpfs  rw,size=4k")
        #expect(e.source == "")
        #expect(e.superOptions == ["rw", "size=4k"])
    }

    @Test(arguments: [
        "",
        "garbage",
        "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 ext3 /dev/root rw",  // no separator
        "36 35 98:0 /mnt1 /mnt2 rw - ext3 /dev/root",  // too few after separator
        "36 35 98:0 /mnt1 /mnt2 rw - ext3 /dev/root rw extra",  // too many after separator
        "x 35 98:0 / /m rw - ext3 /dev/root rw",
        "36 35 98 / /m rw - ext3 /dev/root rw",
        "36 35 98:99999999999 / /m rw - ext3 /dev/root rw",
        "36 35 98:0 / relative rw - ext3 /dev/root rw",
        #"36 35 98:0 / /m\04 rw - ext3 /dev/root rw"#,
        #"36 35 98:0 / /m\09x rw - ext3 /dev/root rw"#,
        #"36 35 98:0 / /m\777 rw - ext3 /dev/root rw"#,
        "-1 35 98:0 / /m rw - ext3 /dev/root rw",
        "36 35 98:0 / /m rw -  /dev/root rw",
    ])
    func rejectsMalformedLines(line: String) {
        #expect(throws: MountInfoError.self) { try MountEntry.parse(line: Substring(line)) }
    }

    @Test func tableSkipsBadLinesWithReasons() {
        let text = """
            27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
            this is not mountinfo
            22 27 0:21 / /proc rw,relatime - proc proc rw

            """
        let t = MountTable.parse(text)
        #expect(t.entries.map(\.mountPoint) == ["/", "/proc"])
        #expect(t.rejected.count == 1)
        #expect(t.rejected.first?.line == 2)
    }

    /// The kernel escapes only space, tab, newline and backslash, so a "\r" in a name reaches us
    /// raw: it is a byte of its field, and only "\n" ends a line, even right after "\r" (for
    /// Swift Characters "\r\n" is one, which misled the mountinfo fuzz body's line count).
    @Test func carriageReturnsAreFieldBytesNotLineEnds() {
        let text = "27 1 254:0 / / rw - ext4 /dev/vda rw\r\n\r\nbad\r\n22 27 0:21 / /a\rb rw - proc proc rw\n"
        let t = MountTable.parse(text)
        #expect(t.entries.map(\.mountPoint) == ["/", "/a\rb"])
        #expect(t.entries.first?.superOptions == ["rw\r"])
        #expect(t.rejected.map(\.line) == [2, 3])
        #expect(text.split(separator: "\n", omittingEmptySubsequences: false).count == 2)
        #expect(text.utf8.filter { $0 == UInt8(ascii: "\n") }.count + 1 >= t.entries.count + t.rejected.count)
    }

    @Test func parsesThisMachinesMountinfo() throws {
        let bytes = try #require(FileManagerShim.read("/proc/self/mountinfo"))
        let t = MountTable.parse(bytes)
        #expect(t.rejected.isEmpty)
        #expect(t.entries.contains { $0.mountPoint == "/" })
    }

    /// Cheap fuzzing: random mutations of a valid line must throw or parse, never trap.
    @Test func mutatedLinesNeverTrap() {
        let base = Array(#"36 35 98:0 /mnt1 /mnt\0402 rw,noatime master:1 - ext3 /dev/root rw,errors=continue"#.utf8)
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array(#" -:\/0123456789abc"#.utf8)
        for _ in 0..<5000 {
            var b = base
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: b[Int.random(in: 0..<b.count, using: &rng)] = alphabet.randomElement(using: &rng)!
                case 1: if b.count > 1 { b.remove(at: Int.random(in: 0..<b.count, using: &rng)) }
                default: b.insert(alphabet.randomElement(using: &rng)!, at: Int.random(in: 0...b.count, using: &rng))
                }
            }
            _ = try? MountEntry.parse(line: Substring(String(decoding: b, as: UTF8.self)))
        }
        #expect(Bool(true))
    }
}
