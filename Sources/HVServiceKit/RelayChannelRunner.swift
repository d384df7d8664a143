import Glibc
import HVSystem
import HVTransport
import HVWire
import Logging

/// Runs one relay service on its own OS thread: open the device, register, answer requests one
/// at a time, and on any channel failure reset the service, close, back off and start over.
///
/// Never exits on a channel error and never busy-loops: a missing device is re-checked every
/// `devicePollInterval`, repeated failures back off exponentially up to `maximumBackoff`.
public final class RelayChannelRunner: @unchecked Sendable {
    public struct Settings: Sendable {
        /// How often to look for a device that does not exist yet (cheap: one stat).
        public var devicePollMilliseconds: Int32 = 500
        /// First delay after a failure; doubles per consecutive failure.
        public var initialBackoffMilliseconds: Int32 = 100
        /// Cap of the back-off (`daemon.reconnect_max_seconds`).
        public var maximumBackoffMilliseconds: Int32 = 30_000
        /// How long to wait for the kernel's registration answer.
        public var registrationTimeoutMilliseconds: Int32 = 5_000
        public init() {}
    }

    public let service: any RelayService
    private let environment: ServiceEnvironment
    /// This service's entry on the status board (taken once: updated after every request).
    private let statusSlot: StatusSlot
    private let settings: Settings
    private let core: ChannelThread

    /// Built once: building it per request (a metadata dictionary) showed up in profiles.
    private let logger: Logger

    public init(service: any RelayService, environment: ServiceEnvironment, status: StatusBoard,
                settings: Settings = Settings()) throws(SystemError) {
        self.service = service
        self.environment = environment
        statusSlot = status.slot(service.name)
        self.settings = settings
        var l = environment.logger
        l[metadataKey: LogField.service] = "\(service.name.rawValue)"
        logger = l
        core = try ChannelThread()
    }

    public func start() throws(SystemError) {
        statusSlot.update { $0.state = .starting }
        try core.start(name: "hv-\(service.name.rawValue)") { [self] in run() }
    }

    /// Asks the thread to finish (it resets the service first) and waits for it.
    public func stop() {
        core.stop()
    }

    /// Nanoseconds the current request has been running, or nil when idle.
    public func busyNanoseconds() -> UInt64? {
        core.busyNanoseconds()
    }

    private var isStopping: Bool { core.isStopping }

    private func pause(_ ms: Int32) -> Bool { core.pause(ms) }

    private func run() {
        var failures = 0
        var reportedMissing = false
        let path = environment.devicePath(service.devicePath)
        while !isStopping {
            let channel: any MessageChannel
            do {
                channel = try RelayTransport.open(path: path, capacity: service.receiveCapacity)
            } catch .deviceMissing {
                if !reportedMissing {
                    logger.info("waiting for \(path) to appear")
                    reportedMissing = true
                }
                statusSlot.update { $0.state = .waitingForDevice(path) }
                if pause(settings.devicePollMilliseconds) { break }
                continue
            } catch {
                failures += 1
                fail("cannot open \(path): \(error)", failures: failures)
                if pause(backoff(failures)) { break }
                continue
            }
            reportedMissing = false
            let outcome = serve(channel)
            channel.close()
            switch outcome {
            case .stopped:
                break
            case .failed(let why, let wasRegistered):
                service.channelReset(reason: why)
                // A channel that worked and then dropped (kernel reset, emulator restart) is
                // retried at once; only repeated failures back off.
                failures = wasRegistered ? 1 : failures + 1
                fail(why, failures: failures)
                if pause(wasRegistered ? settings.initialBackoffMilliseconds : backoff(failures)) { break }
            }
        }
        service.serviceWillStop()
        statusSlot.update { $0.state = .stopped }
    }

    private func backoff(_ failures: Int) -> Int32 {
        ChannelThread.backoff(failures: failures, initial: settings.initialBackoffMilliseconds, maximum: settings.maximumBackoffMilliseconds)
    }

    private func fail(_ why: String, failures: Int) {
        statusSlot.update { $0.state = .error(why) }
        let delay = backoff(failures)
        logger.warning("\(why); reopening in \(delay) ms")
    }

    private enum Outcome {
        case stopped
        case failed(String, wasRegistered: Bool)
    }

    /// Registers and answers requests until the channel fails or we are asked to stop.
    private func serve(_ channel: any MessageChannel) -> Outcome {
        statusSlot.update {
            $0.state = .registering
            $0.transport = channel.description
        }
        // Registration: write ours, wait (bounded) for the kernel's answer.
        do {
            try channel.send(service.registrationMessage())
        } catch {
            return .failed("registration write failed on \(channel.description): \(error)", wasRegistered: false)
        }
        switch waitReadable(channel, timeout: settings.registrationTimeoutMilliseconds) {
        case .stop:
            service.channelReset(reason: "daemon stopping")
            return .stopped
        case .timeout:
            return .failed("no registration answer from the kernel within \(settings.registrationTimeoutMilliseconds) ms", wasRegistered: false)
        case .hangup:
            return .failed("the kernel side closed the channel during registration", wasRegistered: false)
        case .readable:
            break
        }
        let version: String
        do {
            version = try service.registrationCompleted(reply: try channel.receive())
        } catch {
            return .failed("registration refused: \(error)", wasRegistered: false)
        }
        statusSlot.update {
            $0.state = .registered(version: version)
            $0.registrations += 1
        }
        logger.notice("registered on \(channel.description): \(version)")

        while true {
            switch waitReadable(channel, timeout: -1) {
            case .stop:
                service.channelReset(reason: "daemon stopping")
                return .stopped
            case .timeout:
                continue
            case .hangup:
                return .failed("the kernel side closed \(channel.description)", wasRegistered: true)
            case .readable:
                break
            }
            let request: [UInt8]
            do {
                request = try channel.receive()
            } catch .oversized(let length, let capacity) {
                // The message is lost; the kernel's request will time out and fail on the host.
                logger.error("dropped a \(length)-byte message (buffer \(capacity) bytes)")
                continue
            } catch {
                return .failed("read failed: \(error)", wasRegistered: true)
            }
            let started = monotonicNanoseconds()
            core.markBusy(since: started)
            let reply = service.handle(request: request)
            core.markBusy(since: nil)
            let micros = (monotonicNanoseconds() &- started) / 1000
            do {
                try channel.send(reply.bytes)
            } catch {
                // EINVAL here typically means the kernel already answered the host (timeout).
                return .failed("reply to \(reply.operation) rejected by the kernel (\(error)); the request probably timed out",
                               wasRegistered: true)
            }
            record(reply, micros: micros)
        }
    }

    private func record(_ reply: RelayReply, micros: UInt64) {
        // HV_S_CONT is KVP's normal "no more items" answer (every enumeration ends with it, and a
        // GET of a missing key): routine, not a failure.
        let routine = reply.status.isSuccess || reply.status == .noMoreItems
        statusSlot.update {
            $0.requests += 1
            if !routine { $0.failures += 1 }
            $0.lastRequest = LastRequest(operation: reply.operation, status: reply.status, detail: reply.detail,
                                         durationMicroseconds: micros, answeredAt: time(nil))
        }
        // Successful requests are routine (debug); failures are worth a notice. Build the log
        // line only when it will be written: formatting it for every request was half of the
        // daemon's CPU during a file copy (callgrind, bench/RESULTS.md).
        let l = logger
        guard l.logLevel <= (routine ? .debug : .notice) else { return }
        var meta: Logger.Metadata = [
            LogField.operation: "\(reply.operation)",
            LogField.status: "\(reply.status.description)",
            LogField.durationMicroseconds: "\(micros)",
        ]
        for (k, v) in reply.fields { meta[k] = "\(v)" }
        let text = reply.detail.map { "\(reply.operation) \($0) → \(reply.status)" } ?? "\(reply.operation) → \(reply.status)"
        if routine {
            l.debug("\(text)", metadata: meta)
        } else {
            l.notice("\(text)", metadata: meta)
        }
    }

    private enum Wait { case readable, hangup, timeout, stop }

    private func waitReadable(_ channel: any MessageChannel, timeout: Int32) -> Wait {
        while true {
            if isStopping { return .stop }
            let device: PollEvents
            let wake: PollEvents
            do {
                (device, wake) = try pollPair(channel.pollDescriptor, core.wake.fd, timeoutMilliseconds: timeout)
            } catch {
                return .hangup
            }
            if !wake.isEmpty {
                core.wake.drain()
                if isStopping { return .stop }
            }
            if device.contains(.readable) { return .readable }
            if !device.intersection([.hangup, .error, .invalid]).isEmpty { return .hangup }
            if device.isEmpty && wake.isEmpty { return .timeout }
        }
    }
}
