import HVSystem

/// One OS thread that calls `onExpiry` when an armed deadline passes.
///
/// Used for the auto-thaw: if no THAW arrives within the configured time after a FREEZE, the
/// daemon thaws on its own. The callback runs on the timer thread with no lock of ours held,
/// and gets the generation it was armed with so a stale expiry can be told apart. The thread
/// waits on a timerfd, so arming and disarming (inside the freeze window) do not wake it.
final class DeadlineTimer: Sendable {
    private struct State {
        var deadline: UInt64?
        var generation: UInt64 = 0
        var stopped = false
    }
    private let state = Locked(State())
    private let wake: EventFD
    private let timer: TimerFD
    private let thread = Locked<OSThread?>(nil)
    private let name: String
    private let onExpiry: @Sendable (UInt64) -> Void

    init(name: String, onExpiry: @escaping @Sendable (UInt64) -> Void) throws(SystemError) {
        self.name = name
        self.onExpiry = onExpiry
        wake = try EventFD()
        timer = try TimerFD()
    }

    /// Arms (or re-arms) the timer; the thread starts on first use.
    func arm(afterNanoseconds delay: UInt64, generation: UInt64) throws(SystemError) {
        let at = monotonicNanoseconds() &+ delay
        state.withLock {
            $0.deadline = at
            $0.generation = generation
        }
        var startError: SystemError?
        thread.withLock { t in
            guard t == nil else { return }
            do throws(SystemError) {
                t = try OSThread(name: name) { [self] in loop() }
            } catch { startError = error }
        }
        if let startError { throw startError }
        try timer.arm(afterNanoseconds: delay)
    }

    func disarm() {
        state.withLock { $0.deadline = nil }
        timer.disarm()
    }

    /// Stops and joins the thread (tests and daemon shutdown).
    func stop() {
        state.withLock { $0.stopped = true }
        wake.signal()
        let t = thread.withLock { t -> OSThread? in
            defer { t = nil }
            return t
        }
        t?.join()
    }

    private func loop() {
        while true {
            let now = monotonicNanoseconds()
            enum Step { case stop, fire(UInt64), wait(remaining: UInt64?) }
            let step = state.withLock { s -> Step in
                if s.stopped { return .stop }
                if let d = s.deadline, now >= d {
                    s.deadline = nil
                    return .fire(s.generation)
                }
                // Not due (or disarmed): the timerfd was (re-)armed for the current deadline.
                return .wait(remaining: s.deadline.map { $0 - now })
            }
            switch step {
            case .stop: return
            case .fire(let g): onExpiry(g)
            case .wait(let remaining):
                // Woken before the deadline (a re-arm raced with an expiry): arm for the rest.
                if let remaining { try? timer.arm(afterNanoseconds: remaining) }
                _ = try? poll([(timer.fd, .readable), (wake.fd, .readable)], timeoutMilliseconds: -1)
                timer.drain()
                wake.drain()
            }
        }
    }
}
