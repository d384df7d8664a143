/// Where a copy goes: the host's `path_name` split into directory components, and `file_name`.
///
/// Pure validation of the host's strings; the engine then walks the components with
/// `openat(O_NOFOLLOW|O_DIRECTORY)`. Since no symlink is ever followed, the lexical path here
/// *is* the real path, which is what the allow-list is checked against.
public struct CopyDestination: Sendable, Equatable {
    /// Directory components from `/`; empty means `/` itself. Never `""`, `.` or `..`.
    public var directoryComponents: [String]
    public var fileName: String

    /// Longest name a Linux file system accepts (NAME_MAX), in bytes.
    public static let maximumNameBytes = 255

    /// Validates the host's strings. `..` anywhere, NUL bytes, an empty name, `.`/`..` as the
    /// name, `/` in the name and over-long components are refused (→ HV_INVALIDARG).
    /// Empty and `.` components of `path` are dropped; a relative `path` is taken from `/`,
    /// where the reference daemon (running with the working directory `/`) would put it.
    public init(path: String, fileName: String) throws(CopyDestinationError) {
        if path.utf8.contains(0) { throw .invalid("path_name contains a NUL character") }
        if fileName.utf8.contains(0) { throw .invalid("file_name contains a NUL character") }
        if fileName.isEmpty { throw .invalid("file_name is empty") }
        if fileName.utf8.contains(UInt8(ascii: "/")) { throw .invalid("file_name \"\(fileName)\" contains \"/\"") }
        if fileName == "." || fileName == ".." { throw .invalid("file_name is \"\(fileName)\"") }
        if fileName.utf8.count > Self.maximumNameBytes {
            throw .invalid("file_name is longer than \(Self.maximumNameBytes) bytes")
        }
        var components: [String] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { throw .invalid("path_name \"\(path)\" contains a \"..\" component") }
            if part.utf8.count > Self.maximumNameBytes {
                throw .invalid("path_name component longer than \(Self.maximumNameBytes) bytes")
            }
            components.append(String(part))
        }
        directoryComponents = components
        self.fileName = fileName
    }

    /// `/a/b` (or `/`).
    public var directoryPath: String { "/" + directoryComponents.joined(separator: "/") }

    /// `/a/b/name`.
    public var targetPath: String {
        directoryComponents.isEmpty ? "/" + fileName : directoryPath + "/" + fileName
    }

    /// Whether the target directory is `root` or below it (`root` normalised: absolute, no
    /// trailing slash, no `.`/`..`). Compared by whole components, so `/srv/a` does not admit
    /// `/srv/ab`.
    public func isInside(root: String) -> Bool {
        let rootParts = root.split(separator: "/", omittingEmptySubsequences: true)
        guard rootParts.count <= directoryComponents.count else { return false }
        for (i, part) in rootParts.enumerated() where directoryComponents[i] != part { return false }
        return true
    }
}

/// A host string that cannot name a destination.
public enum CopyDestinationError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalid(String)
    public var description: String {
        switch self {
        case .invalid(let why): return why
        }
    }
}
