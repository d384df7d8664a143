import Foundation
import Testing

@testable import HVVSS

/// Loop detection by source name, for synthetic tables.
struct FakeInspector: BlockDeviceInspector {
    var loopSources: Set<String> = []
    func isLoopBacked(source: String, device: DeviceNumber) -> Bool { loopSources.contains(source) }
}

private func config(
    mountpoints: [String] = [], excludeMountpoints: [String] = [], excludeTypes: [String] = [],
    excludeSources: [String] = []
) -> VSSConfiguration {
    VSSConfiguration(
        mountpoints: mountpoints, excludeMountpoints: excludeMountpoints, excludeFileSystemTypes: excludeTypes,
        excludeSources: excludeSources, hooksDirectory: "/nonexistent")
}

/// A machine with most of what the rules must handle.
private let busyMachine = mountTable(
    """
    27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
    22 27 0:21 / /proc rw,relatime - proc proc rw
    23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
    24 27 0:6 / /dev rw - devtmpfs devtmpfs rw
    25 27 0:23 / /run rw - tmpfs tmpfs rw
    30 27 8:1 / /boot/efi rw - vfat /dev/sda1 rw
    31 27 8:2 / /boot rw - ext4 /dev/sda2 rw
    32 27 8:3 / /srv ro,relatime - xfs /dev/sda3 ro
    33 27 0:40 /@home /home rw - btrfs /dev/sdb rw,subvol=/@home
    34 27 0:40 /@data /data rw - btrfs /dev/sdb rw,subvol=/@data
    35 27 8:2 /www /var/www rw - ext4 /dev/sda2 rw
    36 27 0:41 / /mnt/nfs rw - nfs4 server:/export rw
    37 27 0:42 / /mnt/fuse rw - fuse.sshfs me@host:/ rw
    38 27 0:43 / /var/lib/docker/overlay2/x/merged rw - overlay overlay rw
    39 27 7:0 / /mnt/image rw - ext4 /dev/loop0 rw
    40 27 8:16 / /mnt/usb rw - fuseblk /dev/sdc1 rw
    41 27 253:0 / /var/lib/db rw - xfs /dev/mapper/vg-db rw
    """)

@Suite struct MountSelectorTests {
    func select(_ c: VSSConfiguration, _ table: MountTable = busyMachine, emulated: Bool = false, loops: Set<String> = ["/dev/loop0"])
        throws -> MountSelection
    {
        try MountSelector(configuration: c, isEmulated: emulated, inspector: FakeInspector(loopSources: loops)).select(from: table)
    }

    func reason(_ s: MountSelection, _ m: String) -> SkipReason? { s.skipped.first { $0.mountPoint == m }?.reason }

    @Test func referenceRulesPlusUnfreezableTypesRootLast() throws {
        let s = try select(config())
        #expect(s.targets.map(\.mountPoint) == ["/boot", "/home", "/var/lib/db", "/"])
        #expect(reason(s, "/proc") == .cannotFreeze(fileSystemType: "proc"))
        #expect(reason(s, "/run") == .cannotFreeze(fileSystemType: "tmpfs"))
        #expect(reason(s, "/boot/efi") == .cannotFreeze(fileSystemType: "vfat"))
        #expect(reason(s, "/srv") == .readOnly)
        #expect(reason(s, "/mnt/nfs") == .cannotFreeze(fileSystemType: "nfs4"))
        #expect(reason(s, "/mnt/fuse") == .cannotFreeze(fileSystemType: "fuse.sshfs"))
        #expect(reason(s, "/var/lib/docker/overlay2/x/merged") == .cannotFreeze(fileSystemType: "overlay"))
        #expect(reason(s, "/mnt/image") == .loopDevice)
        #expect(reason(s, "/mnt/usb") == .cannotFreeze(fileSystemType: "fuseblk"))
    }

    @Test func oneFreezePerSuperblock() throws {
        let s = try select(config())
        // btrfs subvolumes share the superblock's 0:40; the bind-ish /var/www shares /boot's 8:2.
        #expect(reason(s, "/data") == .sameFilesystemAs("/home"))
        #expect(reason(s, "/var/www") == .sameFilesystemAs("/boot"))
    }

    @Test func rootWinsItsSuperblockAndGoesLast() throws {
        let t = mountTable(
            """
            40 1 254:0 /srv /mnt/bind rw - ext4 /dev/vda rw
            41 1 8:1 / /a rw - ext4 /dev/sda1 rw
            27 1 254:0 / / rw - ext4 /dev/vda rw
            42 1 8:2 / /b rw - ext4 /dev/sda2 rw
            """)
        let s = try select(config(), t)
        #expect(s.targets.map(\.mountPoint) == ["/a", "/b", "/"])
        #expect(reason(s, "/mnt/bind") == .sameFilesystemAs("/"))
    }

    @Test func unknownNonBlockSourceSkipped() throws {
        let t = mountTable("50 1 0:60 / /x rw - weirdfs something rw")
        #expect(try reason(select(config(), t), "/x") == .notBlockDevice)
    }

    @Test func excludesByMountpointTypeAndSourceApplyToTheWholeFilesystem() throws {
        let s = try select(config(excludeMountpoints: ["/data"], excludeTypes: ["xfs"], excludeSources: ["/dev/sda2"]))
        #expect(s.targets.map(\.mountPoint) == ["/"])
        #expect(reason(s, "/data") == .excludedMountpoint)
        #expect(reason(s, "/home") == .filesystemExcluded(by: "/data"))
        #expect(reason(s, "/var/lib/db") == .excludedFileSystemType)
        #expect(reason(s, "/boot") == .excludedSource)
        #expect(reason(s, "/var/www") == .excludedSource)
    }

    @Test func allowListIsTheOnlyCandidateSet() throws {
        let s = try select(config(mountpoints: ["/var/lib/db", "/mnt/nfs", "/gone"]))
        #expect(s.targets.map(\.mountPoint) == ["/var/lib/db"])
        #expect(reason(s, "/") == .notInAllowList)
        #expect(reason(s, "/mnt/nfs") == .cannotFreeze(fileSystemType: "nfs4"))
        #expect(s.missingAllowListed == ["/gone"])
    }

    @Test func allowListedLoopMountsAreFrozenFirst() throws {
        let s = try select(config(mountpoints: ["/boot", "/mnt/image"]))
        #expect(s.targets.map(\.mountPoint) == ["/mnt/image", "/boot"])
    }

    @Test func emulatedRequiresAnAllowListAndNeverFreezesRoot() throws {
        #expect(throws: MountSelectionError.allowListRequiredWhenEmulated) { try select(config(), emulated: true) }
        let s = try select(config(mountpoints: ["/", "/boot"]), emulated: true)
        #expect(s.targets.map(\.mountPoint) == ["/boot"])
        #expect(reason(s, "/") == .rootWhenEmulated)
    }

    @Test func shadowedMountIsSkipped() throws {
        let t = mountTable(
            """
            41 1 8:1 / /m rw - ext4 /dev/sda1 rw
            42 1 8:2 / /m rw - ext4 /dev/sda2 rw
            """)
        let s = try select(config(), t)
        #expect(s.targets.map(\.source) == ["/dev/sda2"])
        #expect(reason(s, "/m") == .shadowed)
    }

    @Test func configurationFromSectionWithDefaultsAndErrors() throws {
        let empty = try VSSConfiguration(section: .empty("vss"), configDirectory: "/etc/hvguest")
        #expect(empty.hooksDirectory == "/etc/hvguest/freeze.d")
        #expect(empty.thawDeadlineSeconds == 120)
        #expect(empty.failOnHookError)
        #expect(empty.mountpoints.isEmpty)
        let section = ConfigSectionShim.make([
            "mountpoints": .array([.string("/mnt/a/")]), "thaw_deadline_seconds": .integer(30),
            "fail_on_hook_error": .bool(false), "exclude_fstypes": .array([.string("xfs")]),
        ])
        let c = try VSSConfiguration(section: section, configDirectory: "/etc/hvguest")
        #expect(c.mountpoints == ["/mnt/a"])
        #expect(c.thawDeadlineSeconds == 30)
        #expect(!c.failOnHookError)
        #expect(c.excludeFileSystemTypes == ["xfs"])
        #expect(throws: (any Error).self) {
            try VSSConfiguration(section: ConfigSectionShim.make(["thaw_deadline_seconds": .integer(901)]), configDirectory: "/e")
        }
        #expect(throws: (any Error).self) {
            try VSSConfiguration(section: ConfigSectionShim.make(["thaw_deadline_second": .integer(1)]), configDirectory: "/e")
        }
        #expect(throws: (any Error).self) {
            try VSSConfiguration(section: ConfigSectionShim.make(["mountpoints": .array([.string("rel")])]), configDirectory: "/e")
        }
    }

    @Test func sysfsLoopDetectionFollowsSlaves() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let fm = FileManager.default
        let sys = dir.path
        // loop0 (7:0): a device with a loop/ attribute directory.
        try fm.createDirectory(atPath: sys + "/devices/virtual/block/loop0/loop", withIntermediateDirectories: true)
        // dm-0 (253:0) on top of loop0.
        try fm.createDirectory(atPath: sys + "/devices/virtual/block/dm-0/slaves", withIntermediateDirectories: true)
        try fm.createSymbolicLink(
            atPath: sys + "/devices/virtual/block/dm-0/slaves/loop0", withDestinationPath: "../../loop0")
        // dm-1 (253:1) on top of sda (8:0), no loop anywhere.
        try fm.createDirectory(atPath: sys + "/devices/virtual/block/dm-1/slaves", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: sys + "/devices/pci/block/sda", withIntermediateDirectories: true)
        try fm.createSymbolicLink(
            atPath: sys + "/devices/virtual/block/dm-1/slaves/sda", withDestinationPath: "../../../../pci/block/sda")
        try fm.createDirectory(atPath: sys + "/dev/block", withIntermediateDirectories: true)
        for (n, target) in [("7:0", "loop0"), ("253:0", "dm-0"), ("253:1", "dm-1")] {
            try fm.createSymbolicLink(
                atPath: sys + "/dev/block/" + n, withDestinationPath: "../../devices/virtual/block/" + target)
        }
        try fm.createSymbolicLink(atPath: sys + "/dev/block/8:0", withDestinationPath: "../../devices/pci/block/sda")
        let sources: [String: DeviceNumber] = ["/dev/loop0": .init(major: 7, minor: 0), "/dev/sda": .init(major: 8, minor: 0)]
        let i = SysfsBlockDeviceInspector(sysfsRoot: sys, deviceNumberOfSource: { sources[$0] })
        #expect(i.isLoopBacked(source: "/dev/loop0", device: .init(major: 7, minor: 0)))
        #expect(i.isLoopBacked(source: "/dev/mapper/x", device: .init(major: 253, minor: 0)))
        #expect(!i.isLoopBacked(source: "/dev/mapper/y", device: .init(major: 253, minor: 1)))
        #expect(!i.isLoopBacked(source: "/dev/sda", device: .init(major: 8, minor: 0)))
        // btrfs: anonymous superblock device, the source node says loop.
        #expect(i.isLoopBacked(source: "/dev/loop0", device: .init(major: 0, minor: 55)))
        #expect(!i.isLoopBacked(source: "/dev/sda", device: .init(major: 0, minor: 56)))
        // Large numbers (PROTOCOL.md V1) are just strings here.
        #expect(!i.isLoopBacked(source: "/dev/x", device: .init(major: 259, minor: 1_048_575)))
    }
}
