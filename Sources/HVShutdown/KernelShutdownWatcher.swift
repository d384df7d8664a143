import HVServiceKit
import HVSystem
import Logging

/// Recognises hv_utils' log lines for a host-initiated power action (kernel mode). hv_utils
/// answers the host, logs one of these (`pr_info`, prefix `hv_utils: `) and then starts
/// `orderly_poweroff` / `orderly_reboot` or sends a hibernate uevent (PROTOCOL.md §5.2).
public enum HostShutdownRecognizer {
    /// Accepts a `/dev/kmsg` record (`PRI,SEQ,TS,FLAGS;text`) or a bare text line.
    public static func recognize(_ line: Substring) -> PowerAction? {
        let text = line.firstIndex(of: ";").map { line[line.index(after: $0)...] } ?? line
        guard text.containsText("hv_utils") || text.containsText("request received") else { return nil }
        if text.containsText("Shutdown request received") { return .poweroff }
        if text.containsText("Restart request received") { return .reboot }
        if text.containsText("Hibernation request received") { return .hibernate }
        return nil
    }
}

/// Kernel mode companion: watches the kernel log and runs the shutdown hooks as soon as hv_utils
/// reports a host-initiated power action. The power action itself is the kernel's (systemd's
/// shutdown transaction starts in parallel); `stop()` waits for running hooks, and hvguestd is
/// stopped before shutdown.target is reached, so the hooks finish before the system goes down
/// (bounded by the hook time limit and the unit's TimeoutStopSec).
public final class KernelShutdownWatcher: @unchecked Sendable {
    private let path: String
    private let hooks: ShutdownHooks
    private let logger: Logger
    private let wake: EventFD
    private let stopping = Locked(false)
    private let seen = Locked<[PowerAction]>([])
    private let started = Locked(false)
    private var thread: OSThread?
    /// How long to wait before looking again at a plain file with nothing new.
    public var filePollMilliseconds: Int32 = 200

    /// - Parameter kernelLogPath: `DEVROOT/dev/kmsg`.
    public init(kernelLogPath: String, hooks: ShutdownHooks, logger: Logger) throws(SystemError) {
        path = kernelLogPath
        self.hooks = hooks
        self.logger = logger
        wake = try EventFD()
    }

    /// Host power actions seen so far (hooks were run for each).
    public var recognized: [PowerAction] { seen.current }
    /// True once the log is open (records from then on are seen).
    public var isWatching: Bool { started.current }

    public func start() throws(SystemError) {
        let reader = try KernelLogReader(path: path)
        started.withLock { $0 = true }
        thread = try OSThread(name: "hv-shutdown-kmsg") { [self] in run(reader) }
    }

    public func stop() {
        stopping.withLock { $0 = true }
        wake.signal()
        thread?.join()
        thread = nil
    }

    private func run(_ reader: KernelLogReader) {
        defer { reader.close() }
        var partial: [UInt8] = []
        while !stopping.current {
            let chunk: [UInt8]?
            do { chunk = try reader.readAvailable() } catch {
                logger.warning("kernel log: \(error); host-initiated shutdowns will not run hooks")
                return
            }
            guard let chunk, !chunk.isEmpty else {
                let wait: Int32 = (chunk == nil || !reader.isDevice) ? filePollMilliseconds : -1
                var fds: [(fd: Int32, events: PollEvents)] = [(wake.fd, .readable)]
                if reader.isDevice { fds.append((reader.fd, .readable)) }
                _ = try? poll(fds, timeoutMilliseconds: wait)
                continue
            }
            partial += chunk
            while let newline = partial.firstIndex(of: 10) {
                let line = String(decoding: partial[..<newline], as: UTF8.self)
                partial.removeSubrange(...newline)
                if let action = HostShutdownRecognizer.recognize(line[...]) { runHooks(action) }
            }
            if partial.count > 64 * 1024 { partial.removeAll() }
        }
    }

    private func runHooks(_ action: PowerAction) {
        logger.notice("hv_utils reports a host-initiated \(action.rawValue); running shutdown hooks")
        let request = ShutdownRequest(action: action, force: false, origin: .kernel)
        for result in hooks.runAll(for: request) {
            if result.failure == nil { logger.info("\(result)") } else { logger.warning("\(result)") }
        }
        seen.withLock { $0.append(action) }
    }
}
