import HVTOML
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Inputs that aborted the previous parser (toml++), and mutations of valid documents: each
/// must give a value tree or a `TOMLError`, never a trap.
@Suite struct HostileInputTests {
    /// Every file in Fuzz/crashes/config/ (the NUL byte there separates two files: each half
    /// is parsed on its own too).
    @Test func pastFuzzCrashesAreErrors() throws {
        let dir = packageRoot + "/Fuzz/crashes/config"
        let names = try #require(listDirectory(dir)).filter { !$0.hasPrefix(".") }
        #expect(names.count >= 7)
        for name in names {
            let bytes = try #require(readWholeFile(dir + "/" + name), "\(name)")
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
        var rng = SplitMix(seed: 0x5EED)
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

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Directory entries, without Foundation (this test target depends on HVTOML only).
func listDirectory(_ path: String) -> [String]? {
    guard let dir = opendir(path) else { return nil }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}

func readWholeFile(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n <= 0 { break }
        out.append(contentsOf: buffer[0..<n])
    }
    return out
}
