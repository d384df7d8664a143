import Foundation
import Glibc
import HVServiceKit
import HVWire
import Testing

@testable import HVFileCopy

@Suite struct DestinationTests {
    @Test func validDestinationsAreSplitIntoComponents() throws {
        let d = try CopyDestination(path: "/srv//in/./box/", fileName: "a b.txt")
        #expect(d.directoryComponents == ["srv", "in", "box"])
        #expect(d.targetPath == "/srv/in/box/a b.txt")
        #expect(try CopyDestination(path: "", fileName: "f").targetPath == "/f")
        #expect(try CopyDestination(path: "tmp/x", fileName: "f").targetPath == "/tmp/x/f")
    }

    @Test(arguments: [
        ("/a/../etc", "f"), ("..", "f"), ("/a/b/..", "f"),
        ("/a", ""), ("/a", "."), ("/a", ".."), ("/a", "../f"), ("/a", "/etc/passwd"), ("/a", "x/y"),
        ("/a\u{0}b", "f"), ("/a", "f\u{0}"), ("/a", String(repeating: "n", count: 256)),
        ("/" + String(repeating: "d", count: 256), "f"),
    ])
    func malformedDestinationsAreRefused(path: String, name: String) {
        #expect(throws: CopyDestinationError.self) { try CopyDestination(path: path, fileName: name) }
    }

    @Test func allowListComparesWholeComponents() throws {
        let d = try CopyDestination(path: "/srv/ab/c", fileName: "f")
        #expect(d.isInside(root: "/srv/ab"))
        #expect(d.isInside(root: "/srv/ab/c"))
        #expect(d.isInside(root: "/"))
        #expect(!d.isInside(root: "/srv/a"))
        #expect(!d.isInside(root: "/srv/ab/c/d"))
    }
}

@Suite struct SafetyTests {
    @Test func dotDotAndAbsoluteNamesAreInvalidArguments() throws {
        let scratch = try Scratch()
        try scratch.mkdir("in")
        let engine = makeEngine()
        #expect(engine.start(path: scratch.sub("in/.."), name: "f", flags: [], size: 1).status == .invalidArgument)
        #expect(engine.start(path: scratch.sub("in"), name: "../f", flags: [], size: 1).status == .invalidArgument)
        #expect(engine.start(path: scratch.sub("in"), name: "/etc/passwd", flags: .overwrite, size: 1).status == .invalidArgument)
        #expect(engine.start(path: scratch.sub("in"), name: "", flags: [], size: 1).status == .invalidArgument)
        #expect(HResult.invalidArgument.rawValue == 0x8007_0057)
        #expect(scratch.tree() == ["in"])
    }

    @Test func symlinkAsFinalComponentIsNeverFollowed() throws {
        let scratch = try Scratch()
        try scratch.mkdir("elsewhere")
        try scratch.write("elsewhere/victim", [1, 1, 1])
        try scratch.mkdir("in")
        try scratch.symlink("in/f", to: scratch.sub("elsewhere/victim"))
        try scratch.symlink("in/dangling", to: scratch.sub("elsewhere/new"))
        let engine = makeEngine()
        #expect(copy(engine, [2], to: scratch.sub("in"), name: "f").status == .alreadyExists)
        #expect(copy(engine, [2], to: scratch.sub("in"), name: "f", flags: .overwrite).status == .fail)
        #expect(copy(engine, [2], to: scratch.sub("in"), name: "dangling", flags: .overwrite).status == .fail)
        #expect(scratch.read("elsewhere/victim") == [1, 1, 1])
        #expect(scratch.names("elsewhere") == ["victim"])
        #expect(scratch.names("in") == ["dangling", "f"])
        let st = try #require(fileStatus(scratch.sub("in/f")))
        #expect(st.st_mode & S_IFMT == S_IFLNK)
    }

    @Test func symlinkedDirectoryOnTheWayIsRefused() throws {
        let scratch = try Scratch()
        try scratch.mkdir("real/deeper")
        try scratch.symlink("link", to: scratch.sub("real"))
        let engine = makeEngine()
        #expect(copy(engine, [1], to: scratch.sub("link"), name: "f").status == .fail)
        #expect(copy(engine, [1], to: scratch.sub("link/deeper"), name: "f", flags: .createPath).status == .fail)
        // A relative link too, and one created where CREATE_PATH would make a directory.
        try scratch.symlink("rel", to: "real")
        #expect(copy(engine, [1], to: scratch.sub("rel/new"), name: "f", flags: .createPath).status == .fail)
        #expect(scratch.tree() == ["link", "real", "real/deeper", "rel"])
    }

    @Test func fileInThePathIsNotADirectory() throws {
        let scratch = try Scratch()
        try scratch.write("plain", [1])
        #expect(copy(makeEngine(), [1], to: scratch.sub("plain/x"), name: "f", flags: .createPath).status == .fail)
        #expect(scratch.tree() == ["plain"])
    }

    @Test func specialFilesAreNeverOverwritten() throws {
        let scratch = try Scratch()
        try scratch.mkdir("dir")
        #expect(mkfifo(scratch.sub("fifo"), 0o600) == 0)
        let listener = try bindUnixSocket(scratch.sub("sock"))
        defer { close(listener) }
        var names = ["dir", "fifo", "sock"]
        if getuid() == 0 {
            let null = dev_t(0x103)  // makedev(1, 3): the null device
            #expect(mknod(scratch.sub("chardev"), S_IFCHR | 0o600, null) == 0)
            names.append("chardev")
        }
        let engine = makeEngine()
        for name in names {
            let plain = copy(engine, [1, 2], to: scratch.path, name: name)
            #expect(plain.status == .alreadyExists, "\(name)")
            let forced = copy(engine, [1, 2], to: scratch.path, name: name, flags: .overwrite)
            #expect(forced.status == .fail, "\(name): \(forced)")
        }
        #expect(scratch.names() == names.sorted())
        #expect(scratch.names("dir") == [])
    }

    @Test func allowListLimitsDestinations() throws {
        let scratch = try Scratch()
        try scratch.mkdir("allowed")
        try scratch.mkdir("allowedx")
        let engine = makeEngine(FileCopyConfiguration(allowedRoots: [scratch.sub("allowed")]))
        #expect(copy(engine, [1], to: scratch.sub("allowed/a/b"), name: "f", flags: .createPath).status == .ok)
        #expect(copy(engine, [1], to: scratch.sub("allowed"), name: "g").status == .ok)
        #expect(copy(engine, [1], to: scratch.sub("allowedx"), name: "f").status == .fail)
        // No directory is created outside the roots, even with CREATE_PATH.
        #expect(copy(engine, [1], to: scratch.sub("other/x"), name: "f", flags: .createPath).status == .fail)
        #expect(copy(engine, [1], to: scratch.path, name: "f").status == .fail)
        #expect(scratch.tree() == ["allowed", "allowed/a", "allowed/a/b", "allowed/a/b/f", "allowed/g", "allowedx"])
    }

    @Test func emulatedDaemonNeedsAllowedRoots() throws {
        let scratch = try Scratch()
        let refused = copy(makeEngine(emulated: true), [1], to: scratch.path, name: "f")
        #expect(refused.status == .fail)
        #expect(refused.detail.contains("allowed_roots"))
        #expect(scratch.names() == [])
        let allowed = makeEngine(FileCopyConfiguration(allowedRoots: [scratch.path]), emulated: true)
        #expect(copy(allowed, [1], to: scratch.path, name: "f").status == .ok)
    }

    @Test func temporaryNamesHaveTheDocumentedShape() {
        let t = FileCopyEngine.temporaryName(for: "report.pdf", suffix: "aB3xY9")
        #expect(t == ".report.pdf.hvguest-aB3xY9")
        #expect(FileCopyEngine.isTemporaryName(t))
        #expect(FileCopyEngine.isTemporaryName(FileCopyEngine.temporaryName(for: "x", suffix: FileCopyEngine.randomSuffix())))
        #expect(!FileCopyEngine.isTemporaryName("report.pdf.hvguest-aB3xY9"))
        #expect(!FileCopyEngine.isTemporaryName(".report.pdf.hvguest-aB3xY"))
        #expect(!FileCopyEngine.isTemporaryName(".report.pdf.hvguest-aB3x.9"))
        #expect(!FileCopyEngine.isTemporaryName(".hvguest-aB3xY9"))
        let long = FileCopyEngine.temporaryName(for: String(repeating: "😀", count: 63), suffix: "aaaaaa")
        #expect(long.utf8.count <= 255)
        #expect(FileCopyEngine.isTemporaryName(long))
    }

    @Test func staleTemporariesAreCleanedUp() throws {
        let scratch = try Scratch()
        try scratch.mkdir("root/a/b")
        try scratch.mkdir("outside")
        let stale = ["root/.x.hvguest-abcdef", "root/a/b/.😀 y.hvguest-Z9Z9Z9"]
        let kept = [
            "root/.x.hvguest-abcde", "root/x.hvguest-abcdef", "root/a/.mode.hvguest-abcdef",  // chmod 0644 below
            "outside/.o.hvguest-abcdef",
        ]
        for path in stale + kept {
            try scratch.write(path, [1])
            #expect(chmod(scratch.sub(path), 0o600) == 0)
        }
        #expect(chmod(scratch.sub("root/a/.mode.hvguest-abcdef"), 0o644) == 0)
        try scratch.symlink("root/link", to: scratch.sub("outside"))
        let report = FileCopyEngine.cleanStaleTemporaries(in: [scratch.sub("root"), scratch.sub("missing")])
        #expect(Set(report.removed) == Set(stale.map { scratch.sub($0) }))
        #expect(report.problems == [])
        #expect(!report.stoppedAtLimit)
        for path in kept { #expect(scratch.read(path) == [1], "\(path)") }
        for path in stale { #expect(scratch.read(path) == nil, "\(path)") }

        let limited = FileCopyEngine.cleanStaleTemporaries(in: [scratch.sub("root")], directoryLimit: 1)
        #expect(limited.stoppedAtLimit)
    }

    @Test func crashLeftoverOfARealCopyIsRecognised() throws {
        let scratch = try Scratch()
        let engine = makeEngine()
        #expect(engine.start(path: scratch.path, name: "f", flags: [], size: 10).status == .ok)
        // Simulate a crash: look at the temporary file as a restarted daemon would.
        let leftover = try #require(scratch.names().first)
        #expect(FileCopyEngine.isTemporaryName(leftover))
        let st = try #require(fileStatus(scratch.sub(leftover)))
        #expect(st.st_mode & 0o7777 == 0o600)
        engine.abort(reason: "test over")
        #expect(scratch.names() == [])
    }
}

/// A listening Unix socket at `path` (to have a socket file in the way).
func bindUnixSocket(_ path: String) throws -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
        for (i, b) in bytes.enumerated() { raw[i] = b }
    }
    let r = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    #expect(r == 0)
    return fd
}
