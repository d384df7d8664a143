import Glibc

/// The names in directory `path` (without `.` and `..`), unsorted. A missing directory throws
/// with `ENOENT` so callers can treat it as empty.
public func directoryEntryNames(_ path: String) throws(SystemError) -> [String] {
    guard let dir = opendir(path) else { throw SystemError.last("opendir \(path)") }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}
