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
    private let settings: Settings
    private let loop: ChannelSupervisor
    private var core: ChannelThread { loop.core }
    private var logger: Logger { loop.logger }

    public init(service: any RelayService, environment: ServiceEnvironment, status: StatusBoard,
                settings: Settings = Settings()) throws(SystemError) {
        self.service = service
        self.environment = environment
        self.settings = settings
        loop = try ChannelSupervisor(service: service.name, environment: environment, status: status, policy: settings)
    }

    public func start() throws(SystemError) {
        try loop.start { [self] in run() }
    }

    /// Asks the thread to finish (it resets the service first) and waits for it.
    public func stop() {
        loop.stop()
    }

    /// Nanoseconds the current request has been running, or nil when idle.
    public func busyNanoseconds() -> UInt64? {
        core.busyNanoseconds()
    }

    private func run() {
        let path = environment.devicePath(service.devicePath)
        while !loop.isStopping {
            let channel: any MessageChannel
            do {
                channel = try RelayTransport.open(path: path, capacity: service.receiveCapacity)
            } catch .deviceMissing {
                if loop.waitForDevice("waiting for \(path) to appear", state: .waitingForDevice(path)) { break }
                continue
            } catch {
                if loop.openFailed("cannot open \(path): \(error)") { break }
                continue
            }
            loop.deviceFound()
            let outcome = serve(channel)
            channel.close()
            if case .failed(let why, _) = outcome { service.channelReset(reason: why) }
            if loop.ended(outcome) { break }
        }
        service.serviceWillStop()
        loop.stopped()
    }

    /// Registers and answers requests until the channel fails or we are asked to stop.
    private func serve(_ channel: any MessageChannel) -> ChannelOutcome {
        loop.slot.update {
            $0.state = .registering
            $0.transport = channel.description
        }
        // Registration: write ours, wait (bounded) for the kernel's answer.
        do {
            try channel.send(service.registrationMessage())
        } catch {
            return .failed("registration write failed on \(channel.description): \(error)", wasConnected: false)
        }
        switch waitReadable(channel, timeout: settings.registrationTimeoutMilliseconds) {
        case .stop:
            service.channelReset(reason: "daemon stopping")
            return .stopped
        case .timeout:
            return .failed("no registration answer from the kernel within \(settings.registrationTimeoutMilliseconds) ms", wasConnected: false)
        case .hangup:
            return .failed("the kernel side closed the channel during registration", wasConnected: false)
        case .readable:
            break
        }
        let version: String
        do {
            version = try service.registrationCompleted(reply: try channel.receive())
        } catch {
            return .failed("registration refused: \(error)", wasConnected: false)
        }
        loop.registered(version, message: "registered on \(channel.description): \(version)")

        while true {
            switch waitReadable(channel, timeout: -1) {
            case .stop:
                service.channelReset(reason: "daemon stopping")
                return .stopped
            case .timeout:
                continue
            case .hangup:
                return .failed("the kernel side closed \(channel.description)", wasConnected: true)
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
                return .failed("read failed: \(error)", wasConnected: true)
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
                               wasConnected: true)
            }
            record(reply, micros: micros)
        }
    }

    private func record(_ reply: RelayReply, micros: UInt64) {
        // HV_S_CONT is KVP's normal "no more items" answer (every enumeration ends with it, and a
        // GET of a missing key): routine, not a failure.
        let routine = reply.status.isSuccess || reply.status == .noMoreItems
        loop.record(operation: reply.operation, status: reply.status, detail: reply.detail, micros: micros,
                    failed: !routine, quiet: routine, fields: reply.fields)
    }

    private enum Wait { case readable, hangup, timeout, stop }

    private func waitReadable(_ channel: any MessageChannel, timeout: Int32) -> Wait {
        while true {
            if loop.isStopping { return .stop }
            let device: PollEvents
            let wake: PollEvents
            do {
                (device, wake) = try pollPair(channel.pollDescriptor, core.wake.fd, timeoutMilliseconds: timeout)
            } catch {
                return .hangup
            }
            if !wake.isEmpty {
                core.wake.drain()
                if loop.isStopping { return .stop }
            }
            if device.contains(.readable) { return .readable }
            if !device.intersection([.hangup, .error, .invalid]).isEmpty { return .hangup }
            if device.isEmpty && wake.isEmpty { return .timeout }
        }
    }
}
