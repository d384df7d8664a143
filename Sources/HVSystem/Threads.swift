import CHVLinux
import Glibc

/// A joinable OS thread. Blocking I/O in hvguest runs on these, never on Swift's cooperative pool.
public final class OSThread: @unchecked Sendable {
    private var handle: pthread_t
    private let box: Box

    private final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        let name: String
        init(_ body: @escaping @Sendable () -> Void, name: String) {
            self.body = body
            self.name = name
        }
    }

    /// Starts `body` on a new thread named `name` (≤ 15 bytes shown by `ps -L`).
    public init(name: String, _ body: @escaping @Sendable () -> Void) throws(SystemError) {
        box = Box(body, name: name)
        let unmanaged = Unmanaged.passRetained(box)
        var t = pthread_t()
        let r = pthread_create(&t, nil, { arg in
            let b = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            chv_set_thread_name(b.name)
            b.body()
            return nil
        }, unmanaged.toOpaque())
        if r != 0 {
            unmanaged.release()
            throw SystemError("pthread_create \(name)", errno: r)
        }
        handle = t
    }

    /// Waits for the thread to finish.
    public func join() {
        pthread_join(handle, nil)
    }
}

/// A mutex-protected value, for state shared between an I/O thread and async code.
///
/// The value and the mutex live in memory allocated once, not in stored `var`s: a mutex must
/// not move (passing `&storedProperty` to C gives no stable-address guarantee), and access
/// through the pointer needs no dynamic exclusivity check — the mutex already gives exclusive
/// access, and those checks were a measurable part of every request (bench/NOTES.md).
public final class Locked<Value>: @unchecked Sendable {
    private let value: UnsafeMutablePointer<Value>
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init(_ value: Value) {
        self.value = .allocate(capacity: 1)
        self.value.initialize(to: value)
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        value.deinitialize(count: 1)
        value.deallocate()
    }

    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value.pointee)
    }

    public var current: Value { withLock { $0 } }
}

/// CLOCK_MONOTONIC in nanoseconds.
public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Sleeps the calling OS thread (never call from async code).
public func sleepMilliseconds(_ ms: Int) {
    var request = timespec(tv_sec: ms / 1000, tv_nsec: (ms % 1000) * 1_000_000)
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}
