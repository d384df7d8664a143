import Glibc

/// The running kernel's release (`uname -r`), e.g. `6.12.48+deb13-amd64`.
public func kernelRelease() -> String {
    var u = utsname()
    guard uname(&u) == 0 else { return "" }
    return withUnsafeBytes(of: u.release) { raw in String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self) }
}

extension Sysfs {
    /// Writes `value` to an existing attribute (one write, no create: a missing attribute means
    /// the driver or device is not there, which must fail rather than leave a stray file).
    public static func writeAttribute(_ path: String, _ value: String) throws(SystemError) {
        let d = try Descriptor.open(path, flags: O_WRONLY)
        defer { d.close() }
        let bytes = Array(value.utf8)
        try bytes.withUnsafeBytes { raw in Result { () throws(SystemError) in try d.writeAll(raw) } }.get()
    }
}
