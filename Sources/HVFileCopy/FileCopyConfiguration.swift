import Glibc
import HVServiceKit
import HVSystem

/// The `[fcopy]` configuration section (docs/FCOPY.md lists every key and default).
public struct FileCopyConfiguration: Sendable, Equatable {
    /// Directories copies may go to (absolute, lexically normalised, no symlinks). Empty means
    /// anywhere on a real system; when the daemon is emulated an empty list refuses every copy.
    public var allowedRoots: [String]
    /// Permission bits of a copied file. 0644, not the reference daemon's 0744: a copied file is
    /// data, and marking every upload executable is a surprise (and a risk in shared directories).
    public var fileMode: mode_t
    /// Permission bits of directories made for CREATE_PATH (set exactly, whatever the umask).
    public var directoryMode: mode_t
    /// Owner given to copied files; `nil` keeps the daemon's own user (root on a real system).
    public var owner: uid_t?
    /// Group given to copied files; `nil` keeps the daemon's own group (root on a real system).
    public var group: gid_t?
    /// Whether COMPLETE fsyncs the file and its directory before reporting success.
    public var fsync: Bool

    public static let defaultFileMode: mode_t = 0o644
    public static let defaultDirectoryMode: mode_t = 0o755

    public init(
        allowedRoots: [String] = [], fileMode: mode_t = defaultFileMode, directoryMode: mode_t = defaultDirectoryMode,
        owner: uid_t? = nil, group: gid_t? = nil, fsync: Bool = true
    ) {
        self.allowedRoots = allowedRoots
        self.fileMode = fileMode
        self.directoryMode = directoryMode
        self.owner = owner
        self.group = group
        self.fsync = fsync
    }

    public static let knownKeys: Set<String> = ["allowed_roots", "file_mode", "directory_mode", "owner", "group", "fsync"]

    /// Reads the `[fcopy]` section. User and group names are looked up now, so a typo is a
    /// start-up error naming the key, not a failed copy later.
    public init(section: ConfigSection) throws(ConfigError) {
        try section.checkKnownKeys(Self.knownKeys)
        var roots: [String] = []
        for root in try section.absolutePaths("allowed_roots", default: []) {
            let parts = root.split(separator: "/", omittingEmptySubsequences: true)
            if parts.contains(where: { $0 == ".." || $0 == "." }) {
                throw section.error("allowed_roots", "\"\(root)\" must not contain \".\" or \"..\" components")
            }
            roots.append("/" + parts.joined(separator: "/"))
        }
        allowedRoots = roots
        fileMode = try Self.mode(section, "file_mode", default: Self.defaultFileMode)
        directoryMode = try Self.mode(section, "directory_mode", default: Self.defaultDirectoryMode)
        fsync = try section.bool("fsync", default: true)
        owner = try Self.identity(section, "owner") { name throws(SystemError) in try userID(named: name) }
        group = try Self.identity(section, "group") { name throws(SystemError) in try groupID(named: name) }
    }

    /// A mode given as an octal string (`"0644"`, `"644"`) or an integer (TOML `0o644`).
    /// Only permission bits 0…0777 are accepted: no setuid, setgid or sticky bits on copies,
    /// and a decimal `644` (= 0o1204) is caught instead of silently meaning something else.
    static func mode(_ section: ConfigSection, _ key: String, default def: mode_t) throws(ConfigError) -> mode_t {
        guard let value = section.values[key] else { return def }
        let number: Int64?
        switch value {
        case .integer(let i): number = i
        case .string(let s): number = s.isEmpty ? nil : Int64(s, radix: 8)
        default: number = nil
        }
        guard let number, (0...0o777).contains(number) else {
            throw section.error(key, "expected permission bits as an octal string such as \"0644\" or a TOML octal integer such as 0o644 (at most 0777), got \(value)")
        }
        return mode_t(number)
    }

    /// A user or group given by name or numeric id.
    static func identity(
        _ section: ConfigSection, _ key: String, lookup: (String) throws(SystemError) -> UInt32?
    ) throws(ConfigError) -> UInt32? {
        guard let value = section.values[key] else { return nil }
        switch value {
        case .integer(let i):
            guard i >= 0, i < Int64(UInt32.max) else { throw section.error(key, "numeric id out of range: \(i)") }
            return UInt32(i)
        case .string(let s):
            if let id = UInt32(s), id != UInt32.max { return id }
            let found: UInt32?
            do { found = try lookup(s) } catch { throw section.error(key, "cannot look up \"\(s)\": \(error)") }
            guard let found else { throw section.error(key, "no such \(key == "owner" ? "user" : "group"): \"\(s)\"") }
            return found
        default:
            throw section.error(key, "expected a name or a numeric id, got \(value.typeName) \(value)")
        }
    }
}
