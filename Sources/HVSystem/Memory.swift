import CHVLinux
import Glibc

/// A shared read-write mapping of a file descriptor (`mmap(MAP_SHARED)`), unmapped exactly once
/// (on `unmap()` or deinit). Whoever hands out pointers into it must keep it alive and stop every
/// user before unmapping.
public final class MappedMemory: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let length: Int
    private let unmapped = Locked(false)

    /// Maps `length` bytes of `descriptor` at `offset` (a multiple of the page size).
    public init(mapping descriptor: Descriptor, length: Int, offset: Int = 0) throws(SystemError) {
        guard length > 0 else { throw SystemError("mmap (length \(length))", errno: EINVAL) }
        let p = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor.fd, off_t(offset))
        guard let p, p != MAP_FAILED else { throw SystemError.last("mmap \(length) bytes of \(descriptor)") }
        base = p
        self.length = length
    }

    /// Unmaps now; later calls do nothing.
    public func unmap() {
        let first = unmapped.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        if first { munmap(base, length) }
    }

    deinit { unmap() }
}

/// Anonymous shared memory (`memfd_create`), the stand-in for UIO map0 in the fake device layer.
public enum SharedMemory {
    /// A close-on-exec memfd of `size` zeroed bytes.
    public static func create(name: String, size: Int) throws(SystemError) -> Descriptor {
        let fd = chv_memfd_create(name)
        if fd < 0 { throw SystemError.last("memfd_create \(name)") }
        let d = Descriptor(adopting: fd)
        if ftruncate(fd, off_t(size)) != 0 { throw SystemError.last("ftruncate memfd \(name) to \(size)") }
        return d
    }
}

extension Descriptor {
    /// `st_size` from `fstat(2)`: how much of a memfd or file can be mapped without SIGBUS.
    public func mappableSize() throws(SystemError) -> Int {
        var st = stat()
        if fstat(fd, &st) != 0 { throw SystemError.last("fstat \(self)") }
        return Int(st.st_size)
    }
}
