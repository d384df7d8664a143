import CSystemd
import Glibc

/// journald's native protocol through libsystemd, plus the facts the daemon needs to decide
/// whether to use it.
public enum Journal {
    /// Where journald listens for native-protocol datagrams.
    public static let socketPath = "/run/systemd/journal/socket"

    /// True when journald's native socket exists (it may still be restarting; sends then fail).
    public static var isSocketPresent: Bool { fileKind(socketPath) == .socket }

    /// True when systemd started this process as a service: `INVOCATION_ID` is set by systemd
    /// for every unit it runs, and `JOURNAL_STREAM` when stdout/stderr go to the journal.
    public static var isUnderSystemd: Bool {
        environment("INVOCATION_ID") != nil || isStandardErrorJournalStream
    }

    /// True when fd 2 is the stream systemd connected to journald (`JOURNAL_STREAM` names its
    /// device and inode; comparing them guards against an inherited, stale variable).
    public static var isStandardErrorJournalStream: Bool {
        guard let value = environment("JOURNAL_STREAM") else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        var st = stat()
        guard fstat(2, &st) == 0 else { return false }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino
    }

    /// Sends one entry made of `NAME=value` fields with `sd_journal_sendv` (values may contain
    /// newlines; libsystemd picks the binary encoding for them). Without journald the entry is
    /// dropped silently, as libsystemd does.
    public static func send(_ fields: [String]) throws(SystemError) {
        guard !fields.isEmpty else { return }
        // One contiguous buffer, one iovec per field: no per-field allocation, no NUL needed.
        var bytes: [UInt8] = []
        var spans: [(offset: Int, count: Int)] = []
        spans.reserveCapacity(fields.count)
        for field in fields {
            let start = bytes.count
            bytes.append(contentsOf: field.utf8)
            spans.append((start, bytes.count - start))
        }
        let result = bytes.withUnsafeMutableBytes { raw -> Int32 in
            guard let base = raw.baseAddress else { return 0 }
            var iov = spans.map { iovec(iov_base: base + $0.offset, iov_len: $0.count) }
            return sd_journal_sendv(&iov, Int32(iov.count))
        }
        if result < 0 { throw SystemError("sd_journal_sendv", errno: -result) }
    }
}

/// Writes `text` to standard error with `write(2)`, continuing after short writes. Errors are
/// ignored: there is nowhere left to report them.
public func writeToStandardError(_ text: String) {
    var bytes = Array(text.utf8)
    bytes.withUnsafeMutableBytes { raw in
        guard let base = raw.baseAddress else { return }
        var done = 0
        while done < raw.count {
            let n = Glibc.write(2, base + done, raw.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            done += n
        }
    }
}

/// The wall-clock time as `2026-11-25T16:34:51.123Z` (UTC, milliseconds), for log lines.
public func utcTimestamp() -> String {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    var t = ts.tv_sec
    var parts = tm()
    gmtime_r(&t, &parts)
    func pad(_ v: Int32, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
    let millis = Int32(ts.tv_nsec / 1_000_000)
    return pad(parts.tm_year + 1900, 4) + "-" + pad(parts.tm_mon + 1, 2) + "-" + pad(parts.tm_mday, 2) + "T"
        + pad(parts.tm_hour, 2) + ":" + pad(parts.tm_min, 2) + ":" + pad(parts.tm_sec, 2) + "." + pad(millis, 3) + "Z"
}
