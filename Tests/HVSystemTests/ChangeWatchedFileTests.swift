import Glibc
import HVSystem
import Testing

@Suite struct ChangeWatchedFileTests {
    /// The first read returns the file; later calls return nil until the kernel reports a
    /// mount change. (Other tests may mount meanwhile, so "unchanged" is asked a few times.)
    @Test func mountinfoIsReadOnceUntilItChanges() throws {
        let watch = ChangeWatchedFile(path: "/proc/self/mountinfo")
        defer { watch.close() }
        let first = try #require(try watch.readIfChanged())
        #expect(first.generation == 1)
        #expect(String(decoding: first.bytes, as: UTF8.self).contains(" / "), "mountinfo names the root mount")
        var sawUnchanged = false
        for _ in 0..<20 where !sawUnchanged {
            if try watch.readIfChanged() == nil { sawUnchanged = true }
        }
        #expect(sawUnchanged)
        // After close, the next call reads again with a new generation.
        watch.close()
        let again = try #require(try watch.readIfChanged())
        #expect(again.generation > first.generation)
        #expect(again.bytes.count > 0)
    }

    @Test func missingFileIsAnErrorEveryTime() {
        let watch = ChangeWatchedFile(path: "/nonexistent-hvguest/mountinfo")
        for _ in 0..<2 {
            #expect(throws: SystemError.self) { _ = try watch.readIfChanged() }
        }
    }
}
