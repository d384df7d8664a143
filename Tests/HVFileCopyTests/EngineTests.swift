import Foundation
import Glibc
import HVServiceKit
import HVWire
import Testing

@testable import HVFileCopy

@Suite struct CopyContentTests {
    @Test(arguments: [0, 1, 6143, 6144, 6145, 3 * 1_048_576 + 17])
    func copiesAreByteIdentical(size: Int) throws {
        let scratch = try Scratch()
        let data = pseudoRandomBytes(size, seed: UInt64(size) &+ 7)
        let outcome = copy(makeEngine(), data, to: scratch.path, name: "file.bin")
        #expect(outcome.status == .ok, "\(outcome)")
        #expect(scratch.read("file.bin") == data)
        #expect(scratch.names() == ["file.bin"])  // no temporary file left
        let st = try #require(fileStatus(scratch.sub("file.bin")))
        #expect(st.st_mode & 0o7777 == 0o644)
        #expect(st.st_mode & S_IFMT == S_IFREG)
    }

    @Test func hundredMebibytesByteIdentical() throws {
        let scratch = try Scratch()
        let data = pseudoRandomBytes(100 * 1_048_576)
        let engine = makeEngine()
        let outcome = copy(engine, data, to: scratch.path, name: "big.bin")
        #expect(outcome.status == .ok, "\(outcome)")
        let back = try #require(scratch.read("big.bin"))
        #expect(back.count == data.count)
        #expect(back == data)
        #expect(scratch.names() == ["big.bin"])
        #expect(!engine.isActive)
    }

    @Test func outOfOrderFragmentsWithinTheSizeLandAtTheirOffsets() throws {
        let scratch = try Scratch()
        let data = pseudoRandomBytes(20_000)
        let engine = makeEngine()
        #expect(engine.start(path: scratch.path, name: "f", flags: [], size: 20_000).status == .ok)
        // Second half first, then the first half, then one fragment again (an overlap).
        #expect(engine.write(offset: 10_000, data: data[10_000..<20_000]).status == .ok)
        #expect(engine.write(offset: 0, data: data[0..<6_144]).status == .ok)
        #expect(engine.write(offset: 6_144, data: data[6_144..<10_000]).status == .ok)
        #expect(engine.write(offset: 4_000, data: data[4_000..<5_000]).status == .ok)
        #expect(engine.complete().status == .ok)
        #expect(scratch.read("f") == data)
    }

    @Test func unicodeNamesRoundTrip() throws {
        let scratch = try Scratch()
        let engine = makeEngine()
        let names = ["文件名.txt", "😀 report 🚀.bin", "Ünïcödé – 한국어", "e\u{301}t\u{E9}"]
        for (i, name) in names.enumerated() {
            let data = pseudoRandomBytes(100 + i)
            let outcome = copy(engine, data, to: scratch.path + "/目录/📁", name: name, flags: .createPath)
            #expect(outcome.status == .ok, "\(name): \(outcome)")
            #expect(scratch.read("目录/📁/" + name) == data)
        }
        #expect(Set(scratch.names("目录/📁")) == Set(names))
    }

    @Test func longestNameStillGetsATemporaryFile() throws {
        let scratch = try Scratch()
        let name = String(repeating: "é", count: 127) + "x"  // 255 bytes
        #expect(name.utf8.count == 255)
        let data = pseudoRandomBytes(10)
        #expect(copy(makeEngine(), data, to: scratch.path, name: name).status == .ok)
        #expect(scratch.read(name) == data)
    }

    @Test func writesArePermittedOnlyWithinTheAnnouncedSize() throws {
        let scratch = try Scratch()
        let engine = makeEngine()
        #expect(engine.start(path: scratch.path, name: "f", flags: [], size: 100).status == .ok)
        #expect(engine.write(offset: 0, data: [UInt8](repeating: 1, count: 60)).status == .ok)
        let past = engine.write(offset: 60, data: [UInt8](repeating: 2, count: 41))
        #expect(past.status == .invalidArgument)
        // The copy is over and nothing is left.
        #expect(!engine.isActive)
        #expect(scratch.names() == [])
        #expect(engine.write(offset: 60, data: [UInt8](repeating: 2, count: 40)).status == .fail)
        #expect(engine.complete().status == .fail)

        #expect(engine.start(path: scratch.path, name: "g", flags: [], size: 10).status == .ok)
        #expect(engine.write(offset: UInt64.max - 2, data: [1, 2, 3, 4]).status == .invalidArgument)
        #expect(scratch.names() == [])
    }

    @Test func impossibleFileSizeIsInvalid() throws {
        let scratch = try Scratch()
        let outcome = makeEngine().start(path: scratch.path, name: "f", flags: [], size: UInt64.max)
        #expect(outcome.status == .invalidArgument)
        #expect(scratch.names() == [])
    }

    @Test func shortCopyIsNotInstalled() throws {
        let scratch = try Scratch()
        let engine = makeEngine()
        #expect(engine.start(path: scratch.path, name: "f", flags: [], size: 10_000).status == .ok)
        #expect(engine.write(offset: 0, data: [UInt8](repeating: 1, count: 6_144)).status == .ok)
        let done = engine.complete()
        #expect(done.status == .fail)
        #expect(done.detail.contains("6144 of 10000"))
        #expect(scratch.names() == [])
    }

    @Test func configuredModeAndOwnerAreApplied() throws {
        let scratch = try Scratch()
        let config = FileCopyConfiguration(fileMode: 0o640, owner: 1234, group: 5678)
        #expect(copy(makeEngine(config), [1, 2, 3], to: scratch.path, name: "f").status == .ok)
        let st = try #require(fileStatus(scratch.sub("f")))
        #expect(st.st_mode & 0o7777 == 0o640)
        if getuid() == 0 {
            #expect(st.st_uid == 1234)
            #expect(st.st_gid == 5678)
        }
    }

    @Test func fsyncOffStillCopies() throws {
        let scratch = try Scratch()
        let data = pseudoRandomBytes(50_000)
        #expect(copy(makeEngine(FileCopyConfiguration(fsync: false)), data, to: scratch.path, name: "f").status == .ok)
        #expect(scratch.read("f") == data)
    }
}

@Suite struct FlagTests {
    @Test func existingFileWithoutOverwriteIsAlreadyExists() throws {
        let scratch = try Scratch()
        try scratch.write("f", [9, 9, 9])
        let outcome = copy(makeEngine(), [1, 2], to: scratch.path, name: "f")
        #expect(outcome.status == .alreadyExists)
        #expect(outcome.status.rawValue == 0x8007_0050)
        #expect(scratch.read("f") == [9, 9, 9])
        #expect(scratch.names() == ["f"])
    }

    @Test func existingFileWithOverwriteIsReplaced() throws {
        let scratch = try Scratch()
        try scratch.write("f", [UInt8](repeating: 9, count: 10_000))
        // A hard link to the old file must keep the old content: the new file replaces the
        // name, it is not written through the old inode.
        #expect(link(scratch.sub("f"), scratch.sub("hardlink")) == 0)
        let data = pseudoRandomBytes(7_000)
        #expect(copy(makeEngine(), data, to: scratch.path, name: "f", flags: .overwrite).status == .ok)
        #expect(scratch.read("f") == data)
        #expect(scratch.read("hardlink") == [UInt8](repeating: 9, count: 10_000))
        #expect(scratch.names() == ["f", "hardlink"])
    }

    @Test func fileAppearingDuringCopyWithoutOverwriteIsKept() throws {
        let scratch = try Scratch()
        let engine = makeEngine()
        #expect(engine.start(path: scratch.path, name: "f", flags: [], size: 3).status == .ok)
        #expect(engine.write(offset: 0, data: [1, 2, 3]).status == .ok)
        try scratch.write("f", [7])
        #expect(engine.complete().status == .alreadyExists)
        #expect(scratch.read("f") == [7])
        #expect(scratch.names() == ["f"])
    }

    @Test func missingDirectoryWithoutCreatePathFails() throws {
        let scratch = try Scratch()
        let outcome = copy(makeEngine(), [1], to: scratch.sub("a/b"), name: "f")
        #expect(outcome.status == .fail)
        #expect(scratch.tree() == [])
    }

    @Test func createPathMakesEveryMissingDirectory() throws {
        let scratch = try Scratch()
        try scratch.mkdir("a")
        let outcome = copy(makeEngine(), [1, 2, 3], to: scratch.sub("a/b/c"), name: "f", flags: .createPath)
        #expect(outcome.status == .ok, "\(outcome)")
        #expect(scratch.read("a/b/c/f") == [1, 2, 3])
        let st = try #require(fileStatus(scratch.sub("a/b/c")))
        #expect(st.st_mode & 0o777 == 0o755)  // umask 022 in tests
    }

    @Test func trailingSlashesAndDotComponentsAreHarmless() throws {
        let scratch = try Scratch()
        #expect(copy(makeEngine(), [1], to: scratch.path + "//./x/", name: "f", flags: .createPath).status == .ok)
        #expect(scratch.read("x/f") == [1])
    }
}

@Suite struct LifecycleTests {
    @Test func cancelLeavesNothing() throws {
        let scratch = try Scratch()
        let engine = makeEngine()
        #expect(engine.start(path: scratch.sub("new"), name: "f", flags: .createPath, size: 20_000).status == .ok)
        #expect(engine.write(offset: 0, data: pseudoRandomBytes(6_144)).status == .ok)
        #expect(scratch.names("new").count == 1)  // the temporary file
        #expect(engine.cancel().status == .ok)
        #expect(scratch.names("new") == [])
        #expect(!engine.isActive)
        // Cancelling again (or with nothing in progress) is harmless.
        #expect(engine.cancel().status == .ok)
        #expect(engine.complete().status == .fail)
    }

    @Test func abortLeavesNothing() throws {
        let scratch = try Scratch()
        let engine = makeEngine()
        #expect(engine.start(path: scratch.path, name: "f", flags: [], size: 2_000_000).status == .ok)
        for i in 0..<100 {
            #expect(engine.write(offset: UInt64(i * 6144), data: pseudoRandomBytes(6_144)).status == .ok)
        }
        engine.abort(reason: "channel closed")
        #expect(scratch.names() == [])
        #expect(engine.write(offset: 614_400, data: [1]).status == .fail)
    }

    @Test func startWhileActiveAbortsTheOldCopy() throws {
        let scratch = try Scratch()
        let engine = makeEngine()
        #expect(engine.start(path: scratch.path, name: "old", flags: [], size: 10).status == .ok)
        #expect(engine.write(offset: 0, data: [1, 2, 3]).status == .ok)
        #expect(engine.start(path: scratch.path, name: "new", flags: [], size: 2).status == .ok)
        #expect(engine.activeTarget == scratch.path + "/new")
        #expect(engine.write(offset: 0, data: [4, 5]).status == .ok)
        #expect(engine.complete().status == .ok)
        #expect(scratch.names() == ["new"])
    }

    @Test func operationsWithoutACopyFail() {
        let engine = makeEngine()
        #expect(engine.write(offset: 0, data: [1]).status == .fail)
        #expect(engine.complete().status == .fail)
        #expect(engine.abort(reason: "x").status == .ok)
    }

    @Test func finishedCopiesAreLoggedWithJournalFields() throws {
        let scratch = try Scratch()
        let recorder = LogRecorder()
        let engine = makeEngine(recorder: recorder)
        #expect(copy(engine, pseudoRandomBytes(1000), to: scratch.path, name: "f").status == .ok)
        #expect(copy(engine, [1], to: scratch.path, name: "f").status == .alreadyExists)
        let records = recorder.records
        #expect(records.count == 2)
        let ok = try #require(records.first)
        #expect(ok.level == .info)
        #expect(ok.metadata[LogField.service] == "fcopy")
        #expect(ok.metadata[LogField.operation] == "COMPLETE_FCOPY")
        #expect(ok.metadata[LogField.status] == HResult.ok.description)
        #expect(UInt64(ok.metadata[LogField.durationMicroseconds] ?? "") != nil)
        #expect(ok.message.contains(scratch.path + "/f"))
        #expect(ok.message.contains("1000 bytes"))
        #expect(ok.message.contains("MB/s"))
        let refused = try #require(records.last)
        #expect(refused.level == .warning)
        #expect(refused.metadata[LogField.operation] == "START_FILE_COPY")
        #expect(refused.metadata[LogField.status] == HResult.alreadyExists.description)
    }
}
