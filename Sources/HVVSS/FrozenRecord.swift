import Glibc
import HVSystem

/// The frozen-filesystem record: `<runtimeDirectory>/vss-frozen`, one mountpoint per line.
///
/// Written **before** the first FIFREEZE and removed after a complete thaw, so a daemon that
/// dies while filesystems are frozen leaves a list that the next start, or `hvguestd thaw-all`
/// in `ExecStopPost=`, uses to thaw them. The runtime directory is `/run/hvguest`, on tmpfs on
/// real systems: never a filesystem we freeze, so the record can be removed while frozen
/// filesystems are being thawed, and a reboot (which thaws everything) also forgets it.
///
/// Plain write and unlink, no fsync or rename (they were ≈ 8 of the freeze window's system
/// calls): the record only has to outlive the *process*, and a written page does. A power
/// loss thaws every filesystem anyway, so a record that did not reach the disk loses nothing;
/// one left over from before a reboot makes `thaw-all` try filesystems that are not frozen,
/// which is harmless. A crash in the middle of writing it happens before anything is frozen,
/// so a torn record is harmless too.
public enum FrozenRecord {
    public static let fileName = "vss-frozen"
    static let header = "# hvguest: filesystems that may still be frozen; `hvguestd thaw-all` thaws them"

    public static func path(runtimeDirectory: String) -> String {
        (runtimeDirectory.hasSuffix("/") ? runtimeDirectory : runtimeDirectory + "/") + fileName
    }

    /// The file's bytes: header line, then each mountpoint with `\`, newline and other control
    /// bytes escaped as `\ooo` (as in mountinfo).
    public static func encode(_ mountPoints: [String]) -> [UInt8] {
        var out = Array((header + "\n").utf8)
        for m in mountPoints {
            for b in m.utf8 {
                if b == UInt8(ascii: "\\") || b < 0x20 || b == 0x7F {
                    out += Array("\\".utf8)
                    out += Array(String(b, radix: 8).leftPadded3().utf8)
                } else {
                    out.append(b)
                }
            }
            out.append(UInt8(ascii: "\n"))
        }
        return out
    }

    /// The mountpoints listed; comment lines and lines that are not absolute paths are ignored
    /// (a damaged record must not make us thaw something odd — thawing is harmless anyway).
    public static func decode(_ bytes: [UInt8]) -> [String] {
        let text = String(decoding: bytes, as: UTF8.self)
        var out: [String] = []
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let m = try? MountEntry.unescape(line, lineNumber: 0), m.hasPrefix("/") else { continue }
            out.append(m)
        }
        return out
    }

    public static func write(_ mountPoints: [String], runtimeDirectory: String) throws(SystemError) {
        let p = path(runtimeDirectory: runtimeDirectory)
        let bytes = encode(mountPoints)
        do {
            try PathOps.writeFile(p, bytes)
        } catch where error.errno == ENOENT {
            // First freeze after boot (or the directory was removed): create it, then retry.
            // Not done up front: it is inside the freeze window.
            try makeDirectories(runtimeDirectory)
            try PathOps.writeFile(p, bytes)
        }
    }

    /// The recorded mountpoints, or nil when there is no record.
    public static func read(runtimeDirectory: String) throws(SystemError) -> [String]? {
        let p = path(runtimeDirectory: runtimeDirectory)
        guard PathOps.exists(p) else { return nil }
        return decode(try readFile(p, limit: 1 << 20))
    }

    public static func remove(runtimeDirectory: String) throws(SystemError) {
        try PathOps.removeFile(path(runtimeDirectory: runtimeDirectory))
    }
}

extension String {
    fileprivate func leftPadded3() -> String { count >= 3 ? self : String(repeating: "0", count: 3 - count) + self }
}
