import Glibc

/// What kind of file a device path is; decides the transport (DESIGN.md, fake device layer).
public enum FileKind: Sendable, Equatable {
    case missing
    case characterDevice
    case socket
    case directory
    case regular
    case other
}

/// The kind of file at `path` (following symlinks, as `open` would).
public func fileKind(_ path: String) -> FileKind {
    var st = stat()
    if stat(path, &st) != 0 { return .missing }
    switch st.st_mode & S_IFMT {
    case S_IFCHR: return .characterDevice
    case S_IFSOCK: return .socket
    case S_IFDIR: return .directory
    case S_IFREG: return .regular
    default: return .other
    }
}

/// Creates `path` and its parents (mode 0755 by default); existing directories are fine.
public func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(SystemError) {
    // Usually the parent exists already: one mkdir instead of one per component (the frozen
    // record is written this way on every FREEZE, pool stores on every open). Any other error
    // (a missing parent, no permission) takes the walk below, which names the failing part.
    if !path.isEmpty, mkdir(path, mode) == 0 || errno == EEXIST { return }
    var prefix = path.hasPrefix("/") ? "/" : ""
    for part in path.split(separator: "/") {
        prefix += part
        if mkdir(prefix, mode) != 0 {
            let e = errno
            if e != EEXIST { throw SystemError("mkdir \(prefix)", errno: e) }
        }
        prefix += "/"
    }
}

/// Reads a whole (small) file, e.g. sysfs attributes, os-release, config files.
public func readFile(_ path: String, limit: Int = 16 << 20) throws(SystemError) -> [UInt8] {
    let d = try Descriptor.open(path, flags: O_RDONLY)
    var out: [UInt8] = []
    while true {
        let chunk = try d.read(max: 65536)
        if chunk.isEmpty { break }
        out += chunk
        if out.count > limit { throw SystemError("read \(path) (larger than \(limit) bytes)", errno: EFBIG) }
    }
    return out
}

/// The process's environment variable, if set.
public func environment(_ name: String) -> String? {
    guard let v = getenv(name) else { return nil }
    return String(cString: v)
}

/// The process's working directory, or nil if it cannot be named (removed, too long).
public func currentDirectory() -> String? {
    var buf = [CChar](repeating: 0, count: 4096)
    guard getcwd(&buf, buf.count) != nil else { return nil }
    return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
