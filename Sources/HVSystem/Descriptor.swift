import CHVLinux
import Glibc

/// An owned file descriptor, closed exactly once (explicitly or on deinit).
///
/// Shared between a channel's I/O thread and whoever stops it, so `close()` is guarded.
public final class Descriptor: @unchecked Sendable, CustomStringConvertible {
    /// The descriptor number, or -1 once closed; read and written only under `lock`.
    /// Allocated storage (not stored `var`s): stable addresses for the mutex, and no dynamic
    /// exclusivity checks on every `fd` read in the request path.
    private let _fd: UnsafeMutablePointer<Int32>
    private let lock: UnsafeMutablePointer<pthread_mutex_t>

    public init(adopting fd: Int32) {
        _fd = .allocate(capacity: 1)
        _fd.initialize(to: fd)
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_mutex_t())
        pthread_mutex_init(lock, nil)
    }

    deinit {
        if _fd.pointee >= 0 { Glibc.close(_fd.pointee) }
        pthread_mutex_destroy(lock)
        lock.deallocate()
        _fd.deallocate()
    }

    /// The raw descriptor, or -1 once closed.
    public var fd: Int32 {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return _fd.pointee
    }

    public var isOpen: Bool { fd >= 0 }

    public func close() {
        pthread_mutex_lock(lock)
        let f = _fd.pointee
        _fd.pointee = -1
        pthread_mutex_unlock(lock)
        if f >= 0 { Glibc.close(f) }
    }

    public var description: String { "fd \(fd)" }

    // MARK: I/O

    /// One `read(2)`; returns the bytes read (empty at end of file).
    public func read(max: Int) throws(SystemError) -> [UInt8] {
        // Uninitialized buffer: zero-filling `max` bytes per call cost more than the read itself
        // (callgrind, bench/RESULTS.md); only the bytes read are kept.
        var n = 0
        var failure: SystemError?
        let buf = [UInt8](unsafeUninitializedCapacity: Swift.max(max, 1)) { b, count in
            do throws(SystemError) {
                n = try retryOnInterrupt("read") { Glibc.read(fd, b.baseAddress, max) }
            } catch {
                failure = error
            }
            count = Swift.min(Swift.max(n, 0), max)
        }
        if let failure { throw failure }
        return buf
    }

    /// One `write(2)` of the whole buffer; a short write is an error (messages are atomic).
    public func writeMessage(_ bytes: [UInt8]) throws(SystemError) {
        let n = try retryOnInterrupt("write") { bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, bytes.count) } }
        if n != bytes.count { throw SystemError("write (short: \(n) of \(bytes.count) bytes)", errno: EIO) }
    }

    /// Writes all bytes, continuing after short writes (files, not message devices).
    public func writeAll(_ bytes: UnsafeRawBufferPointer) throws(SystemError) {
        var done = 0
        while done < bytes.count {
            let n = try retryOnInterrupt("write") { Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done) }
            done += Int(n)
        }
    }
}

extension Descriptor {
    /// Opens `path` with close-on-exec always added.
    public static func open(_ path: String, flags: Int32, mode: mode_t = 0) throws(SystemError) -> Descriptor {
        let fd = try retryOnInterrupt("open \(path)") { Glibc.open(path, flags | O_CLOEXEC, mode) }
        return Descriptor(adopting: fd)
    }
}
