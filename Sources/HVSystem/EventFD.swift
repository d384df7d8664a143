import CHVLinux
import Glibc

/// A non-blocking eventfd used to wake an I/O thread out of `poll` (shutdown, new work).
public final class EventFD: @unchecked Sendable {
    public let descriptor: Descriptor

    public init() throws(SystemError) {
        let fd = chv_eventfd()
        if fd < 0 { throw SystemError.last("eventfd") }
        descriptor = Descriptor(adopting: fd)
    }

    public var fd: Int32 { descriptor.fd }

    /// Wakes the poller. Never fails in practice (the counter would have to overflow).
    public func signal() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { Glibc.write(descriptor.fd, $0.baseAddress, 8) }
    }

    /// Resets the counter after a wake-up.
    public func drain() {
        var v: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &v) { Glibc.read(descriptor.fd, $0.baseAddress, 8) }
    }
}

/// What `poll` said about one descriptor.
public struct PollEvents: OptionSet, Sendable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }
    public static let readable = PollEvents(rawValue: Int16(POLLIN))
    public static let writable = PollEvents(rawValue: Int16(POLLOUT))
    public static let error = PollEvents(rawValue: Int16(POLLERR))
    public static let hangup = PollEvents(rawValue: Int16(POLLHUP))
    public static let invalid = PollEvents(rawValue: Int16(POLLNVAL))
}

/// `poll(2)` over several descriptors, retrying on EINTR. `timeoutMilliseconds` < 0 waits forever.
/// Returns the events of each descriptor, in order.
public func poll(_ fds: [(fd: Int32, events: PollEvents)], timeoutMilliseconds: Int32) throws(SystemError) -> [PollEvents] {
    var pfds = fds.map { pollfd(fd: $0.fd, events: $0.events.rawValue, revents: 0) }
    _ = try retryOnInterrupt("poll") { Glibc.poll(&pfds, nfds_t(pfds.count), timeoutMilliseconds) }
    return pfds.map { PollEvents(rawValue: $0.revents) }
}

/// A one-shot monotonic timer readable through `poll` (`timerfd_create(2)`).
///
/// Arming or disarming it does not wake the thread polling it (unlike signalling an eventfd):
/// the VSS thaw deadline is armed inside the freeze window, where a wake-up of the timer
/// thread on the same CPU cost a context switch before the reply went out.
public final class TimerFD: @unchecked Sendable {
    public let descriptor: Descriptor

    public init() throws(SystemError) {
        let fd = chv_timerfd()
        if fd < 0 { throw SystemError.last("timerfd_create") }
        descriptor = Descriptor(adopting: fd)
    }

    public var fd: Int32 { descriptor.fd }

    /// Fires once, `nanoseconds` from now (at least 1 ns: 0 would disarm).
    public func arm(afterNanoseconds nanoseconds: UInt64) throws(SystemError) {
        if chv_timerfd_set(descriptor.fd, Swift.max(nanoseconds, 1)) != 0 { throw SystemError.last("timerfd_settime") }
    }

    public func disarm() {
        _ = chv_timerfd_set(descriptor.fd, 0)
    }

    /// Resets the readable state after the timer fired.
    public func drain() {
        var v: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &v) { Glibc.read(descriptor.fd, $0.baseAddress, 8) }
    }
}
