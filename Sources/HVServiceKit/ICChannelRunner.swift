import Glibc
import HVSystem
import HVTransport
import HVWire
import Logging

/// How a util IC service answered one request: the same answer as any UIO service's.
public typealias ICAnswer = ICReply

/// A util IC answered in userspace over a UIO channel (shutdown, time sync, heartbeat when
/// `mode = "userspace"`). Called on the channel's own thread, one request at a time.
///
/// Reply first, then act (as the kernel does): `handle` only writes the response and records
/// what to do; the runner calls `performDeferredActions` after the responses reached the ring
/// and the host was signalled, so the host never waits on a power-off or a clock step.
public protocol ICService: AnyObject, Sendable {
    var name: ServiceName { get }
    /// Class GUID of the channel (PROTOCOL.md §5.1).
    var classID: String { get }
    /// Versions we accept, in priority order.
    var versions: ICServiceVersions { get }
    /// Answers one non-negotiate request in place (status via `ICMessageHeader.markResponse`).
    /// Nil drops the packet without an answer (only for packets that are not requests at all).
    func handle(payload: inout [UInt8], header: ICMessageHeader, negotiated: ICVersion?) -> ICAnswer?
    /// Runs what the requests just answered asked for.
    func performDeferredActions()
    /// The channel closed or failed.
    func channelReset(reason: String)
    /// Service-specific facts for `hvguestctl status` (last offset, last request …).
    func statusDetails() -> [String: String]
}

extension ICService {
    public func statusDetails() -> [String: String] { [:] }
}

/// Runs one `ICService` on its own OS thread over the UIO device of its class: open, let the
/// host negotiate, answer requests, act after answering; on failure close, back off, reopen.
/// (The file-copy helper may add a general `UIOChannelRunner`; this one is specific to the
/// request/response util ICs with deferred actions.)
public final class ICChannelRunner: @unchecked Sendable {
    public struct Settings: Sendable {
        /// How often to look for a device that is missing or not bound to uio_hv_generic yet.
        public var devicePollMilliseconds: Int32 = 1_000
        public var initialBackoffMilliseconds: Int32 = 100
        public var maximumBackoffMilliseconds: Int32 = 30_000
        /// The fake device's first packet.
        public var handshakeTimeoutMilliseconds: Int32 = 10_000
        public init() {}
    }

    public let service: any ICService
    private let environment: ServiceEnvironment
    private let status: StatusBoard
    private let settings: Settings
    private let core: ChannelThread

    private var logger: Logger {
        var l = environment.logger
        l[metadataKey: LogField.service] = "\(service.name.rawValue)"
        return l
    }

    public init(service: any ICService, environment: ServiceEnvironment, status: StatusBoard, settings: Settings = Settings())
        throws(SystemError)
    {
        self.service = service
        self.environment = environment
        self.status = status
        self.settings = settings
        core = try ChannelThread()
    }

    public func start() throws(SystemError) {
        status.update(service.name) { $0.state = .starting }
        try core.start(name: "hv-\(service.name.rawValue)") { [self] in run() }
    }

    /// Stops the thread and closes the channel (the host sees the IC go away).
    public func stop() {
        core.stop()
    }

    private var isStopping: Bool { core.isStopping }

    private func pause(_ ms: Int32) -> Bool { core.pause(ms) }

    private func backoff(_ failures: Int) -> Int32 {
        ChannelThread.backoff(failures: failures, initial: settings.initialBackoffMilliseconds, maximum: settings.maximumBackoffMilliseconds)
    }

    private func run() {
        var failures = 0
        var reportedMissing = false
        loop: while !isStopping {
            let channel: UIOChannel
            do {
                channel = try UIOChannel.open(
                    classID: service.classID, deviceRoot: environment.deviceRoot,
                    handshakeTimeoutMilliseconds: settings.handshakeTimeoutMilliseconds)
            } catch .deviceNotFound(let c) {
                if waitForDevice("no VMBus device of class {\(c)}", &reportedMissing) { break loop }
                continue loop
            } catch .notBound(let instance) {
                if waitForDevice("\(instance) is not bound to uio_hv_generic", &reportedMissing) { break loop }
                continue loop
            } catch {
                failures += 1
                fail("cannot open the \(service.name.rawValue) channel: \(error)", failures: failures)
                if pause(backoff(failures)) { break loop }
                continue loop
            }
            reportedMissing = false
            status.update(service.name) {
                $0.state = .registering
                $0.transport = "uio \(channel.device.uioName) (\(channel.device.instance))"
            }
            let outcome = serve(channel)
            channel.close()
            switch outcome {
            case .stopped:
                service.channelReset(reason: "daemon stopping")
            case .failed(let why, let wasNegotiated):
                service.channelReset(reason: why)
                failures = wasNegotiated ? 1 : failures + 1
                fail(why, failures: failures)
                if pause(wasNegotiated ? settings.initialBackoffMilliseconds : backoff(failures)) { break loop }
            }
        }
        status.update(service.name) { $0.state = .stopped }
    }

    /// Reports a missing or unbound device once and waits; true when asked to stop.
    private func waitForDevice(_ why: String, _ reported: inout Bool) -> Bool {
        if !reported {
            logger.info("waiting for the \(service.name.rawValue) channel: \(why)")
            reported = true
        }
        status.update(service.name) { $0.state = .waitingForDevice(why) }
        return pause(settings.devicePollMilliseconds)
    }

    private func fail(_ why: String, failures: Int) {
        status.update(service.name) { $0.state = .error(why) }
        logger.warning("\(why); reopening in \(backoff(failures)) ms")
    }

    private enum Outcome {
        case stopped
        case failed(String, wasNegotiated: Bool)
    }

    private func serve(_ channel: UIOChannel) -> Outcome {
        var responder = ICResponder(versions: service.versions)
        var lastNegotiated: ICVersion?
        var answers: [ICAnswer] = []
        let service = self.service
        while true {
            do {
                try channel.processPendingPackets { payload, _ in
                    let current = responder.negotiated?.message
                    return responder.handle(&payload) { p, header in
                        guard let answer = service.handle(payload: &p, header: header, negotiated: current)
                        else { return false }
                        answers.append(answer)
                        return true
                    }
                }
            } catch {
                return .failed("\(service.name.rawValue) channel: \(error)", wasNegotiated: lastNegotiated != nil)
            }
            if let chosen = responder.negotiated, chosen.message != lastNegotiated {
                lastNegotiated = chosen.message
                status.update(service.name) {
                    $0.state = .registered(version: "framework \(chosen.framework), message \(chosen.message)")
                    $0.registrations += 1
                }
                logger.notice("host negotiated framework \(chosen.framework), message \(chosen.message)")
            }
            for answer in answers { record(answer) }
            answers.removeAll(keepingCapacity: true)
            service.performDeferredActions()
            let details = service.statusDetails()
            if !details.isEmpty { status.update(service.name) { $0.details.merge(details) { _, new in new } } }
            if isStopping { return .stopped }
            do {
                if case .stopped = try channel.waitForInterrupt(stop: core.wake) { return .stopped }
            } catch {
                return .failed("\(service.name.rawValue) channel: \(error)", wasNegotiated: lastNegotiated != nil)
            }
        }
    }

    private func record(_ answer: ICAnswer) {
        status.update(service.name) {
            $0.requests += 1
            if !answer.status.isSuccess { $0.failures += 1 }
            $0.lastRequest = LastRequest(
                operation: answer.operation, status: answer.status, detail: answer.detail, durationMicroseconds: 0,
                answeredAt: time(nil))
        }
        let meta: Logger.Metadata = [LogField.operation: "\(answer.operation)", LogField.status: "\(answer.status.description)"]
        let text = answer.detail.map { "\(answer.operation) \($0) → \(answer.status)" } ?? "\(answer.operation) → \(answer.status)"
        if answer.routine && answer.status.isSuccess {
            logger.debug("\(text)", metadata: meta)
        } else {
            logger.notice("\(text)", metadata: meta)
        }
    }
}
