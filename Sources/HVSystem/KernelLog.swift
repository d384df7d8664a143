import Glibc

/// Reads new kernel log records from `/dev/kmsg` (or a plain file standing in for it in a fake
/// device root). Only records written after opening are seen: the history is skipped.
public final class KernelLogReader: @unchecked Sendable {
    public let descriptor: Descriptor
    /// True for the real character device (one record per read, poll works); false for a plain
    /// file or FIFO, read like `tail -f`.
    public let isDevice: Bool

    public init(path: String) throws(SystemError) {
        isDevice = fileKind(path) == .characterDevice
        descriptor = try Descriptor.open(path, flags: O_RDONLY | O_NONBLOCK)
        // /dev/kmsg: SEEK_END positions after the last record; a file: at its end.
        _ = lseek(descriptor.fd, 0, SEEK_END)
    }

    public var fd: Int32 { descriptor.fd }

    /// What is there to read now: bytes (possibly several records for a file), `[]` when nothing
    /// is available, nil at end of file (a plain file with nothing new).
    public func readAvailable() throws(SystemError) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 8192)
        let n = buffer.withUnsafeMutableBytes { read(descriptor.fd, $0.baseAddress, $0.count) }
        if n > 0 { return Array(buffer[0..<n]) }
        if n == 0 { return nil }
        let e = errno
        // EPIPE: records were overwritten before we read them; the next read continues.
        if e == EAGAIN || e == EINTR || e == EPIPE { return [] }
        throw SystemError("read kernel log", errno: e)
    }

    public func close() { descriptor.close() }
}
