import Glibc
import HVSystem
import HVWire
import Logging

/// The polling and back-off of a channel runner (each runner's `Settings`).
public protocol ReconnectPolicy: Sendable {
    /// How often to look for a device that is missing (or not bound) yet.
    var devicePollMilliseconds: Int32 { get }
    /// First delay after a failure; doubles per consecutive failure.
    var initialBackoffMilliseconds: Int32 { get }
    /// Cap of the back-off (`daemon.reconnect_max_seconds`).
    var maximumBackoffMilliseconds: Int32 { get }
}

extension RelayChannelRunner.Settings: ReconnectPolicy {}
extension UIOChannelRunner.Settings: ReconnectPolicy {}
extension ICChannelRunner.Settings: ReconnectPolicy {}

/// How a runner's `serve` ended.
enum ChannelOutcome {
    /// Asked to stop.
    case stopped
    /// The channel failed; `wasConnected` when it had registered or been negotiated first.
    case failed(String, wasConnected: Bool)
}

/// What the three channel runners (relay, UIO, IC) share around their own protocol: the
/// thread (`ChannelThread`), the service's status slot and logger, and the open → serve →
/// back off → reopen policy with its reporting:
/// - a missing or unbound device is reported once per reason and polled every
///   `devicePollMilliseconds` (never a busy loop, never a log line per poll);
/// - a failure to open backs off exponentially from `initialBackoffMilliseconds` up to
///   `maximumBackoffMilliseconds`;
/// - a channel that worked and then failed (kernel reset, emulator restart) is reopened after
///   the initial delay; one that fails before registering counts as another failure.
final class ChannelSupervisor: @unchecked Sendable {
    let service: ServiceName
    let core: ChannelThread
    let slot: StatusSlot
    /// The environment's logger with the service's journal field (built once: setting
    /// metadata allocates, and answers are recorded per request).
    let logger: Logger
    private let policy: any ReconnectPolicy
    /// Used only by the runner's thread.
    private var failures = 0
    private var reportedWait: String?

    init(service: ServiceName, environment: ServiceEnvironment, status: StatusBoard, policy: any ReconnectPolicy) throws(SystemError) {
        self.service = service
        self.policy = policy
        slot = status.slot(service)
        var l = environment.logger
        l[metadataKey: LogField.service] = "\(service.rawValue)"
        logger = l
        core = try ChannelThread()
    }

    func start(_ body: @escaping @Sendable () -> Void) throws(SystemError) {
        slot.update { $0.state = .starting }
        try core.start(name: "hv-\(service.rawValue)", body)
    }

    var isStopping: Bool { core.isStopping }

    /// Asks the thread to finish and waits for it.
    func stop() { core.stop() }

    /// The thread's last word, after its loop ended.
    func stopped() {
        slot.update { $0.state = .stopped }
    }

    // MARK: The reconnect loop

    /// No device to open yet: shows `state`, logs `why` when it is new, waits one poll
    /// interval. True when asked to stop.
    func waitForDevice(_ why: String, state: ChannelState) -> Bool {
        slot.update { $0.state = state }
        if reportedWait != why {
            logger.info("\(why)")
            reportedWait = why
        }
        return core.pause(policy.devicePollMilliseconds)
    }

    /// Found a device: the next wait is reported again.
    func deviceFound() {
        reportedWait = nil
    }

    /// Opening failed: reports it and backs off. True when asked to stop.
    func openFailed(_ why: String) -> Bool {
        failures += 1
        fail(why)
        return core.pause(backoff())
    }

    /// `serve` returned: true when the loop must end; otherwise it has reported the failure
    /// and waited before the next open.
    func ended(_ outcome: ChannelOutcome) -> Bool {
        switch outcome {
        case .stopped:
            return true
        case .failed(let why, let wasConnected):
            failures = wasConnected ? 1 : failures + 1
            fail(why)
            return core.pause(wasConnected ? policy.initialBackoffMilliseconds : backoff())
        }
    }

    private func backoff() -> Int32 {
        ChannelThread.backoff(failures: failures, initial: policy.initialBackoffMilliseconds, maximum: policy.maximumBackoffMilliseconds)
    }

    private func fail(_ why: String) {
        slot.update { $0.state = .error(why) }
        logger.warning("\(why); reopening in \(backoff()) ms")
    }

    // MARK: Status and journal

    /// Registered (relay) or negotiated (UIO, IC): shows it and counts it.
    func registered(_ version: String, message: String) {
        slot.update {
            $0.state = .registered(version: version)
            $0.registrations += 1
        }
        logger.notice("\(message)")
    }

    /// Counts one answer, shows it as the last request and logs it: at debug level when
    /// `quiet`, else as a notice with the operation, status and duration as journal fields.
    /// Nothing is formatted for a line that will not be written: answers can come thousands
    /// per second (file fragments), and formatting each was half of the daemon's CPU during a
    /// file copy (callgrind, bench/RESULTS.md).
    func record(operation: String, status: HResult, detail: String?, micros: UInt64, failed: Bool, quiet: Bool,
                fields: [String: String] = [:])
    {
        slot.update {
            $0.requests += 1
            if failed { $0.failures += 1 }
            $0.lastRequest = LastRequest(operation: operation, status: status, detail: detail,
                                         durationMicroseconds: micros, answeredAt: time(nil))
        }
        let l = logger
        guard l.logLevel <= (quiet ? .debug : .notice) else { return }
        var meta: Logger.Metadata = [
            LogField.operation: "\(operation)",
            LogField.status: "\(status.description)",
            LogField.durationMicroseconds: "\(micros)",
        ]
        for (k, v) in fields { meta[k] = "\(v)" }
        let text = detail.map { "\(operation) \($0) → \(status)" } ?? "\(operation) → \(status)"
        if quiet {
            l.debug("\(text)", metadata: meta)
        } else {
            l.notice("\(text)", metadata: meta)
        }
    }
}
