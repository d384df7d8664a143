import CSystemd
import Glibc

/// The systemd notification protocol (`sd_notify`), for a `Type=notify` unit with a watchdog.
///
/// Every call is a no-op when `NOTIFY_SOCKET` is unset (not started by systemd, or a test).
public enum SystemdNotify {
    /// True when systemd (or a test standing in for it) listens for notifications.
    public static var isEnabled: Bool { environment("NOTIFY_SOCKET") != nil }

    /// Sends raw `NAME=value` assignments separated by newlines.
    public static func send(_ state: String) throws(SystemError) {
        guard isEnabled else { return }
        let r = sd_notify(0, state)
        if r < 0 { throw SystemError("sd_notify", errno: -r) }
    }

    /// Start-up is complete: systemd moves the unit to "active".
    public static func ready(status: String? = nil) throws(SystemError) {
        try send("READY=1" + (status.map { "\nSTATUS=" + oneLine($0) } ?? ""))
    }

    /// A free-form status line shown by `systemctl status`.
    public static func status(_ text: String) throws(SystemError) {
        try send("STATUS=" + oneLine(text))
    }

    /// Proves liveness; must be sent within `watchdogInterval` or systemd restarts the unit.
    public static func watchdog() throws(SystemError) {
        try send("WATCHDOG=1")
    }

    /// Shutdown has begun.
    public static func stopping(status: String? = nil) throws(SystemError) {
        try send("STOPPING=1" + (status.map { "\nSTATUS=" + oneLine($0) } ?? ""))
    }

    /// The watchdog timeout systemd set for this process (`WatchdogSec=`), or nil when there is
    /// none or it is meant for another process (`WATCHDOG_PID`).
    public static var watchdogInterval: Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(clamping: usec))
    }

    /// A newline would start a new assignment, so status text is kept to one line.
    private static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }
}
