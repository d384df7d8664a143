import Glibc
import HVSystem
import Testing

@Suite struct CloseInheritedDescriptorsTests {
    /// A forked child keeps only the descriptors it names (and 0–2); the parent's stay open.
    @Test func forkedChildKeepsOnlyWhatItNames() throws {
        var report: [Int32] = [-1, -1]
        try #require(pipe(&report) == 0)
        var other: [Int32] = [-1, -1]
        try #require(pipe(&other) == 0)
        defer { for fd in report + other { close(fd) } }
        let child = fork()
        if child == 0 {
            closeInheritedDescriptors(keeping: report[1])
            // Bit 0: the kept descriptor is open; bit 1: the other pipe's ends are closed;
            // bit 2: stdin/stdout/stderr untouched.
            var bits: UInt8 = 0
            if fcntl(report[1], F_GETFD) != -1 { bits |= 1 }
            if fcntl(other[0], F_GETFD) == -1 && fcntl(other[1], F_GETFD) == -1 && fcntl(report[0], F_GETFD) == -1 { bits |= 2 }
            if fcntl(0, F_GETFD) != -1 || fcntl(2, F_GETFD) != -1 { bits |= 4 }
            _ = write(report[1], &bits, 1)
            _exit(0)
        }
        try #require(child > 0)
        var status: Int32 = 0
        waitpid(child, &status, 0)
        var bits: UInt8 = 0
        #expect(read(report[0], &bits, 1) == 1)
        #expect(bits == 7)
        // The parent's descriptors are still open.
        #expect(fcntl(other[0], F_GETFD) != -1 && fcntl(other[1], F_GETFD) != -1)
    }
}
