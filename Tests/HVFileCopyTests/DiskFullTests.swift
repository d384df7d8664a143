import Foundation
import Glibc
import HVWire
import Testing

@testable import HVFileCopy

@discardableResult
func run(_ tool: String, _ arguments: [String]) throws -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: tool)
    p.arguments = arguments
    try p.run()
    p.waitUntilExit()
    return p.terminationStatus
}

/// Unmounts a tmpfs a test mounted. A descriptor still open in a daemon thread makes `umount`
/// fail with EBUSY for a moment: retry briefly, then detach it lazily so nothing stays mounted.
func unmountTestMount(_ path: String) {
    for _ in 0..<20 {
        if (try? run("/bin/umount", [path])) == 0 { return }
        usleep(50_000)
    }
    _ = try? run("/bin/umount", ["-l", path])
}

@Suite(.serialized) struct DiskFullTests {
    @Test(.enabled(if: getuid() == 0, "needs root: tmpfs mount"))
    func fullFileSystemReportsDiskFullAndLeavesNothing() throws {
        let scratch = try Scratch()
        try scratch.mkdir("mnt")
        #expect(try run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "hvguest-fcopy-test", scratch.sub("mnt")]) == 0)
        defer { unmountTestMount(scratch.sub("mnt")) }

        let engine = makeEngine(FileCopyConfiguration(allowedRoots: [scratch.sub("mnt")]))
        let data = pseudoRandomBytes(3 * 1_048_576)
        let outcome = copy(engine, data, to: scratch.sub("mnt"), name: "too-big.bin")
        #expect(outcome.status == .diskFull, "\(outcome)")
        #expect(outcome.status.rawValue == 0x8007_0070)
        #expect(!engine.isActive)
        #expect(scratch.names("mnt") == [])
        // The host cancels after the error; that is answered and harmless.
        #expect(engine.cancel().status == .ok)

        // The space is free again: a file that fits goes through.
        let small = pseudoRandomBytes(512 * 1024)
        #expect(copy(engine, small, to: scratch.sub("mnt"), name: "fits.bin").status == .ok)
        #expect(scratch.read("mnt/fits.bin") == small)
    }
}
