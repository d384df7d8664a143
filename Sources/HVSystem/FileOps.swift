import CHVLinux
import Glibc

// Descriptor-relative file operations for the file copy service. Everything works below an
// open directory descriptor (`openat`, `mkdirat`, `fstatat`, `renameat`, `unlinkat`) so a path
// is resolved once, component by component, and never re-walked by name (no TOCTOU through
// symlinks swapped in between the check and the use).

/// The type of a directory entry, as `lstat` sees it (symbolic links are not followed).
public enum EntryType: Sendable, Equatable, CustomStringConvertible {
    case regular, directory, symbolicLink, characterDevice, blockDevice, fifo, socket, unknown

    init(mode: mode_t) {
        switch mode & S_IFMT {
        case S_IFREG: self = .regular
        case S_IFDIR: self = .directory
        case S_IFLNK: self = .symbolicLink
        case S_IFCHR: self = .characterDevice
        case S_IFBLK: self = .blockDevice
        case S_IFIFO: self = .fifo
        case S_IFSOCK: self = .socket
        default: self = .unknown
        }
    }

    public var description: String {
        switch self {
        case .regular: return "regular file"
        case .directory: return "directory"
        case .symbolicLink: return "symbolic link"
        case .characterDevice: return "character device"
        case .blockDevice: return "block device"
        case .fifo: return "fifo"
        case .socket: return "socket"
        case .unknown: return "file of unknown type"
        }
    }
}

/// What `fstat`/`fstatat` report that callers here need.
public struct FileStatus: Sendable, Equatable {
    public var type: EntryType
    /// Permission bits (without the type bits).
    public var permissions: mode_t
    public var size: Int64
    public var owner: uid_t
    public var group: gid_t

    init(_ st: stat) {
        type = EntryType(mode: st.st_mode)
        permissions = st.st_mode & 0o7777
        size = Int64(st.st_size)
        owner = st.st_uid
        group = st.st_gid
    }
}

/// One name in a directory listing.
public struct DirectoryEntry: Sendable, Equatable {
    /// The name; entries whose names are not valid UTF-8 are left out of listings.
    public var name: String
    /// The type from `d_type`, or `.unknown` when the file system does not report it.
    public var type: EntryType
}

extension Descriptor {
    /// Opens the directory `path` for use as an `*at` base (`O_RDONLY|O_DIRECTORY|O_NOFOLLOW`).
    public static func openDirectory(_ path: String) throws(SystemError) -> Descriptor {
        try open(path, flags: O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
    }

    /// Opens the sub-directory `name` of this directory. Never follows a symbolic link: a link
    /// fails with `ELOOP`, a non-directory with `ENOTDIR`.
    public func openSubdirectory(_ name: String) throws(SystemError) -> Descriptor {
        let base = fd
        let r = try retryOnInterrupt("openat \(name)") {
            Glibc.openat(base, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0)
        }
        return Descriptor(adopting: r)
    }

    /// `mkdirat(dir, name, mode)` (the process umask applies, as for `mkdir`).
    public func makeDirectory(_ name: String, mode: mode_t) throws(SystemError) {
        let base = fd
        _ = try retryOnInterrupt("mkdirat \(name)") { Glibc.mkdirat(base, name, mode) }
    }

    /// Creates the new file `name` in this directory for writing (`O_CREAT|O_EXCL|O_NOFOLLOW`):
    /// fails with `EEXIST` if anything, even a dangling symlink, already has that name.
    public func createExclusiveFile(_ name: String, mode: mode_t) throws(SystemError) -> Descriptor {
        let base = fd
        let r = try retryOnInterrupt("create \(name)") {
            Glibc.openat(base, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        }
        return Descriptor(adopting: r)
    }

    /// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`; `nil` when nothing has that name.
    public func status(of name: String) throws(SystemError) -> FileStatus? {
        var st = stat()
        let base = fd
        if Glibc.fstatat(base, name, &st, AT_SYMLINK_NOFOLLOW) == 0 { return FileStatus(st) }
        let e = chv_errno()
        if e == ENOENT { return nil }
        throw SystemError("fstatat \(name)", errno: e)
    }

    /// `fstat` of this descriptor.
    public func status() throws(SystemError) -> FileStatus {
        var st = stat()
        let f = fd
        if Glibc.fstat(f, &st) != 0 { throw SystemError.last("fstat") }
        return FileStatus(st)
    }

    /// Renames `from` to `to`, both in this directory. With `replace` an existing `to` is
    /// replaced atomically (`renameat`); without it the call fails with `EEXIST` if `to` exists
    /// (`renameat2(RENAME_NOREPLACE)`, or `linkat` + `unlinkat` on file systems without it).
    public func rename(_ from: String, to: String, replace: Bool) throws(SystemError) {
        let base = fd
        if replace {
            _ = try retryOnInterrupt("renameat \(from) → \(to)") { Glibc.renameat(base, from, base, to) }
            return
        }
        if chv_renameat_noreplace(base, from, base, to) == 0 { return }
        let e = chv_errno()
        guard e == EINVAL || e == ENOSYS else { throw SystemError("renameat2 \(from) → \(to)", errno: e) }
        // No RENAME_NOREPLACE here: a hard link is created only if `to` is absent (atomic), then
        // the old name goes.
        _ = try retryOnInterrupt("linkat \(from) → \(to)") { Glibc.linkat(base, from, base, to, 0) }
        _ = try retryOnInterrupt("unlinkat \(from)") { Glibc.unlinkat(base, from, 0) }
    }

    /// Removes the non-directory `name` from this directory.
    public func removeFile(_ name: String) throws(SystemError) {
        let base = fd
        _ = try retryOnInterrupt("unlinkat \(name)") { Glibc.unlinkat(base, name, 0) }
    }

    /// The entries of this directory except `.` and `..` (reads through a duplicate descriptor,
    /// so this one stays usable and its offset is untouched).
    public func entries() throws(SystemError) -> [DirectoryEntry] {
        let copy = try retryOnInterrupt("dup") { Glibc.fcntl(fd, F_DUPFD_CLOEXEC, 0) }
        guard let stream = fdopendir(copy) else {
            let e = chv_errno()
            Glibc.close(copy)
            throw SystemError("fdopendir", errno: e)
        }
        defer { closedir(stream) }
        var out: [DirectoryEntry] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> String? in
                let bytes = raw.prefix(while: { $0 != 0 })
                return String(validating: bytes, as: UTF8.self)
            }
            guard let name, name != ".", name != ".." else { continue }
            let type: EntryType
            switch Int32(entry.pointee.d_type) {
            case Int32(DT_REG): type = .regular
            case Int32(DT_DIR): type = .directory
            case Int32(DT_LNK): type = .symbolicLink
            case Int32(DT_CHR): type = .characterDevice
            case Int32(DT_BLK): type = .blockDevice
            case Int32(DT_FIFO): type = .fifo
            case Int32(DT_SOCK): type = .socket
            default: type = .unknown
            }
            out.append(DirectoryEntry(name: name, type: type))
        }
        return out
    }

    /// Writes all of `bytes` at `offset` (`pwrite`, continuing after short writes).
    /// A write that makes no progress reports `ENOSPC`, as the kernel's short write means.
    public func writeAll(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(SystemError) {
        guard let base = bytes.baseAddress else { return }
        let f = fd
        var done = 0
        while done < bytes.count {
            let n = try retryOnInterrupt("pwrite") { Glibc.pwrite(f, base + done, bytes.count - done, off_t(offset + Int64(done))) }
            if n == 0 { throw SystemError("pwrite (no progress)", errno: ENOSPC) }
            done += n
        }
    }

    /// `fsync`.
    public func sync() throws(SystemError) {
        let f = fd
        _ = try retryOnInterrupt("fsync") { Glibc.fsync(f) }
    }

    /// Starts writing the range back to disk without waiting (`sync_file_range` with
    /// `SYNC_FILE_RANGE_WRITE`), so a later `fsync` has little left to do. Advisory: errors
    /// that only mean "not supported here" are for the caller to ignore.
    public func startWriteback(offset: Int64, count: Int64) throws(SystemError) {
        let f = fd
        _ = try retryOnInterrupt("sync_file_range") { chv_start_writeback(f, offset, count) }
    }

    /// `fchmod`.
    public func changeMode(_ mode: mode_t) throws(SystemError) {
        let f = fd
        _ = try retryOnInterrupt("fchmod") { Glibc.fchmod(f, mode) }
    }

    /// `fchown`; `nil` leaves that id unchanged.
    public func changeOwner(user: uid_t?, group: gid_t?) throws(SystemError) {
        let f = fd
        let u = user ?? uid_t.max  // (uid_t)-1: unchanged
        let g = group ?? gid_t.max
        _ = try retryOnInterrupt("fchown") { Glibc.fchown(f, u, g) }
    }

    /// `ftruncate`.
    public func truncate(to size: Int64) throws(SystemError) {
        let f = fd
        _ = try retryOnInterrupt("ftruncate") { Glibc.ftruncate(f, off_t(size)) }
    }
}

/// The uid of the user `name` (`getpwnam_r`); `nil` if there is no such user.
public func userID(named name: String) throws(SystemError) -> uid_t? {
    var pw = passwd()
    var result: UnsafeMutablePointer<passwd>? = nil
    var buffer = [CChar](repeating: 0, count: 16384)
    let r = getpwnam_r(name, &pw, &buffer, buffer.count, &result)
    if r != 0 { throw SystemError("getpwnam_r \(name)", errno: r) }
    return result == nil ? nil : pw.pw_uid
}

/// The gid of the group `name` (`getgrnam_r`); `nil` if there is no such group.
public func groupID(named name: String) throws(SystemError) -> gid_t? {
    var gr = group()
    var result: UnsafeMutablePointer<group>? = nil
    var buffer = [CChar](repeating: 0, count: 65536)
    let r = getgrnam_r(name, &gr, &buffer, buffer.count, &result)
    if r != 0 { throw SystemError("getgrnam_r \(name)", errno: r) }
    return result == nil ? nil : gr.gr_gid
}

/// The process's effective uid.
public func effectiveUserID() -> uid_t { geteuid() }
