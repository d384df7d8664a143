import CHVLinux
import Glibc

/// The 4-byte interrupt protocol of `/dev/uioN` and of its fake-device-layer stand-in (a
/// SOCK_SEQPACKET socket where one 4-byte packet is one 4-byte read or write; DESIGN.md).
extension Descriptor {
    /// One 4-byte read (the UIO event count) or one 4-byte packet when `isSocket`. Returns nil
    /// when the peer closed the socket. Any other length is an error (EPROTO), never a trap.
    public func readUInt32(isSocket: Bool) throws(SystemError) -> UInt32? {
        var value: UInt32 = 0
        let n = try withUnsafeMutableBytes(of: &value) { (raw) throws(SystemError) -> Int in
            if isSocket {
                return try retryOnInterrupt("recv 4 bytes") { Glibc.recv(fd, raw.baseAddress, 4, Int32(MSG_TRUNC)) }
            }
            return try retryOnInterrupt("read 4 bytes") { Glibc.read(fd, raw.baseAddress, 4) }
        }
        if n == 0 && isSocket { return nil }
        if n != 4 { throw SystemError("read of a 4-byte interrupt count returned \(n) bytes", errno: EPROTO) }
        return UInt32(littleEndian: value)
    }

    /// One 4-byte write (UIO irqcontrol: 1 = unmask and signal) or one 4-byte packet.
    /// Sockets use MSG_NOSIGNAL so a closed peer is an EPIPE error, not a SIGPIPE.
    public func writeUInt32(_ value: UInt32, isSocket: Bool) throws(SystemError) {
        var v = value.littleEndian
        let n = try withUnsafeBytes(of: &v) { (raw) throws(SystemError) -> Int in
            if isSocket {
                return try retryOnInterrupt("send 4 bytes") { Glibc.send(fd, raw.baseAddress, 4, Int32(MSG_NOSIGNAL)) }
            }
            return try retryOnInterrupt("write 4 bytes") { Glibc.write(fd, raw.baseAddress, 4) }
        }
        if n != 4 { throw SystemError("write of a 4-byte interrupt control wrote \(n) bytes", errno: EIO) }
    }
}

/// Small file helpers for the (real or fake) sysfs tree. Namespaced to keep HVSystem's free
/// function names for general use.
public enum Sysfs {
    /// Names in a directory (no `.` / `..`), sorted; symlinks to directories are included as
    /// sysfs device links are.
    public static func entries(of path: String) throws(SystemError) -> [String] {
        try directoryEntryNames(path).sorted()
    }

    /// A small attribute file's text with trailing newlines and spaces removed.
    public static func readAttribute(_ path: String) throws(SystemError) -> String {
        let bytes = try readFile(path, limit: 4096)
        var text = String(decoding: bytes, as: UTF8.self)
        while let last = text.last, last == "\n" || last == " " { text.removeLast() }
        return text
    }

    /// Creates or replaces a file with `contents` (the emulator's fake sysfs attributes).
    public static func writeFile(_ path: String, contents: String, mode: mode_t = 0o644) throws(SystemError) {
        try PathOps.writeFile(path, Array(contents.utf8), mode: mode)
    }
}

extension Descriptor {
    /// Opens a device node read-write (close-on-exec).
    public static func openReadWrite(_ path: String) throws(SystemError) -> Descriptor {
        try open(path, flags: O_RDWR)
    }
}

extension SystemError {
    /// The device or peer is gone: EIO (UIO after a rescind), EPIPE / ECONNRESET (socket peer
    /// closed), ENODEV.
    public var meansDeviceGone: Bool { errno == EIO || errno == EPIPE || errno == ECONNRESET || errno == ENODEV }

    /// ENOENT.
    public var isNoSuchFile: Bool { errno == ENOENT }

    /// A "no such file" error for `operation` (when a path is missing before any call).
    public static func noSuchFile(_ operation: String) -> SystemError { SystemError(operation, errno: ENOENT) }
}
