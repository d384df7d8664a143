import HVSystem
import HVTOML
import Testing


/// Inputs that aborted the previous parser (toml++), and mutations of valid documents: each
/// must give a value tree or a `TOMLError`, never a trap.
@Suite struct HostileInputTests {
    /// Every file in Fuzz/crashes/config/ (the NUL byte there separates two files: each half
    /// is parsed on its own too).
    @Test func pastFuzzCrashesAreErrors() throws {
        let dir = packageRoot + "/Fuzz/crashes/config"
        let names = try directoryEntryNames(dir).filter { !$0.hasPrefix(".") }.sorted()
        #expect(names.count >= 7)
        for name in names {
            let bytes = try readFile(dir + "/" + name)
            #expect(failure(bytes, shown: name) != nil)
            for part in bytes.split(separator: 0, omittingEmptySubsequences: false) {
                _ = try? TOMLDocument(parsing: Array(part))
            }
        }
    }

    @Test("texts that aborted toml++ are errors at their line", arguments: [
        ("[~", 1), ("[\r5", 1), ("V=[[[[[[ }'", 1), ("a = [ }", 1), ("[vss]\n[ [x]]", 2), ("[a]\n[\u{3000}b]", 2),
        ("x = ", 1), ("V=2277-24-\u{A4}\u{A1} 0 _000\t", 1), ("[vss]\nmountpoints = [\"/a\",\n  ,]", 3), ("k = \"\\", 1), ("a = 1\rb = 2", 1),
        ("\"k=[t\\n6\t\u{FFFD}\u{FFFD}\" = 1\n\"k=[t\\n6\t\u{FFFD}\u{FFFD}\" = 2", 2),
    ])
    func formerAborts(text: String, line: Int) {
        #expect(failure(text)?.line == line)
    }

    /// A quoted key with escapes and control characters (which toml++ could not look up again)
    /// is an ordinary key here.
    @Test func quotedKeyWithEscapesAndTabs() throws {
        let doc = try parse("\"k=[t\\n6\t\u{FFFD}\" = 1\n")
        #expect(doc.root["k=[t\n6\t\u{FFFD}"] == .integer(1))
    }

    @Test func randomMutationsNeverTrap() {
        let seeds = [
            "[vss]\nmountpoints = [\"/a\", '/b']\nthaw_deadline_seconds = 0x10\n[vss.hooks]\nfreeze = \"\"\"x\\\n y\"\"\"\n",
            "[[a.b]]\nc = { d = 1979-05-27T07:32:00Z, e = [1.5e3, -inf, 07:32:00] }\n'f' = '''g'''\n",
            "x.y.z = \"\\u00E9\\U0001F600\"\r\n[q]\r\nr = [\r\n 1_000,\r\n]\r\n",
        ]
        var rng = Mutator(state: 0x5EED)
        let alphabet = Array("[]{}=,.\"'\\#\n\r\t 0123456789-+_:eExob".utf8) + [0x00, 0x7F, 0xC3, 0xA9, 0xFF]
        var accepted = 0
        var refused = 0
        for _ in 0..<3000 {
            var bytes = Array(seeds[Int(rng.next() % UInt64(seeds.count))].utf8)
            for _ in 0...(rng.next() % 4) {
                let pos = Int(rng.next() % UInt64(bytes.count + 1))
                let byte = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                switch rng.next() % 3 {
                case 0: bytes.insert(byte, at: pos)
                case 1: if pos < bytes.count { bytes[pos] = byte }
                default: if pos < bytes.count { bytes.remove(at: pos) }
                }
            }
            do {
                _ = try TOMLDocument(parsing: bytes)
                accepted += 1
            } catch {
                #expect(error.line >= 1 && error.column >= 1 && !error.message.isEmpty)
                refused += 1
            }
        }
        // Both outcomes happen: the mutations are neither all harmless nor all fatal.
        #expect(accepted > 100 && refused > 100, "accepted \(accepted), refused \(refused)")
    }
}

/// A seeded linear congruential generator (Knuth's MMIX constants): reproducible mutations.
struct Mutator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return state >> 33
    }
}
