import Glibc
import HVSystem
import HVTransport
import HVWire
import Logging

/// What a service answered to one IC request (the runner writes `status` into the IC header,
/// counts and logs it).
public struct ICReply: Sendable, Equatable {
    /// Short operation name for logs and status (`WRITE_TO_FILE`, `SHUTDOWN`, …). Use string
    /// literals on hot paths: they do not allocate.
    public var operation: String
    /// The HRESULT the host will see in the IC header.
    public var status: HResult
    /// Optional human detail (nil on the hot path).
    public var detail: String?
    /// Routine answers (heartbeats, time samples) are logged at debug level only.
    public var routine: Bool

    public init(operation: String, status: HResult, detail: String? = nil, routine: Bool = false) {
        self.operation = operation
        self.status = status
        self.detail = detail
        self.routine = routine
    }
}

/// A util IC served over a VMBus channel bound to uio_hv_generic (kernel ≥ 6.10) or its fake.
///
/// The runner finds the device by `classID`, answers version negotiation from `versions`
/// itself and hands every other well-framed request to `handle`. Called on the channel's own
/// thread, one request at a time: `handle`* then `channelReset`, again after every reopen.
public protocol UIOService: AnyObject, Sendable {
    var name: ServiceName { get }
    /// VMBus class GUID (sysfs `class_id`), lower case, no braces.
    var classID: String { get }
    /// Framework and message versions, in priority order.
    var versions: ICServiceVersions { get }
    /// Answers one request in place: `payload` is the whole IC packet payload (28-byte IC header
    /// first, ring padding included); change its data as the reply needs (the header's status
    /// and flags are set by the runner from the result). Return nil to send no response.
    func handle(header: ICMessageHeader, payload: inout [UInt8]) -> ICReply?
    /// The channel was closed or failed: drop per-connection state.
    func channelReset(reason: String)
}

/// What the daemon needs from any channel runner (relay or UIO).
public protocol ServiceRunner: AnyObject, Sendable {
    var serviceName: ServiceName { get }
    func start() throws(SystemError)
    /// Asks the thread to finish (the service resets first) and waits for it.
    func stop()
    /// Nanoseconds the current request has been running, or nil when idle (for the watchdog).
    func busyNanoseconds() -> UInt64?
}

extension RelayChannelRunner: ServiceRunner {
    public var serviceName: ServiceName { service.name }
}

/// Runs one `UIOService` on its own OS thread: find the device (binding it to uio_hv_generic if
/// allowed and needed), open it, serve until it fails, then reset the service, close, back off
/// and start over. Never exits on a channel error and never busy-loops.
public final class UIOChannelRunner: ServiceRunner, @unchecked Sendable {
    public struct Settings: Sendable {
        /// How often to look for a device that does not exist (or is not bound) yet.
        public var devicePollMilliseconds: Int32 = 500
        /// First delay after a failure; doubles per consecutive failure.
        public var initialBackoffMilliseconds: Int32 = 100
        /// Cap of the back-off.
        public var maximumBackoffMilliseconds: Int32 = 30_000
        /// How long the fake device may take to send its shared memory.
        public var handshakeTimeoutMilliseconds: Int32 = 10_000
        /// Bind an unbound device to uio_hv_generic ourselves (driver_override + bind).
        public var bindDevice = true
        public init() {}

        /// The same polling and back-off as a relay runner's.
        public init(_ relay: RelayChannelRunner.Settings) {
            devicePollMilliseconds = relay.devicePollMilliseconds
            initialBackoffMilliseconds = relay.initialBackoffMilliseconds
            maximumBackoffMilliseconds = relay.maximumBackoffMilliseconds
        }
    }

    public let service: any UIOService
    public var serviceName: ServiceName { service.name }
    private let environment: ServiceEnvironment
    private let settings: Settings
    private let loop: ChannelSupervisor
    private var core: ChannelThread { loop.core }
    private var logger: Logger { loop.logger }
    /// What we bound (released when the runner stops).
    private var binding: UIOBinding?

    public init(service: any UIOService, environment: ServiceEnvironment, status: StatusBoard,
                settings: Settings = Settings()) throws(SystemError) {
        self.service = service
        self.environment = environment
        self.settings = settings
        loop = try ChannelSupervisor(service: service.name, environment: environment, status: status, policy: settings)
    }

    public func start() throws(SystemError) {
        try loop.start { [self] in run() }
    }

    public func stop() {
        loop.stop()
    }

    public func busyNanoseconds() -> UInt64? {
        core.busyNanoseconds()
    }

    private var waitingDescription: String { "VMBus device of class {\(service.classID)}" }

    private func run() {
        /// Set by a successful bind; a device that is unbound again right after (re-offered
        /// after a rescind: a new device without our override) is bound again, after a pause.
        var justBound = false
        while !loop.isStopping {
            let device: UIODevice
            do {
                device = try UIODevice.find(classID: service.classID, deviceRoot: environment.deviceRoot)
            } catch .deviceNotFound {
                if loop.waitForDevice("waiting for a \(waitingDescription) to appear", state: .waitingForDevice(waitingDescription)) {
                    break
                }
                continue
            } catch .notBound(let instance) {
                if justBound {
                    justBound = false
                    if core.pause(settings.devicePollMilliseconds) { break }
                }
                let stop: Bool
                if settings.bindDevice {
                    do {
                        binding?.release()
                        binding = try UIOBinding.bind(instance: instance, deviceRoot: environment.deviceRoot)
                        justBound = true
                        let was = binding?.previousDriver.map { " (was \($0))" } ?? ""
                        logger.notice("bound VMBus device \(instance) to uio_hv_generic\(was)")
                        continue
                    } catch {
                        stop = loop.waitForDevice("cannot bind \(instance): \(error)", state: .error("\(error)"))
                    }
                } else {
                    stop = loop.waitForDevice("VMBus device \(instance) is not bound to uio_hv_generic yet",
                                              state: .waitingForDevice("uio_hv_generic binding of \(instance)"))
                }
                if stop { break }
                continue
            } catch {
                if loop.openFailed("cannot find the \(waitingDescription): \(error)") { break }
                continue
            }
            loop.deviceFound()
            justBound = false
            let channel: UIOChannel
            do {
                channel = try UIOChannel(device: device, deviceRoot: environment.deviceRoot,
                                         handshakeTimeoutMilliseconds: settings.handshakeTimeoutMilliseconds)
            } catch {
                if loop.openFailed("cannot open \(device.devicePath(deviceRoot: environment.deviceRoot)): \(error)") { break }
                continue
            }
            let outcome = serve(channel)
            channel.close()
            switch outcome {
            case .stopped: service.channelReset(reason: "daemon stopping")
            case .failed(let why, _): service.channelReset(reason: why)
            }
            if loop.ended(outcome) { break }
        }
        binding?.release()
        binding = nil
        loop.stopped()
    }

    private func serve(_ channel: UIOChannel) -> ChannelOutcome {
        let transport = "\(channel.device.uioName) (VMBus \(channel.device.instance))"
        loop.slot.update {
            // Open, waiting for the host's version negotiation.
            $0.state = .registering
            $0.transport = transport
        }
        logger.notice("opened \(transport)")
        var responder = ICResponder(versions: service.versions)
        var negotiations = 0
        do {
            try channel.serve(until: core.wake) { payload, _ in
                // icmsgtype (u16 @12) 0 = negotiate, answered by the responder itself.
                let isNegotiation = payload.count >= ICMessageHeader.size && payload[12] == 0 && payload[13] == 0
                let answered = responder.handle(&payload) { payload, header in answer(&payload, header) }
                if isNegotiation, answered, let chosen = responder.negotiated {
                    negotiations += 1
                    noteNegotiated(chosen)
                }
                return answered
            }
            return .stopped
        } catch {
            return .failed("\(transport): \(error)", wasConnected: negotiations > 0)
        }
    }

    private func noteNegotiated(_ chosen: (framework: ICVersion, message: ICVersion)) {
        let version = "framework \(chosen.framework), message \(chosen.message)"
        loop.registered(version, message: "negotiated \(version)")
    }

    private func answer(_ payload: inout [UInt8], _ header: ICMessageHeader) -> Bool {
        let started = monotonicNanoseconds()
        core.markBusy(since: started)
        let reply = service.handle(header: header, payload: &payload)
        core.markBusy(since: nil)
        guard let reply else { return false }
        do { try ICMessageHeader.markResponse(in: &payload, status: reply.status) } catch { return false }
        record(reply, micros: (monotonicNanoseconds() &- started) / 1000)
        return true
    }

    private func record(_ reply: ICReply, micros: UInt64) {
        // Successes are routine and may be thousands per second (file fragments).
        let failed = !reply.status.isSuccess
        loop.record(operation: reply.operation, status: reply.status, detail: reply.detail, micros: micros,
                    failed: failed, quiet: !failed)
    }
}
