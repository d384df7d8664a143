import Glibc

/// A `/proc` file that tells by `poll(2)` when its contents changed, kept open so a reader can
/// skip re-reading (and re-parsing) it while nothing changed.
///
/// `/proc/self/mountinfo` (and `/proc/self/mounts`) report `POLLERR | POLLPRI` once after every
/// mount or unmount in the process's mount namespace since the descriptor was opened or last
/// polled (proc(5): "/proc/[pid]/mounts … can be monitored for changes"). `readIfChanged()`
/// polls with a zero timeout and re-reads the whole file from offset 0 only when the kernel
/// reported a change (or on first use), so a FREEZE with an unchanged mount table costs one
/// `poll` instead of a read and a parse.
public final class ChangeWatchedFile: @unchecked Sendable {
    public let path: String
    private let limit: Int
    private let lock = Locked(State())

    private struct State {
        var descriptor: Descriptor?
        /// Bumped on every re-read.
        var generation: UInt64 = 0
    }

    public init(path: String, limit: Int = 64 << 20) {
        self.path = path
        self.limit = limit
    }

    /// The file's contents and a new generation number when it changed since the last call
    /// (always on the first call, and after any error, which also reopens the file); nil when
    /// the kernel reports no change.
    public func readIfChanged() throws(SystemError) -> (bytes: [UInt8], generation: UInt64)? {
        try lock.withLock { (s: inout State) -> Result<(bytes: [UInt8], generation: UInt64)?, SystemError> in
            if let d = s.descriptor {
                var p = pollfd(fd: d.fd, events: Int16(POLLPRI), revents: 0)
                let n = Glibc.poll(&p, 1, 0)
                // Unchanged: no event. An error (or EINTR) falls through to a full re-read.
                if n == 0 { return .success(nil) }
            }
            do throws(SystemError) {
                let d: Descriptor
                if let open = s.descriptor {
                    d = open
                } else {
                    d = try Descriptor.open(path, flags: O_RDONLY)
                    s.descriptor = d
                }
                if Glibc.lseek(d.fd, 0, SEEK_SET) < 0 { throw SystemError.last("lseek \(path)") }
                var out: [UInt8] = []
                while true {
                    let chunk = try d.read(max: 65536)
                    if chunk.isEmpty { break }
                    out += chunk
                    if out.count > limit { throw SystemError("read \(path) (larger than \(limit) bytes)", errno: EFBIG) }
                }
                s.generation &+= 1
                return .success((out, s.generation))
            } catch {
                s.descriptor?.close()
                s.descriptor = nil
                return .failure(error)
            }
        }.get()
    }

    /// Closes the file; the next `readIfChanged()` reopens and reads it.
    public func close() {
        lock.withLock { s in
            s.descriptor?.close()
            s.descriptor = nil
        }
    }
}
