import CHVLinux
import Glibc

/// What `fstat`/`stat` say about a file, as far as change detection of the KVP pools needs it.
public struct FileSnapshot: Sendable, Equatable {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    /// Modification time in nanoseconds since the epoch.
    public var modificationTime: Int64
    /// Permission bits (`st_mode & 0o7777`).
    public var permissions: UInt32

    init(_ st: stat) {
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        size = Int64(st.st_size)
        modificationTime = Int64(st.st_mtim.tv_sec) &* 1_000_000_000 &+ Int64(st.st_mtim.tv_nsec)
        permissions = UInt32(st.st_mode) & 0o7777
    }

    /// Same file (device and inode).
    public func isSameFile(as other: FileSnapshot) -> Bool { device == other.device && inode == other.inode }
}

/// `stat(2)` of a path; nil when it does not exist.
public func fileSnapshot(_ path: String) throws(SystemError) -> FileSnapshot? {
    var st = stat()
    if stat(path, &st) != 0 {
        let e = chv_errno()
        if e == ENOENT { return nil }
        throw SystemError("stat \(path)", errno: e)
    }
    return FileSnapshot(st)
}

/// CLOCK_REALTIME in nanoseconds (full resolution, unlike the coarse clock the kernel uses
/// for file timestamps).
public func realtimeNanoseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) &* 1_000_000_000 &+ Int64(ts.tv_nsec)
}

/// Removes a file; a missing file is fine.
public func removeFileIfPresent(_ path: String) throws(SystemError) {
    if unlink(path) != 0 {
        let e = chv_errno()
        if e != ENOENT { throw SystemError("unlink \(path)", errno: e) }
    }
}

/// Positioned I/O for record files (the KVP pools): every call names its offset, so no shared
/// file position is involved and each record is one system call.
extension Descriptor {
    public func snapshot() throws(SystemError) -> FileSnapshot {
        var st = stat()
        if fstat(fd, &st) != 0 { throw SystemError.last("fstat \(self)") }
        return FileSnapshot(st)
    }

    /// Reads up to `count` bytes at `offset`; fewer only at end of file.
    public func read(count: Int, at offset: Int64) throws(SystemError) -> [UInt8] {
        // Uninitialized, as `read(max:)`: a pool reload reads whole files, and zero-filling the
        // buffer first was a second pass over every byte.
        guard count > 0 else { return [] }
        var failure: SystemError?
        let buffer = [UInt8](unsafeUninitializedCapacity: count) { b, initialized in
            var done = 0
            while done < count {
                let n: Int
                do throws(SystemError) {
                    n = try retryOnInterrupt("pread \(self)") {
                        Glibc.pread(fd, b.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                    }
                } catch {
                    failure = error
                    break
                }
                if n == 0 { break }
                done += n
            }
            initialized = done
        }
        if let failure { throw failure }
        return buffer
    }

    /// Writes all of `bytes` at `offset` (continuing after short writes).
    public func write(_ bytes: [UInt8], at offset: Int64) throws(SystemError) {
        var done = 0
        while done < bytes.count {
            let n = try retryOnInterrupt("pwrite \(self)") {
                bytes.withUnsafeBytes { Glibc.pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done)) }
            }
            done += n
        }
    }

    public func setLength(_ size: Int64) throws(SystemError) {
        _ = try retryOnInterrupt("ftruncate \(self)") { ftruncate(fd, off_t(size)) }
    }

    /// `fdatasync(2)`: the data and the size are on stable storage when this returns.
    public func synchronizeData() throws(SystemError) {
        _ = try retryOnInterrupt("fdatasync \(self)") { fdatasync(fd) }
    }

    /// Sets the modification time (access time untouched).
    public func setModificationTime(_ nanoseconds: Int64) throws(SystemError) {
        let r = chv_set_mtime(fd, nanoseconds / 1_000_000_000, nanoseconds % 1_000_000_000)
        if r != 0 { throw SystemError.last("futimens \(self)") }
    }

    public func changePermissions(_ mode: mode_t) throws(SystemError) {
        if fchmod(fd, mode) != 0 { throw SystemError.last("fchmod \(self)") }
    }
}

/// Replaces `path` with `bytes` atomically: a temporary file in the same directory, written,
/// synced and given `mode`, then renamed over `path` (readers see the old or the new file).
public func writeFileAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t) throws(SystemError) {
    let temporary = path + ".hvguest-tmp"
    let d = try Descriptor.open(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: mode)
    do {
        try d.changePermissions(mode)
        try d.write(bytes, at: 0)
        try d.synchronizeData()
    } catch {
        d.close()
        _ = unlink(temporary)
        throw error
    }
    d.close()
    if rename(temporary, path) != 0 {
        let e = chv_errno()
        _ = unlink(temporary)
        throw SystemError("rename \(temporary) \(path)", errno: e)
    }
}
