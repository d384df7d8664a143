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
