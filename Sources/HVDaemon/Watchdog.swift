import HVSystem

/// Answers systemd's watchdog from its own thread while the daemon is healthy.
///
/// It pings at half the interval systemd asked for (as `sd_watchdog_enabled(3)` advises), and
/// only while `isAlive` returns true: a daemon whose channel threads are stuck stops pinging,
/// and systemd restarts it. Runs on an `OSThread` so a busy cooperative pool cannot starve it.
public final class WatchdogPinger: Sendable {
    private let wakeup: EventFD
    private let thread: Locked<OSThread?>
    /// How often `ping` is attempted.
    public let period: Duration

    /// Starts pinging every `interval / 2`.
    /// - Parameters:
    ///   - interval: systemd's watchdog timeout (`SystemdNotify.watchdogInterval`).
    ///   - isAlive: checked before each ping; must be quick and must not block.
    ///   - ping: sends one ping; default `WATCHDOG=1` to systemd.
    public init(
        interval: Duration, isAlive: @escaping @Sendable () -> Bool,
        ping: @escaping @Sendable () -> Void = { try? SystemdNotify.watchdog() }
    ) throws(SystemError) {
        let wakeup = try EventFD()
        let period = interval / 2
        let periodMilliseconds = max(1, Int32(clamping: period.components.seconds * 1000 + period.components.attoseconds / 1_000_000_000_000_000))
        self.wakeup = wakeup
        self.period = period
        let thread = try OSThread(name: "hv-watchdog") {
            while true {
                if isAlive() { ping() }
                // Sleep until the next ping or until stop() signals the eventfd.
                guard let events = try? poll([(wakeup.fd, .readable)], timeoutMilliseconds: periodMilliseconds) else { return }
                if events.first.map({ !$0.isEmpty }) ?? true { return }
            }
        }
        self.thread = Locked(thread)
    }

    /// Starts a pinger when `settings.watchdog` is on and systemd set a watchdog for this
    /// process; nil otherwise (nothing to answer).
    public static func startIfRequested(settings: DaemonSettings, isAlive: @escaping @Sendable () -> Bool) throws(SystemError) -> WatchdogPinger? {
        guard settings.watchdog, let interval = SystemdNotify.watchdogInterval else { return nil }
        return try WatchdogPinger(interval: interval, isAlive: isAlive)
    }

    /// Stops the thread and waits for it. Safe to call more than once.
    public func stop() {
        guard let t = thread.withLock({ t -> OSThread? in
            let current = t
            t = nil
            return current
        }) else { return }
        wakeup.signal()
        t.join()
    }

    deinit { stop() }
}
