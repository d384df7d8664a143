/// A device number as `/proc/self/mountinfo` shows it (`major:minor` of the superblock).
///
/// Unique per mounted filesystem (superblock): bind mounts and btrfs subvolumes of one
/// filesystem share it, which is how we freeze each filesystem once.
public struct DeviceNumber: Hashable, Sendable, CustomStringConvertible {
    public var major: UInt32
    public var minor: UInt32
    public init(major: UInt32, minor: UInt32) {
        self.major = major
        self.minor = minor
    }
    public var description: String { "\(major):\(minor)" }
}

/// One line of `/proc/self/mountinfo` (proc(5)), with the octal escapes (`\040` etc.) decoded.
///
/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
public struct MountEntry: Sendable, Equatable {
    public var mountID: Int
    public var parentID: Int
    public var device: DeviceNumber
    /// The directory of the filesystem that forms the root of this mount (`/` unless a bind
    /// mount of a subdirectory or a btrfs subvolume).
    public var root: String
    public var mountPoint: String
    /// Per-mount options (`rw`, `ro`, `nosuid`, …).
    public var mountOptions: [String]
    /// Optional fields such as `shared:1`, `master:2` (kept, not interpreted).
    public var optionalFields: [String]
    public var fileSystemType: String
    /// Filesystem-specific source (`/dev/sda1`, `server:/export`, `tmpfs`, …); may be empty.
    public var source: String
    /// Per-superblock options; `ro` here means the whole filesystem is read-only.
    public var superOptions: [String]

    public init(
        mountID: Int, parentID: Int, device: DeviceNumber, root: String, mountPoint: String,
        mountOptions: [String], optionalFields: [String] = [], fileSystemType: String, source: String,
        superOptions: [String]
    ) {
        self.mountID = mountID
        self.parentID = parentID
        self.device = device
        self.root = root
        self.mountPoint = mountPoint
        self.mountOptions = mountOptions
        self.optionalFields = optionalFields
        self.fileSystemType = fileSystemType
        self.source = source
        self.superOptions = superOptions
    }

    /// Read-only as a mount or as a whole filesystem (either way nothing writes through it).
    public var isReadOnly: Bool { mountOptions.contains("ro") || superOptions.contains("ro") }
}

/// Why a mountinfo line could not be parsed.
public struct MountInfoError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 1-based line number in the text given to the parser (0 for `MountEntry.parse(line:)`).
    public var line: Int
    public var reason: String
    public init(line: Int, reason: String) {
        self.line = line
        self.reason = reason
    }
    public var description: String { "mountinfo line \(line): \(reason)" }
}

extension MountEntry {
    /// Parses one mountinfo line (without its newline). Throws on anything malformed; never traps.
    public static func parse(line text: Substring, lineNumber: Int = 0) throws(MountInfoError) -> MountEntry {
        try parse(bytes: Array(text.utf8)[...], lineNumber: lineNumber)
    }

    /// The parser proper, on bytes: with Character-wise splitting, parsing the mount table was
    /// 70 % of the daemon's work per FREEZE and most of its freeze window (callgrind,
    /// bench/RESULTS.md). Same fields, checks and messages as before.
    static func parse(bytes line: ArraySlice<UInt8>, lineNumber: Int) throws(MountInfoError) -> MountEntry {
        func fail(_ reason: String) -> MountInfoError { MountInfoError(line: lineNumber, reason: reason) }
        func text(_ b: ArraySlice<UInt8>) -> String { String(decoding: b, as: UTF8.self) }
        // Single spaces separate fields; spaces inside fields are escaped as \040, so an empty
        // field (e.g. an empty source) shows up as two adjacent spaces and must be kept.
        var fields: [ArraySlice<UInt8>] = []
        fields.reserveCapacity(12)
        var start = line.startIndex
        for i in line.indices where line[i] == UInt8(ascii: " ") {
            fields.append(line[start..<i])
            start = i + 1
        }
        fields.append(line[start..<line.endIndex])
        guard fields.count >= 10 else { throw fail("expected at least 10 fields, got \(fields.count)") }
        guard let separator = fields[6...].firstIndex(where: { $0.count == 1 && $0.first == UInt8(ascii: "-") }) else {
            throw fail("no \" - \" separator")
        }
        guard fields.count - separator - 1 == 3 else {
            throw fail("expected 3 fields after the separator, got \(fields.count - separator - 1)")
        }
        guard let mountID = Int(text(fields[0])), mountID >= 0 else { throw fail("bad mount ID \"\(text(fields[0]))\"") }
        guard let parentID = Int(text(fields[1])), parentID >= 0 else { throw fail("bad parent ID \"\(text(fields[1]))\"") }
        let numbers = fields[2]
        guard let colon = numbers.firstIndex(of: UInt8(ascii: ":")),
            !numbers[(colon + 1)...].contains(UInt8(ascii: ":")),
            let major = UInt32(text(numbers[..<colon])), let minor = UInt32(text(numbers[(colon + 1)...]))
        else {
            throw fail("bad major:minor \"\(text(numbers))\"")
        }
        let root = try unescape(bytes: fields[3], lineNumber: lineNumber)
        let mountPoint = try unescape(bytes: fields[4], lineNumber: lineNumber)
        guard mountPoint.hasPrefix("/") else { throw fail("mount point \"\(mountPoint)\" is not absolute") }
        let fileSystemType = try unescape(bytes: fields[separator + 1], lineNumber: lineNumber)
        guard !fileSystemType.isEmpty else { throw fail("empty filesystem type") }
        var optionalFields: [String] = []
        for k in 6..<separator { optionalFields.append(try unescape(bytes: fields[k], lineNumber: lineNumber)) }
        return MountEntry(
            mountID: mountID, parentID: parentID, device: DeviceNumber(major: major, minor: minor),
            root: root, mountPoint: mountPoint,
            mountOptions: try options(fields[5], lineNumber: lineNumber),
            optionalFields: optionalFields,
            fileSystemType: fileSystemType,
            source: try unescape(bytes: fields[separator + 2], lineNumber: lineNumber),
            superOptions: try options(fields[separator + 3], lineNumber: lineNumber))
    }

    /// Comma-separated options; empty ones are dropped.
    private static func options(_ field: ArraySlice<UInt8>, lineNumber: Int) throws(MountInfoError) -> [String] {
        var out: [String] = []
        var start = field.startIndex
        for i in field.indices where field[i] == UInt8(ascii: ",") {
            if i > start { out.append(try unescape(bytes: field[start..<i], lineNumber: lineNumber)) }
            start = i + 1
        }
        if field.endIndex > start { out.append(try unescape(bytes: field[start..<field.endIndex], lineNumber: lineNumber)) }
        return out
    }

    /// Decodes the kernel's `\ooo` escapes (space, tab, newline, backslash, …).
    static func unescape(_ field: Substring, lineNumber: Int) throws(MountInfoError) -> String {
        try unescape(bytes: Array(field.utf8)[...], lineNumber: lineNumber)
    }

    static func unescape(bytes field: ArraySlice<UInt8>, lineNumber: Int) throws(MountInfoError) -> String {
        guard field.contains(UInt8(ascii: "\\")) else { return String(decoding: field, as: UTF8.self) }
        let bytes = Array(field)
        func fail(_ what: String) -> MountInfoError {
            MountInfoError(line: lineNumber, reason: "\(what) in \"\(String(decoding: bytes, as: UTF8.self))\"")
        }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b != UInt8(ascii: "\\") {
                out.append(b)
                i += 1
                continue
            }
            guard i + 3 < bytes.count else { throw fail("truncated escape") }
            var value: UInt32 = 0
            for k in 1...3 {
                let d = bytes[i + k]
                guard d >= UInt8(ascii: "0"), d <= UInt8(ascii: "7") else { throw fail("bad escape") }
                value = value * 8 + UInt32(d - UInt8(ascii: "0"))
            }
            guard value <= 0xFF else { throw fail("bad escape") }
            out.append(UInt8(value))
            i += 4
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The parsed mount table.
///
/// Policy for bad input: a malformed line is **skipped with its reason** (in `rejected`),
/// never fatal — one odd line must not stop a backup of the other filesystems, and since a
/// skipped mount is simply not frozen, skipping can only make us freeze less, never more.
public struct MountTable: Sendable, Equatable {
    public var entries: [MountEntry]
    public var rejected: [MountInfoError]

    public init(entries: [MountEntry], rejected: [MountInfoError] = []) {
        self.entries = entries
        self.rejected = rejected
    }

    /// Parses the whole text of `/proc/self/mountinfo`. Empty lines are ignored.
    public static func parse(_ text: String) -> MountTable {
        var table = MountTable(entries: [])
        let bytes = Array(text.utf8)
        var number = 0
        var start = 0
        for i in 0...bytes.count where i == bytes.count || bytes[i] == UInt8(ascii: "\n") {
            number += 1
            let line = bytes[start..<i]
            start = i + 1
            if line.isEmpty { continue }
            do throws(MountInfoError) {
                table.entries.append(try MountEntry.parse(bytes: line, lineNumber: number))
            } catch {
                table.rejected.append(error)
            }
        }
        return table
    }
}
