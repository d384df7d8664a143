import CHVLinux
import Glibc

/// FIFREEZE / FITHAW on a mounted filesystem, and the few file operations the VSS service
/// needs around them (sysfs links, directory listings, the frozen-filesystem record).
///
/// These are raw primitives: they freeze whatever path they are given. The only caller that
/// may reach them with a real mountpoint is HVVSS's `LiveFreezer`, which refuses every path
/// that is not on its explicit permit list.
public enum FilesystemFreeze {
    /// What FIFREEZE reported.
    public enum FreezeResult: Sendable, Equatable {
        case frozen
        /// EBUSY: the superblock was already frozen (by us through another mount, or by someone else).
        case alreadyFrozen
    }

    /// What FITHAW reported.
    public enum ThawResult: Sendable, Equatable {
        case thawed
        /// EINVAL: the filesystem was not frozen.
        case notFrozen
    }

    private static func openDirectory(_ path: String) throws(SystemError) -> Descriptor {
        // O_RDONLY|O_DIRECTORY: FIFREEZE needs any fd on the filesystem; a directory fd never
        // blocks on open and cannot be a device node by accident.
        try Descriptor.open(path, flags: O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
    }

    /// `ioctl(FIFREEZE)` on the filesystem mounted at `mountPoint`.
    public static func freeze(_ mountPoint: String) throws(SystemError) -> FreezeResult {
        let d = try openDirectory(mountPoint)
        defer { d.close() }
        if ioctl(d.fd, chv_FIFREEZE, 0) == 0 { return .frozen }
        let e = chv_errno()
        if e == EBUSY { return .alreadyFrozen }
        throw SystemError("FIFREEZE \(mountPoint)", errno: e)
    }

    /// `ioctl(FITHAW)` on the filesystem mounted at `mountPoint`.
    public static func thaw(_ mountPoint: String) throws(SystemError) -> ThawResult {
        let d = try openDirectory(mountPoint)
        defer { d.close() }
        if ioctl(d.fd, chv_FITHAW, 0) == 0 { return .thawed }
        let e = chv_errno()
        if e == EINVAL { return .notFrozen }
        throw SystemError("FITHAW \(mountPoint)", errno: e)
    }
}

/// Small path operations (no Foundation in the daemon).
public enum PathOps {
    /// The names in a directory, without `.` and `..`, unsorted.
    public static func listDirectory(_ path: String) throws(SystemError) -> [String] {
        try directoryEntryNames(path)
    }

    /// The target of a symbolic link.
    public static func readLink(_ path: String) throws(SystemError) -> String {
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = buf.withUnsafeMutableBytes { readlink(path, $0.baseAddress!.assumingMemoryBound(to: CChar.self), 4096) }
        if n < 0 { throw SystemError.last("readlink \(path)") }
        return String(decoding: buf[0..<n], as: UTF8.self)
    }

    /// True when `path` exists (following symlinks).
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    /// The device number (`st_rdev`) of the block device node at `path`, or nil when `path` is
    /// not a block device.
    public static func blockDeviceNumber(_ path: String) -> (major: UInt32, minor: UInt32)? {
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFBLK else { return nil }
        return (chv_dev_major(st.st_rdev), chv_dev_minor(st.st_rdev))
    }

    /// True when `path` is a regular file (following symlinks) that the caller may execute.
    public static func isExecutableFile(_ path: String) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return false }
        return access(path, X_OK) == 0
    }

    /// Writes `bytes` to `path` so that after a crash the file is either the old or the new
    /// version, and the new one is on stable storage when this returns: write a temporary
    /// file beside it, fsync, rename over, fsync the directory.
    public static func writeFileDurably(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(SystemError) {
        let temporary = path + ".tmp"
        let d = try Descriptor.open(temporary, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: mode)
        do throws(SystemError) {
            var writeFailure: SystemError?
            bytes.withUnsafeBytes { raw in
                do throws(SystemError) { try d.writeAll(raw) } catch { writeFailure = error }
            }
            if let writeFailure { throw writeFailure }
            _ = try retryOnInterrupt("fsync \(temporary)") { fsync(d.fd) }
        } catch {
            d.close()
            unlink(temporary)
            throw error
        }
        d.close()
        if rename(temporary, path) != 0 {
            let e = SystemError.last("rename \(temporary) to \(path)")
            unlink(temporary)
            throw e
        }
        try syncDirectory(of: path)
    }

    /// Creates or replaces `path` with `bytes`: open (O_TRUNC), write, close. No fsync: for
    /// files whose content only has to outlive this process, not the machine.
    public static func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws(SystemError) {
        let d = try Descriptor.open(path, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: mode)
        defer { d.close() }
        try bytes.withUnsafeBytes { raw in Result { () throws(SystemError) in try d.writeAll(raw) } }.get()
    }

    /// Removes `path`; a missing file is not an error. Not synced (see `writeFile`).
    public static func removeFile(_ path: String) throws(SystemError) {
        if unlink(path) != 0 {
            let e = chv_errno()
            if e != ENOENT { throw SystemError("unlink \(path)", errno: e) }
        }
    }

    private static func syncDirectory(of path: String) throws(SystemError) {
        var directory = "."
        if let slash = path.lastIndex(of: "/") {
            directory = slash == path.startIndex ? "/" : String(path[..<slash])
        }
        let d = try Descriptor.open(directory, flags: O_RDONLY | O_DIRECTORY)
        defer { d.close() }
        _ = try retryOnInterrupt("fsync \(directory)") { fsync(d.fd) }
    }
}
