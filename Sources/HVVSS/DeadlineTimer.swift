import HVSystem

/// One OS thread that calls `onExpiry` when an armed deadline passes.
///
/// Used for the auto-thaw: if no THAW arrives within the configured time after a FREEZE, the
/// daemon thaws on its own. The callback runs on the timer thread with no lock of ours held,
/// and gets the generation it was armed with so a stale expiry can be told apart.
final class DeadlineTimer: Sendable {
    private struct State {
        var deadline: UInt64?
        var generation: UInt64 = 0
        var stopped = false
    }
    private let state = Locked(State())
    private let wake: EventFD
    private let thread = Locked<OSThread?>(nil)
    private let name: String
    private let onExpiry: @Sendable (UInt64) -> Void

    init(name: String, onExpiry: @escaping @Sendable (UInt64) -> Void) throws(SystemError) {
        self.name = name
        self.onExpiry = onExpiry
        wake = try EventFD()
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
        wake.signal()
    }

    func disarm() {
        state.withLock { $0.deadline = nil }
        wake.signal()
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
            enum Step { case stop, fire(UInt64), wait(Int32) }
            let step = state.withLock { s -> Step in
                if s.stopped { return .stop }
                guard let d = s.deadline else { return .wait(-1) }
                if now >= d {
                    s.deadline = nil
                    return .fire(s.generation)
                }
                let ms = (d - now + 999_999) / 1_000_000
                return .wait(Int32(min(ms, 60_000)))
            }
            switch step {
            case .stop: return
            case .fire(let g): onExpiry(g)
            case .wait(let ms):
                _ = try? poll([(wake.fd, .readable)], timeoutMilliseconds: ms)
                wake.drain()
            }
        }
    }
}
