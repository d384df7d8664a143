import HVSystem

/// Answers "is this filesystem on a loop device?" for the mount selector.
public protocol BlockDeviceInspector: Sendable {
    /// True when the filesystem mounted from `source` with superblock device `device` sits on a
    /// loop device, directly or anywhere below it (dm/md on top of loop).
    func isLoopBacked(source: String, device: DeviceNumber) -> Bool
}

/// Reads `/sys/dev/block/MAJ:MIN` and its `slaves/` tree below an injectable sysfs root.
///
/// The superblock's own device number is not always a block device (btrfs reports an
/// anonymous `0:N`), so for those the source's device node is asked for its number (`stat`),
/// as the reference daemon does.
public struct SysfsBlockDeviceInspector: BlockDeviceInspector {
    /// `/sys` on a real system.
    public var sysfsRoot: String
    /// Maps a source path (`/dev/loop0`) to its block device number; injectable for tests.
    public var deviceNumberOfSource: @Sendable (String) -> DeviceNumber?

    public init(sysfsRoot: String = "/sys", deviceNumberOfSource: (@Sendable (String) -> DeviceNumber?)? = nil) {
        self.sysfsRoot = sysfsRoot
        self.deviceNumberOfSource =
            deviceNumberOfSource ?? { path in
                PathOps.blockDeviceNumber(path).map { DeviceNumber(major: $0.major, minor: $0.minor) }
            }
    }

    public func isLoopBacked(source: String, device: DeviceNumber) -> Bool {
        var candidates: [DeviceNumber] = []
        if device.major != 0 { candidates.append(device) }
        if source.hasPrefix("/dev/"), let n = deviceNumberOfSource(source), !candidates.contains(n) {
            candidates.append(n)
        }
        return candidates.contains { isLoop(directory: sysfsRoot + "/dev/block/\($0)", depth: 0) }
    }

    /// A loop device has a `loop/` attribute directory (and is named `loopN`); stacked devices
    /// list what they sit on in `slaves/`.
    private func isLoop(directory: String, depth: Int) -> Bool {
        if depth > 16 { return false }
        if PathOps.exists(directory + "/loop") { return true }
        if let target = try? PathOps.readLink(directory), let name = target.split(separator: "/").last,
            name.hasPrefix("loop")
        {
            return true
        }
        guard let slaves = try? PathOps.listDirectory(directory + "/slaves") else { return false }
        return slaves.contains { $0.hasPrefix("loop") || isLoop(directory: directory + "/slaves/" + $0, depth: depth + 1) }
    }
}

/// One filesystem to freeze, through one of its mountpoints.
public struct FreezeTarget: Sendable, Equatable, CustomStringConvertible {
    public var mountPoint: String
    public var device: DeviceNumber
    public var fileSystemType: String
    public var source: String
    public init(mountPoint: String, device: DeviceNumber, fileSystemType: String, source: String) {
        self.mountPoint = mountPoint
        self.device = device
        self.fileSystemType = fileSystemType
        self.source = source
    }
    public var description: String { "\(mountPoint) (\(fileSystemType) \(source) \(device))" }
}

/// Why a mount is not frozen.
public enum SkipReason: Sendable, Equatable, CustomStringConvertible {
    case notInAllowList
    case notBlockDevice
    case cannotFreeze(fileSystemType: String)
    case readOnly
    case loopDevice
    case excludedMountpoint
    case excludedFileSystemType
    case excludedSource
    /// Another mount of the same filesystem already excluded it (exclusions apply per filesystem).
    case filesystemExcluded(by: String)
    /// Another mountpoint of the same superblock is frozen instead (bind mount, btrfs subvolume).
    case sameFilesystemAs(String)
    /// A later mount sits on the same mountpoint, so the path no longer reaches this filesystem.
    case shadowed
    /// In emulated mode `/` is never frozen, allow-listed or not.
    case rootWhenEmulated

    public var description: String {
        switch self {
        case .notInAllowList: return "not in the allow-list"
        case .notBlockDevice: return "not backed by a block device"
        case .cannotFreeze(let t): return "\(t) cannot be frozen"
        case .readOnly: return "read-only"
        case .loopDevice: return "on a loop device"
        case .excludedMountpoint: return "excluded by exclude_mountpoints"
        case .excludedFileSystemType: return "excluded by exclude_fstypes"
        case .excludedSource: return "excluded by exclude_sources"
        case .filesystemExcluded(let by): return "same filesystem as excluded \(by)"
        case .sameFilesystemAs(let m): return "same filesystem as \(m)"
        case .shadowed: return "hidden by a later mount on the same path"
        case .rootWhenEmulated: return "/ is never frozen when emulated"
        }
    }
}

public struct SkippedMount: Sendable, Equatable {
    public var mountPoint: String
    public var reason: SkipReason
    public init(mountPoint: String, reason: SkipReason) {
        self.mountPoint = mountPoint
        self.reason = reason
    }
}

/// The selector's answer: what to freeze, in order, and what was left out and why.
public struct MountSelection: Sendable, Equatable {
    /// In freeze order (thaw in reverse): loop-backed allow-listed filesystems first, then the
    /// rest in mount-table order (parents before children), `/` last.
    public var targets: [FreezeTarget]
    public var skipped: [SkippedMount]
    /// Allow-listed mountpoints not found in the mount table.
    public var missingAllowListed: [String]
}

/// Refusals that fail the whole FREEZE.
public enum MountSelectionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Emulated (device root not `/`) and `[vss] mountpoints` is empty: freezing would touch the
    /// real machine's filesystems.
    case allowListRequiredWhenEmulated
    public var description: String {
        switch self {
        case .allowListRequiredWhenEmulated:
            return "running emulated without [vss] mountpoints: refusing to freeze (set an allow-list)"
        }
    }
}

/// Decides which mounts to freeze. Pure: the mount table and the loop test are inputs.
public struct MountSelector: Sendable {
    /// Types that have no freeze support or are not local block filesystems at all. Anything
    /// not backed by a `/dev/` source is skipped anyway; this list also catches block-backed
    /// types that can't freeze (vfat, fuseblk, iso9660, squashfs, …).
    public static let unfreezableFileSystemTypes: Set<String> = [
        "vfat", "msdos", "fat", "exfat", "ntfs", "fuseblk", "fuse", "iso9660", "udf", "squashfs", "erofs",
        "cramfs", "romfs", "tmpfs", "ramfs", "devtmpfs", "proc", "sysfs", "cgroup", "cgroup2", "devpts",
        "mqueue", "debugfs", "tracefs", "securityfs", "pstore", "bpf", "configfs", "fusectl", "hugetlbfs",
        "autofs", "binfmt_misc", "efivarfs", "rpc_pipefs", "nsfs", "overlay", "aufs", "nfs", "nfs4", "cifs",
        "smb3", "smbfs", "9p", "virtiofs", "ceph", "glusterfs", "lustre", "afs", "zfs", "swap",
    ]

    public var configuration: VSSConfiguration
    public var isEmulated: Bool
    public var inspector: any BlockDeviceInspector

    public init(configuration: VSSConfiguration, isEmulated: Bool, inspector: any BlockDeviceInspector) {
        self.configuration = configuration
        self.isEmulated = isEmulated
        self.inspector = inspector
    }

    public func select(from table: MountTable) throws(MountSelectionError) -> MountSelection {
        let allowList = Set(configuration.mountpoints)
        if isEmulated && allowList.isEmpty { throw .allowListRequiredWhenEmulated }
        let excludedMountpoints = Set(configuration.excludeMountpoints)
        let excludedTypes = Set(configuration.excludeFileSystemTypes)
        let excludedSources = Set(configuration.excludeSources)
        let entries = table.entries

        // The last mount on a path is the one the path reaches.
        var lastIndexOfPath: [String: Int] = [:]
        for (i, e) in entries.enumerated() { lastIndexOfPath[e.mountPoint] = i }

        // Exclusions apply to the whole filesystem: freezing any mount of it freezes all.
        var excludedDevices: [DeviceNumber: String] = [:]
        for e in entries
        where excludedMountpoints.contains(e.mountPoint) || excludedSources.contains(e.source)
            || excludedTypes.contains(e.fileSystemType)
        {
            if excludedDevices[e.device] == nil { excludedDevices[e.device] = e.mountPoint }
        }

        var skipped: [SkippedMount] = []
        var candidates: [(entry: MountEntry, loop: Bool)] = []
        for (i, e) in entries.enumerated() {
            func skip(_ r: SkipReason) { skipped.append(SkippedMount(mountPoint: e.mountPoint, reason: r)) }
            if !allowList.isEmpty && !allowList.contains(e.mountPoint) {
                skip(.notInAllowList)
                continue
            }
            if isEmulated && e.mountPoint == "/" {
                skip(.rootWhenEmulated)
                continue
            }
            if lastIndexOfPath[e.mountPoint] != i {
                skip(.shadowed)
                continue
            }
            if excludedMountpoints.contains(e.mountPoint) {
                skip(.excludedMountpoint)
                continue
            }
            if excludedTypes.contains(e.fileSystemType) {
                skip(.excludedFileSystemType)
                continue
            }
            if excludedSources.contains(e.source) {
                skip(.excludedSource)
                continue
            }
            if let by = excludedDevices[e.device] {
                skip(.filesystemExcluded(by: by))
                continue
            }
            if Self.unfreezableFileSystemTypes.contains(e.fileSystemType) || e.fileSystemType.hasPrefix("fuse.") {
                skip(.cannotFreeze(fileSystemType: e.fileSystemType))
                continue
            }
            if !e.source.hasPrefix("/dev/") {
                skip(.notBlockDevice)
                continue
            }
            if e.isReadOnly {
                skip(.readOnly)
                continue
            }
            let loop = inspector.isLoopBacked(source: e.source, device: e.device)
            // The reference skips loop devices: freezing one whose backing file is on an
            // already-frozen filesystem deadlocks. An explicitly allow-listed loop mount is the
            // admin's (or a test's) choice; it is frozen before any other filesystem so its
            // writeback can still reach the backing file.
            if loop && !allowList.contains(e.mountPoint) {
                skip(.loopDevice)
                continue
            }
            candidates.append((e, loop))
        }

        // One freeze per superblock; `/` wins its group so it can go last.
        var chosen: [DeviceNumber: Int] = [:]
        var order: [DeviceNumber] = []
        for (i, c) in candidates.enumerated() {
            if let j = chosen[c.entry.device] {
                if c.entry.mountPoint == "/" {
                    skipped.append(SkippedMount(mountPoint: candidates[j].entry.mountPoint, reason: .sameFilesystemAs("/")))
                    chosen[c.entry.device] = i
                } else {
                    skipped.append(
                        SkippedMount(mountPoint: c.entry.mountPoint, reason: .sameFilesystemAs(candidates[j].entry.mountPoint)))
                }
            } else {
                chosen[c.entry.device] = i
                order.append(c.entry.device)
            }
        }
        let picked = order.compactMap { chosen[$0].map { candidates[$0] } }
        func rank(_ c: (entry: MountEntry, loop: Bool)) -> Int { c.entry.mountPoint == "/" ? 2 : (c.loop ? 0 : 1) }
        let sorted = picked.enumerated().sorted { a, b in
            rank(a.element) != rank(b.element) ? rank(a.element) < rank(b.element) : a.offset < b.offset
        }
        let targets = sorted.map {
            FreezeTarget(
                mountPoint: $0.element.entry.mountPoint, device: $0.element.entry.device,
                fileSystemType: $0.element.entry.fileSystemType, source: $0.element.entry.source)
        }
        let present = Set(entries.map(\.mountPoint))
        let missing = configuration.mountpoints.filter { !present.contains($0) }
        return MountSelection(targets: targets, skipped: skipped, missingAllowListed: missing)
    }
}
