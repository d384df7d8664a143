import HVSystem

/// The lifecycle every channel runner shares (relay, UIO, IC): one named OS thread, a stop
/// flag, an eventfd that wakes any wait of that thread when stopping, sleeps that end early on
/// stop, the exponential back-off, and the "busy since" mark the watchdog reads.
public final class ChannelThread: @unchecked Sendable {
    /// Signalled by `stop()` (and left signalled): include it in every wait of the thread.
    public let wake: EventFD
    private let stopping = Locked(false)
    private var thread: OSThread?
    private let busySince = Locked<UInt64?>(nil)

    public init() throws(SystemError) {
        wake = try EventFD()
    }

    public func start(name: String, _ body: @escaping @Sendable () -> Void) throws(SystemError) {
        thread = try OSThread(name: name, body)
    }

    /// Asks the thread to finish and waits for it.
    public func stop() {
        stopping.withLock { $0 = true }
        wake.signal()
        thread?.join()
        thread = nil
    }

    public var isStopping: Bool { stopping.withLock { $0 } }

    /// Sleeps up to `milliseconds`, returning early (true) when asked to stop.
    public func pause(_ milliseconds: Int32) -> Bool {
        if isStopping { return true }
        _ = try? poll([(wake.fd, .readable)], timeoutMilliseconds: milliseconds)
        return isStopping
    }

    /// Marks the start (a monotonic timestamp) or the end (nil) of a request.
    public func markBusy(since start: UInt64?) {
        busySince.withLock { $0 = start }
    }

    /// Nanoseconds the current request has been running, or nil when idle.
    public func busyNanoseconds() -> UInt64? {
        busySince.withLock { $0 }.map { monotonicNanoseconds() &- $0 }
    }

    /// The delay after `failures` consecutive failures: `initial` doubling each time, capped.
    public static func backoff(failures: Int, initial: Int32, maximum: Int32) -> Int32 {
        let ms = Int64(initial) << min(max(failures - 1, 0), 16)
        return Int32(min(ms, Int64(maximum)))
    }
}
