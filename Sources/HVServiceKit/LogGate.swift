import HVSystem

/// Holds log output in memory while filesystems are frozen.
///
/// Writing to the journal (or any file) while a filesystem is frozen can block the writer — and
/// if the writer is the daemon that must thaw, the VM hangs (the reference VSS daemon's old
/// deadlock). The VSS service calls `hold()` before the first FIFREEZE and `release()` after the
/// last FITHAW; every log handler sends its output through `submit`, which runs it at once or
/// queues it. The queue is bounded: past `capacity` entries the oldest are dropped and counted.
public final class LogGate: Sendable {
    public static let shared = LogGate()

    private struct State {
        var held = false
        var queue: [@Sendable () -> Void] = []
        var dropped = 0
    }

    private let state = Locked(State())
    public let capacity: Int

    public init(capacity: Int = 10_000) { self.capacity = capacity }

    public var isHeld: Bool { state.withLock { $0.held } }

    /// Runs `write` now, or queues it while held.
    public func submit(_ write: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { s -> Bool in
            guard s.held else { return true }
            if s.queue.count >= capacity {
                s.queue.removeFirst()
                s.dropped += 1
            }
            s.queue.append(write)
            return false
        }
        if runNow { write() }
    }

    public func hold() { state.withLock { $0.held = true } }

    /// Stops holding and runs the queued writes in order. Returns how many were dropped.
    @discardableResult
    public func release() -> Int {
        let (queued, dropped) = state.withLock { s -> ([@Sendable () -> Void], Int) in
            s.held = false
            let q = s.queue
            let d = s.dropped
            s.queue = []
            s.dropped = 0
            return (q, d)
        }
        for w in queued { w() }
        return dropped
    }
}
