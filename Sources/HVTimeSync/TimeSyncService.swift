import HVServiceKit
import HVSystem
import HVWire
import Logging

/// The time-sync IC in userspace (PROTOCOL.md §5.3): every message is answered at once; SYNC
/// and SAMPLE then feed the discipline (or chronyd), after the answer went out.
public final class TimeSyncService: ICService {
    public let name = ServiceName.timesync
    /// Class GUID of the time-sync channel.
    public static let classID = "9527e630-d0ae-497b-adce-e80ab0175caf"
    public var classID: String { Self.classID }
    public let versions = ICServiceVersions.timeSync

    public let configuration: TimeSyncConfiguration
    private let clock: any GuestClock
    private let chrony: (any ChronySampleSink)?
    private let referenceCounter: (@Sendable () -> UInt64)?
    private let logger: Logger

    private struct State {
        var discipline: ClockDiscipline
        var pending: [(sample: TimeSample, leap: Int32)] = []
        var lastAction: ClockAction?
        var lastOffsetSeconds: Double?
        var received = 0
        var actions: [ClockAction] = []
    }
    private let state: Locked<State>

    /// - Parameters:
    ///   - chrony: where samples go when `output = "chrony"` (the clock is then left alone).
    ///   - referenceCounter: the partition reference counter (100 ns ticks) used to age v4
    ///     samples; nil when unavailable (a real guest's userspace cannot read it; the emulator
    ///     and hvguestd use CLOCK_MONOTONIC for it in emulated runs).
    public init(
        configuration: TimeSyncConfiguration, clock: any GuestClock, chrony: (any ChronySampleSink)? = nil,
        referenceCounter: (@Sendable () -> UInt64)? = nil, logger: Logger
    ) {
        self.configuration = configuration
        self.clock = clock
        self.chrony = chrony
        self.referenceCounter = referenceCounter
        self.logger = logger
        state = Locked(State(discipline: ClockDiscipline(settings: configuration.discipline, currentFrequencyPPM: clock.frequencyPPM)))
    }

    /// Every action decided so far, oldest first (bounded).
    public var actions: [ClockAction] { state.withLock { $0.actions } }
    public var samplesReceived: Int { state.withLock { $0.received } }

    public func handle(payload: inout [UInt8], header: ICMessageHeader, negotiated: ICVersion?) -> ICAnswer? {
        let guestNow = clock.nowNanoseconds()
        func answer(_ status: HResult, _ op: String, _ detail: String?) -> ICAnswer {
            try? ICMessageHeader.markResponse(in: &payload, status: status)
            return ICAnswer(operation: op, status: status, detail: detail, routine: status.isSuccess)
        }
        guard header.messageType == .timeSync else { return answer(.fail, "\(header.messageType)", "not a time-sync message") }
        let body = ArraySlice(payload).dropFirst(ICMessageHeader.size)
        var parentTime: UInt64
        let flags: TimeSyncFlags
        var age: Double?
        var leap: Int32 = 0
        do {
            if header.messageVersion.major >= 4 {
                let m = try TimeSyncReferenceMessage.decode(body: body)
                parentTime = m.parentTime
                flags = m.flags
                leap = m.leapFlags == 1 || m.leapFlags == 2 ? Int32(m.leapFlags) : 0
                if let counter = referenceCounter {
                    // Ticks since the host took the sample: its age, and the latency to add.
                    let elapsed = counter() &- m.vmReferenceTime
                    if elapsed < 1 << 62 {
                        age = Double(elapsed) / 1e7
                        parentTime = parentTime &+ elapsed
                    }
                }
            } else {
                let m = try TimeSyncMessage.decode(body: body)
                parentTime = m.parentTime
                flags = m.flags
            }
        } catch {
            return answer(.fail, "TIMESYNC", "\(error)")
        }
        let op = "TIMESYNC \(flags)"
        // PROBE (no flag) needs nothing but the answer.
        guard flags.contains(.sync) || flags.contains(.sample) else { return answer(.ok, op, nil) }
        guard let host = FileTime.unixNanoseconds(parentTime) else { return answer(.ok, op, "host time out of range; ignored") }
        let sample = TimeSample(hostNanoseconds: host, guestNanoseconds: guestNow, isSync: flags.contains(.sync), ageSeconds: age)
        state.withLock {
            $0.received += 1
            if $0.pending.count < 64 { $0.pending.append((sample, leap)) }
        }
        return answer(.ok, op, "offset \(formatMilliseconds(sample.offsetSeconds)) ms")
    }

    public func performDeferredActions() {
        let pending = state.withLock { s -> [(sample: TimeSample, leap: Int32)] in
            defer { s.pending.removeAll() }
            return s.pending
        }
        for (sample, leap) in pending { apply(sample, leap: leap) }
    }

    private func apply(_ sample: TimeSample, leap: Int32) {
        let action = state.withLock { s -> ClockAction in
            let a = s.discipline.process(sample)
            s.lastAction = a
            if case .ignore = a {} else { s.lastOffsetSeconds = sample.offsetSeconds }
            if s.actions.count >= 10_000 { s.actions.removeFirst(5_000) }
            s.actions.append(a)
            return a
        }
        if case .ignore(let why) = action {
            logger.info("time sample ignored: \(why)")
            return
        }
        if configuration.output == .chrony, let chrony {
            do {
                try chrony.send(
                    ChronySockSample(
                        systemNanoseconds: sample.guestNanoseconds, offsetSeconds: sample.offsetSeconds, leap: leap))
            } catch {
                logger.warning("could not pass the time sample to chronyd at \(configuration.chronySocket): \(error)")
            }
            return
        }
        do throws(SystemError) {
            switch action {
            case .step(let offset, let ppm):
                logger.notice("\(sample.isSync ? "host SYNC" : "large offset"): \(action)")
                try clock.step(byNanoseconds: stepNanoseconds(offset))
                try clock.setFrequency(ppm: ppm)
            case .slew(_, let ppm):
                logger.debug("\(action)")
                try clock.setFrequency(ppm: ppm)
            case .ignore:
                break
            }
        } catch {
            logger.error("could not adjust the clock (\(action)): \(error)")
        }
    }

    public func channelReset(reason: String) {}

    public func statusDetails() -> [String: String] {
        state.withLock { s in
            var d = [
                "samples": String(s.received), "samples_ignored": String(s.discipline.ignored),
                "output": configuration.output.rawValue,
                "frequency_error_ppm": formatPPM(s.discipline.estimatedErrorPPM),
            ]
            if let o = s.lastOffsetSeconds { d["offset_ms"] = formatMilliseconds(o) }
            if let a = s.lastAction { d["last_action"] = a.description }
            return d
        }
    }
}

/// A partition reference counter for emulated runs: CLOCK_MONOTONIC in 100 ns ticks, which the
/// emulator's time-sync host uses too (both run on the same machine).
public let emulatedReferenceCounter: @Sendable () -> UInt64 = { monotonicNanoseconds() / 100 }

extension TimeSyncService: ServiceStatusReporting {}
