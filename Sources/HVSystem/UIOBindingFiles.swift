import Glibc

extension Sysfs {
    /// Writes `value` to an existing attribute file (sysfs `store`), never creating one: a
    /// missing attribute means the kernel (or fake tree) lacks the feature, and creating a
    /// regular file in its place would hide that.
    public static func writeAttribute(_ path: String, _ value: String) throws(SystemError) {
        let d = try Descriptor.open(path, flags: O_WRONLY | O_TRUNC)
        defer { d.close() }
        let bytes = Array(value.utf8)
        try bytes.withUnsafeBytes { raw in Result { () throws(SystemError) in try d.writeAll(raw) } }.get()
    }

    /// The target of a symbolic link (e.g. a device's `driver` link), nil when `path` is not a link.
    public static func linkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBufferPointer { b -> Int in
            guard let base = b.baseAddress else { return -1 }
            return readlink(path, base, 4095)
        }
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// True when `path` exists (any kind, links not followed).
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }
}

extension SystemError {
    /// EBUSY or EEXIST: what a sysfs `bind` answers for a device that is already bound.
    public var meansAlreadyBound: Bool { errno == EBUSY || errno == EEXIST }
}
