import HVSystem
import HVWire

/// The three util ICs a daemon can take over through uio_hv_generic.
public enum ICKind: String, Sendable, CaseIterable, CustomStringConvertible {
    case shutdown, timesync, heartbeat
    public var description: String { rawValue }
}

/// What the host shows for an integration component (Hyper-V Manager, `Get-VMIntegrationService`).
public enum ICComponentStatus: String, Sendable, Equatable, CustomStringConvertible {
    /// The guest answered the last request.
    case ok = "OK"
    /// No guest component ever opened the channel and negotiated.
    case noContact = "No Contact"
    /// It had, but the channel closed or the last request went unanswered.
    case lostCommunication = "Lost Communication"
    public var description: String { rawValue }
}

/// How one host request over an IC ended.
public enum ICRequestOutcome: Sendable, Equatable, CustomStringConvertible {
    /// The guest answered with this status (and response payload).
    case answered(HResult, [UInt8])
    /// No answer: no guest, timeout, disconnect, or a broken response.
    case failed(UIOHostError)

    public var status: HResult? {
        if case .answered(let h, _) = self { return h }
        return nil
    }

    public var description: String {
        switch self {
        case .answered(let h, _): return h == .machineLocked ? "\(h): the guest is locked (an inhibitor holds shutdown)" : h.description
        case .failed(let e): return "no answer: \(e)"
        }
    }
}

/// Shared part of the IC hosts: a `UIOHost` channel, negotiation on demand, the component status.
public class ICHost: @unchecked Sendable {
    public let uio: UIOHost
    public let kind: ICKind
    /// Whether a guest ever negotiated, and on which connection (by count) the last request failed.
    private let lastOutcome = Locked<(everNegotiated: Bool, failedOnConnection: Int?)>((false, nil))

    init(kind: ICKind, uio: UIOHost) {
        self.kind = kind
        self.uio = uio
    }

    /// What the host would show for this component now.
    public var componentStatus: ICComponentStatus {
        let connection = uio.connectionCount
        let live = uio.negotiatedVersions != nil && uio.isGuestConnected
        let s = lastOutcome.withLock { o -> (everNegotiated: Bool, failedOnConnection: Int?) in
            if live { o.everNegotiated = true }
            return o
        }
        // A failure on an earlier connection does not count against a guest that reconnected.
        if live && s.failedOnConnection != connection { return .ok }
        return s.everNegotiated ? .lostCommunication : .noContact
    }

    /// Accepts a guest and negotiates if that has not happened yet; returns the message version.
    @discardableResult
    public func ensureNegotiated(timeoutMilliseconds: Int32) throws(UIOHostError) -> ICVersion {
        if let v = uio.negotiatedVersions, uio.isGuestConnected { return v.message }
        try uio.acceptGuest(timeoutMilliseconds: timeoutMilliseconds)
        if let v = uio.negotiatedVersions { return v.message }
        let chosen = try uio.negotiate(timeoutMilliseconds: timeoutMilliseconds)
        lastOutcome.withLock { $0.everNegotiated = true }
        return chosen.message
    }

    /// Sends one request body of this IC and returns the guest's answer.
    func request(body: (ICVersion) -> [UInt8], timeoutMilliseconds: Int32) -> ICRequestOutcome {
        do throws(UIOHostError) {
            let version = try ensureNegotiated(timeoutMilliseconds: timeoutMilliseconds)
            lastOutcome.withLock { $0.everNegotiated = true }
            let response = try uio.send(icMessage: uio.makeRequest(body: body(version)), timeoutMilliseconds: timeoutMilliseconds)
            let header: ICMessageHeader
            do { header = try ICMessageHeader.decode(from: response) } catch { throw UIOHostError.wire(error) }
            guard header.flags.contains(.response) else { throw UIOHostError.protocolViolation("answer without the RESPONSE flag") }
            lastOutcome.withLock { $0.failedOnConnection = nil }
            return .answered(header.status, response)
        } catch {
            let connection = uio.connectionCount
            lastOutcome.withLock { $0.failedOnConnection = connection }
            return .failed(error)
        }
    }

    func close() { uio.close() }
}

/// The host side of the shutdown IC: `Msvm_ShutdownComponent.InitiateShutdown(Force, Reason)`,
/// `InitiateReboot`, hibernate.
public final class ShutdownHost: ICHost, @unchecked Sendable {
    public init(deviceRoot: String, configuration: UIOHost.Configuration = .shutdown()) throws(UIOHostError) {
        super.init(kind: .shutdown, uio: try UIOHost(deviceRoot: deviceRoot, configuration: configuration))
    }

    /// Sends a shutdown request; S_OK means the guest accepted and will act after answering.
    public func initiateShutdown(
        force: Bool = false, reboot: Bool = false, hibernate: Bool = false, reason: UInt32 = 0,
        message: String = "", timeoutMilliseconds: Int32 = 10_000
    ) -> ICRequestOutcome {
        var flags: ShutdownFlags = []
        if force { flags.insert(.force) }
        if reboot { flags.insert(.reboot) }
        if hibernate { flags.insert(.hibernate) }
        return send(flags: flags, reason: reason, message: message, timeoutMilliseconds: timeoutMilliseconds)
    }

    /// Any flag combination (tests of unsupported ones).
    public func send(flags: ShutdownFlags, reason: UInt32 = 0, message: String = "", timeoutMilliseconds: Int32 = 10_000)
        -> ICRequestOutcome
    {
        let msg = ShutdownMessage(reasonCode: reason, timeoutSeconds: 30, flags: flags, displayMessage: message)
        return request(body: { _ in msg.encode() }, timeoutMilliseconds: timeoutMilliseconds)
    }
}

/// The host side of the time-sync IC: samples with a chosen offset, SYNC or SAMPLE, fresh or
/// stale. Sends `ictimesync_ref_data` when message version 4 was negotiated, else `ictimesync_data`.
public final class TimeSyncHost: ICHost, @unchecked Sendable {
    /// The partition reference counter of emulated runs (100 ns ticks of CLOCK_MONOTONIC;
    /// hvguestd uses the same in emulated runs).
    public static func referenceCounter() -> UInt64 { monotonicNanoseconds() / 100 }

    public init(deviceRoot: String, configuration: UIOHost.Configuration = .timeSync()) throws(UIOHostError) {
        super.init(kind: .timesync, uio: try UIOHost(deviceRoot: deviceRoot, configuration: configuration))
    }

    /// Sends one sample. The host's time is `hostTimeNanoseconds` (default: this machine's clock)
    /// plus `offsetMilliseconds`, taken `ageSeconds` ago (a stale sample when that exceeds the
    /// guest's limit).
    public func sendSample(
        offsetMilliseconds: Double = 0, sync: Bool = false, ageSeconds: Double = 0,
        hostTimeNanoseconds: Int64? = nil, timeoutMilliseconds: Int32 = 10_000
    ) -> ICRequestOutcome {
        let now = hostTimeNanoseconds ?? RealtimeClock.nowNanoseconds()
        let taken = now &+ Int64(offsetMilliseconds * 1e6) &- Int64(ageSeconds * 1e9)
        let parent = FileTime.ticks(unixNanoseconds: taken) ?? 0
        let flags: TimeSyncFlags = sync ? .sync : .sample
        return request(
            body: { version in
                if version.major >= 4 {
                    let ref = Self.referenceCounter() &- UInt64(max(0, ageSeconds) * 1e7)
                    return TimeSyncReferenceMessage(parentTime: parent, vmReferenceTime: ref, flags: flags).encode()
                }
                return TimeSyncMessage(parentTime: parent, flags: flags).encode()
            }, timeoutMilliseconds: timeoutMilliseconds)
    }

    /// A PROBE (no flags): the guest only answers.
    public func probe(timeoutMilliseconds: Int32 = 10_000) -> ICRequestOutcome {
        let parent = FileTime.ticks(unixNanoseconds: RealtimeClock.nowNanoseconds()) ?? 0
        return request(
            body: { version in
                version.major >= 4
                    ? TimeSyncReferenceMessage(parentTime: parent, vmReferenceTime: Self.referenceCounter(), flags: .probe).encode()
                    : TimeSyncMessage(parentTime: parent, flags: .probe).encode()
            }, timeoutMilliseconds: timeoutMilliseconds)
    }
}

/// The host side of the heartbeat IC.
public final class HeartbeatHost: ICHost, @unchecked Sendable {
    private let sequence = Locked<UInt64>(0)

    public init(deviceRoot: String, configuration: UIOHost.Configuration = .heartbeat()) throws(UIOHostError) {
        super.init(kind: .heartbeat, uio: try UIOHost(deviceRoot: deviceRoot, configuration: configuration))
    }

    /// One heartbeat: sends the next sequence number and checks the guest answered it + 1.
    public func beat(timeoutMilliseconds: Int32 = 10_000) -> (sent: UInt64, outcome: ICRequestOutcome, echoed: UInt64?) {
        let seq = sequence.withLock { s -> UInt64 in
            defer { s &+= 1 }; return s
        }
        let outcome = request(body: { _ in HeartbeatMessage(sequenceNumber: seq).encode() }, timeoutMilliseconds: timeoutMilliseconds)
        guard case .answered(_, let payload) = outcome,
            let echoed = try? HeartbeatMessage.decode(body: ArraySlice(payload).dropFirst(ICMessageHeader.size)).sequenceNumber
        else { return (seq, outcome, nil) }
        if echoed != seq &+ 1 {
            return (seq, .failed(.protocolViolation("heartbeat \(seq) answered with \(echoed), expected \(seq &+ 1)")), echoed)
        }
        // The next beat continues from the guest's answer, as a sequence the guest advances.
        sequence.withLock { $0 = echoed &+ 1 }
        return (seq, outcome, echoed)
    }
}
