import Foundation
import HVDaemon
import HVFuzzBodies
import HVServiceKit
import Testing

/// Replays every fuzz target's built-in seeds, its committed corpus (`Fuzz/corpus/<target>/`)
/// and every crash ever found (`Fuzz/crashes/<target>/`) through the same bodies the libFuzzer
/// driver runs. A crash input that traps again stops this test process: CI fails loudly.
@Suite("Fuzz corpus replay", .serialized)
struct CorpusReplayTests {
    static func files(_ kind: String, _ target: String) -> [String] {
        let dir = "\(packageRoot)/Fuzz/\(kind)/\(target)"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { dir + "/" + $0 }
    }

    @Test("every target's seeds, corpus and past crashes hold their invariants")
    func replay() throws {
        defer { FuzzScratch.remove() }
        var replayed = 0
        for target in FuzzTargets.all {
            for (i, seed) in target.seeds().enumerated() {
                let failure = target.body(seed)
                #expect(failure == nil, "\(target.name) seed \(i): \(failure ?? "")")
                replayed += 1
            }
            for path in Self.files("corpus", target.name) + Self.files("crashes", target.name) {
                let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
                let failure = target.body(bytes)
                #expect(failure == nil, "\(path): \(failure ?? "")")
                replayed += 1
            }
        }
        #expect(replayed >= FuzzTargets.all.count)
    }

    @Test("every corpus and crash directory belongs to a target; every target has a committed seed corpus")
    func directoriesMatchTargets() throws {
        let names = Set(FuzzTargets.all.map(\.name))
        for kind in ["corpus", "crashes"] {
            let dirs = (try? FileManager.default.contentsOfDirectory(atPath: "\(packageRoot)/Fuzz/\(kind)")) ?? []
            for d in dirs where !d.hasPrefix(".") { #expect(names.contains(d), "Fuzz/\(kind)/\(d) matches no target") }
        }
        for t in FuzzTargets.all { #expect(!Self.files("corpus", t.name).isEmpty, "Fuzz/corpus/\(t.name) is empty") }
    }

    @Test("inputs that aborted the former TOML parser (toml++) are configuration errors with file and line", arguments: [
        ("[~", 1), ("[\r5", 1), ("V=[[[[[[ }'", 1), ("a = [ }", 1), ("[vss]\n[ [x]]", 2), ("[a]\n[\u{3000}b]", 2),
        ("x = ", 1), ("V=2277-24-\u{A4}\u{A1} 0 _000\t", 1), ("[vss]\nmountpoints = [\"/a\",\n  ,]", 3), ("k = \"\\", 1), ("a = 1\rb = 2", 1),
    ])
    func tomlParserAbortsAreErrors(text: String, line: Int) throws {
        do {
            _ = try ConfigDocument.parse([(file: "t.toml", text: text)], knownSections: DaemonConfiguration.knownSections)
            Issue.record("\(text.debugDescription) was accepted")
        } catch {
            #expect(error.location == ConfigLocation(file: "t.toml", line: line), "\(error)")
            #expect(error.message.hasPrefix("syntax error"), "\(error)")
        }
    }

    @Test("valid configurations parse (multi-line arrays, CRLF, inline tables, dates, multi-line strings)", arguments: [
        "[vss]\nmountpoints = [\n  \"/a\", # first\n  \"/b\",\n]\nthaw_deadline_seconds = 5\n",
        "[vss.hooks]\nfreeze = \"/x\"\n[fcopy]\nfile_mode = 0o644\n",
        "[log]\r\nlevel = 'debug'\r\n# c\r\n",
        "[kvp]\ntext = \"\"\"\n[fake]\n\"\"\"\nt = {a = 1, b = [1, 2]}\nd = 1979-05-27 07:32:00\n",
    ])
    func validConfigurationsParse(text: String) throws {
        let doc = try ConfigDocument.parse([(file: "t.toml", text: text)], knownSections: DaemonConfiguration.knownSections)
        #expect(!doc.sectionNames.isEmpty)
    }
}
