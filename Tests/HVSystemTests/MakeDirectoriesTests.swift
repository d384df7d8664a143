import Glibc
import HVSystem
import Testing

@Suite("makeDirectories")
struct MakeDirectoriesTests {
    @Test("creates missing parents, accepts what exists, names the part that cannot be made")
    func createsParentsAndReportsTheFailingPart() throws {
        let dir = try makeTemporaryDirectory(prefix: "/tmp/hvguest-mkdirs-")
        defer { removeTree(dir) }

        // All parents missing: the walk creates each (with the mode given, less the umask).
        try makeDirectories(dir + "/a/b/c", mode: 0o700)
        #expect(fileKind(dir + "/a/b/c") == .directory)
        var st = stat()
        #expect(stat(dir + "/a/b", &st) == 0 && st.st_mode & 0o777 == 0o700)
        // Parent present (the one-call path) and the directory itself present.
        try makeDirectories(dir + "/a/b/d")
        #expect(fileKind(dir + "/a/b/d") == .directory)
        try makeDirectories(dir + "/a/b/c")
        try makeDirectories(dir + "/a/b/c/")

        // A regular file where a parent should be: the error names that part.
        let fd = open(dir + "/file", O_WRONLY | O_CREAT, 0o644)
        #expect(fd >= 0)
        close(fd)
        do {
            try makeDirectories(dir + "/file/x/y")
            Issue.record("a path through a regular file was accepted")
        } catch {
            #expect(error.errno == ENOTDIR, "\(error)")
            #expect(error.description.contains(dir + "/file/x"), "\(error)")
        }
    }
}
