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
/// (`UIOChannelRunner` serves file copy, one answer per packet; this one batches the answers
/// of one interrupt and then runs their deferred actions. The reconnect loop, status and
/// journal reporting of all three runners is `ChannelSupervisor`.)
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
    private let settings: Settings
    private let loop: ChannelSupervisor
    private var core: ChannelThread { loop.core }

    public init(service: any ICService, environment: ServiceEnvironment, status: StatusBoard, settings: Settings = Settings())
        throws(SystemError)
    {
        self.service = service
        self.environment = environment
        self.settings = settings
        loop = try ChannelSupervisor(service: service.name, environment: environment, status: status, policy: settings)
    }

    public func start() throws(SystemError) {
        try loop.start { [self] in run() }
    }

    /// Stops the thread and closes the channel (the host sees the IC go away).
    public func stop() {
        loop.stop()
    }

    private func run() {
        let name = service.name.rawValue
        while !loop.isStopping {
            let channel: UIOChannel
            do {
                channel = try UIOChannel.open(
                    classID: service.classID, deviceRoot: environment.deviceRoot,
                    handshakeTimeoutMilliseconds: settings.handshakeTimeoutMilliseconds)
            } catch .deviceNotFound(let c) {
                let why = "no VMBus device of class {\(c)}"
                if loop.waitForDevice("waiting for the \(name) channel: \(why)", state: .waitingForDevice(why)) { break }
                continue
            } catch .notBound(let instance) {
                let why = "\(instance) is not bound to uio_hv_generic"
                if loop.waitForDevice("waiting for the \(name) channel: \(why)", state: .waitingForDevice(why)) { break }
                continue
            } catch {
                if loop.openFailed("cannot open the \(name) channel: \(error)") { break }
                continue
            }
            loop.deviceFound()
            loop.slot.update {
                $0.state = .registering
                $0.transport = "uio \(channel.device.uioName) (\(channel.device.instance))"
            }
            let outcome = serve(channel)
            channel.close()
            switch outcome {
            case .stopped: service.channelReset(reason: "daemon stopping")
            case .failed(let why, _): service.channelReset(reason: why)
            }
            if loop.ended(outcome) { break }
        }
        loop.stopped()
    }

    private func serve(_ channel: UIOChannel) -> ChannelOutcome {
        var responder = ICResponder(versions: service.versions)
        var lastNegotiated: ICVersion?
        var answers: [(ICAnswer, UInt64)] = []
        let service = self.service
        while true {
            do {
                try channel.processPendingPackets { payload, _ in
                    let current = responder.negotiated?.message
                    return responder.handle(&payload) { p, header in
                        let started = monotonicNanoseconds()
                        guard let answer = service.handle(payload: &p, header: header, negotiated: current)
                        else { return false }
                        answers.append((answer, (monotonicNanoseconds() &- started) / 1000))
                        return true
                    }
                }
            } catch {
                return .failed("\(service.name.rawValue) channel: \(error)", wasConnected: lastNegotiated != nil)
            }
            if let chosen = responder.negotiated, chosen.message != lastNegotiated {
                lastNegotiated = chosen.message
                let version = "framework \(chosen.framework), message \(chosen.message)"
                loop.registered(version, message: "host negotiated \(version)")
            }
            for (answer, micros) in answers { record(answer, micros: micros) }
            answers.removeAll(keepingCapacity: true)
            service.performDeferredActions()
            let details = service.statusDetails()
            if !details.isEmpty { loop.slot.update { $0.details.merge(details) { _, new in new } } }
            if loop.isStopping { return .stopped }
            do {
                if case .stopped = try channel.waitForInterrupt(stop: core.wake) { return .stopped }
            } catch {
                return .failed("\(service.name.rawValue) channel: \(error)", wasConnected: lastNegotiated != nil)
            }
        }
    }

    private func record(_ answer: ICAnswer, micros: UInt64) {
        let failed = !answer.status.isSuccess
        loop.record(operation: answer.operation, status: answer.status, detail: answer.detail, micros: micros,
                    failed: failed, quiet: answer.routine && !failed)
    }
}
