import Glibc

/// `poll(2)` on one descriptor and, optionally, a second (typically a stop eventfd), without
/// allocating: the channel threads call this once per host interrupt, i.e. per file fragment.
/// Retries on EINTR; `timeoutMilliseconds` < 0 waits forever. The second result is empty when
/// `second` is nil.
public func pollPair(_ first: Int32, _ second: Int32?, events: PollEvents = .readable, timeoutMilliseconds: Int32)
    throws(SystemError) -> (PollEvents, PollEvents)
{
    var pfds = (pollfd(fd: first, events: events.rawValue, revents: 0),
                pollfd(fd: second ?? -1, events: events.rawValue, revents: 0))
    let count: nfds_t = second == nil ? 1 : 2
    _ = try withUnsafeMutableBytes(of: &pfds) { raw throws(SystemError) -> Int32 in
        let base = raw.baseAddress!.assumingMemoryBound(to: pollfd.self)
        return try retryOnInterrupt("poll") { Glibc.poll(base, count, timeoutMilliseconds) }
    }
    return (PollEvents(rawValue: pfds.0.revents), second == nil ? [] : PollEvents(rawValue: pfds.1.revents))
}
