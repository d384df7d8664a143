/// One time measurement: the host's time and the guest's clock at the same instant.
public struct TimeSample: Sendable, Equatable {
    /// Host time in ns since the Unix epoch (latency-corrected when the message allowed it).
    public var hostNanoseconds: Int64
    /// The guest clock when the sample was received.
    public var guestNanoseconds: Int64
    /// The host asked for an immediate correction (SYNC), not a periodic SAMPLE.
    public var isSync: Bool
    /// How long ago the host took the sample, when known (v4 reference time); nil otherwise.
    public var ageSeconds: Double?

    public init(hostNanoseconds: Int64, guestNanoseconds: Int64, isSync: Bool = false, ageSeconds: Double? = nil) {
        self.hostNanoseconds = hostNanoseconds
        self.guestNanoseconds = guestNanoseconds
        self.isSync = isSync
        self.ageSeconds = ageSeconds
    }

    /// Host − guest in seconds: positive when the guest is behind.
    public var offsetSeconds: Double { secondsBetween(hostNanoseconds, guestNanoseconds) }
}

/// Why a sample was not used.
public enum IgnoredSample: Sendable, Equatable, CustomStringConvertible {
    /// Older than `stale_seconds` when it arrived.
    case stale(ageSeconds: Double)
    /// Not newer than the last sample used (a replay or a reordering).
    case outOfOrder

    public var description: String {
        switch self {
        case .stale(let age): return "stale sample (\(Int(age)) s old)"
        case .outOfOrder: return "sample not newer than the previous one"
        }
    }
}

/// What to do to the clock for one sample.
public enum ClockAction: Sendable, Equatable, CustomStringConvertible {
    /// Step by `offsetSeconds`, then run at `frequencyPPM`.
    case step(offsetSeconds: Double, frequencyPPM: Double)
    /// Leave the phase; set the frequency correction to `frequencyPPM` so the `offsetSeconds`
    /// measured melts away over the next interval(s).
    case slew(offsetSeconds: Double, frequencyPPM: Double)
    case ignore(IgnoredSample)

    public var description: String {
        switch self {
        case .step(let o, let f): return "step \(formatMilliseconds(o)) ms, frequency \(formatPPM(f)) ppm"
        case .slew(let o, let f): return "slew \(formatMilliseconds(o)) ms at \(formatPPM(f)) ppm"
        case .ignore(let why): return "ignored: \(why)"
        }
    }
}

func formatMilliseconds(_ seconds: Double) -> String {
    let us = (seconds * 1e6).rounded()
    return String(us / 1000)
}

func formatPPM(_ ppm: Double) -> String { String((ppm * 1000).rounded() / 1000) }

/// The clock discipline for userspace time sync: pure state, samples in, actions out.
///
/// Model: between two samples `Δ` seconds apart the offset θ (host − guest) changes by
/// `−(e + a)·Δ`, where `e` is the guest oscillator's own frequency error and `a` the correction
/// we applied. So each pair of samples measures `e = (θₖ − θₖ₊₁)/Δ − a`; the estimate `ê`
/// follows that measurement with gain `frequencyGain` (a frequency-locked loop). The new
/// correction cancels `ê` and removes `phaseGain` of the remaining offset over one interval:
/// `a = −ê + phaseGain·θ/Δ`, clamped to ±`slewMaxPPM` (a phase-locked loop on top).
/// Offsets beyond `stepThresholdSeconds`, and every SYNC, are stepped instead.
///
/// Staleness: a sample whose known age exceeds `staleSeconds` is ignored; so is one whose host
/// time is not newer than the last one used. Without a known age (message versions 1 and 3),
/// a sample whose host time lies more than `staleSeconds` behind what the previous sample and
/// the elapsed guest time predict is ignored, unless `reanchorAfter` such samples arrive in a
/// row (then the host's clock really moved back and we follow it).
public struct ClockDiscipline: Sendable {
    public struct Settings: Sendable, Equatable {
        public var stepThresholdSeconds: Double
        public var slewMaxPPM: Double
        public var staleSeconds: Double
        /// Share of the offset corrected per interval (0…1].
        public var phaseGain: Double
        /// Weight of a new frequency measurement (0…1].
        public var frequencyGain: Double
        /// Frequency measurements beyond this (ppm) are treated as disturbances, not drift.
        public var maximumFrequencyErrorPPM: Double
        /// Interval assumed before two samples were seen (Hyper-V samples every 5 s).
        public var defaultIntervalSeconds: Double
        /// Consecutive predicted-stale samples after which the host's time is accepted.
        public var reanchorAfter: Int

        public init(
            stepThresholdSeconds: Double = 0.1, slewMaxPPM: Double = 500, staleSeconds: Double = 600,
            phaseGain: Double = 0.5, frequencyGain: Double = 0.5, maximumFrequencyErrorPPM: Double = 1000,
            defaultIntervalSeconds: Double = 5, reanchorAfter: Int = 3
        ) {
            self.stepThresholdSeconds = stepThresholdSeconds
            self.slewMaxPPM = slewMaxPPM
            self.staleSeconds = staleSeconds
            self.phaseGain = phaseGain
            self.frequencyGain = frequencyGain
            self.maximumFrequencyErrorPPM = maximumFrequencyErrorPPM
            self.defaultIntervalSeconds = defaultIntervalSeconds
            self.reanchorAfter = reanchorAfter
        }
    }

    /// The last sample used, as it stands after our action.
    struct Anchor: Sendable {
        var hostNanoseconds: Int64
        /// Guest clock then, shifted by any step we made (so elapsed guest time stays true).
        var guestNanoseconds: Int64
        /// Offset left after the action (0 after a step).
        var residualSeconds: Double
        /// Correction in force from then on (ppm).
        var frequencyPPM: Double
        var intervalSeconds: Double
    }

    public let settings: Settings
    /// Estimated frequency error of the guest oscillator (ppm; positive = fast).
    public private(set) var estimatedErrorPPM: Double
    /// Samples used / ignored so far.
    public private(set) var used = 0
    public private(set) var ignored = 0
    private var anchor: Anchor?
    private var predictedStaleInARow = 0

    /// - Parameter currentFrequencyPPM: the correction already in force (the kernel keeps it
    ///   across our restarts), taken as the first estimate of the error it compensates.
    public init(settings: Settings, currentFrequencyPPM: Double = 0) {
        self.settings = settings
        estimatedErrorPPM = -currentFrequencyPPM
    }

    /// Decides what to do with `sample`.
    public mutating func process(_ sample: TimeSample) -> ClockAction {
        if let reason = staleness(of: sample) {
            ignored += 1
            return .ignore(reason)
        }
        used += 1
        let theta = sample.offsetSeconds
        let interval = anchor.map { secondsBetween(sample.hostNanoseconds, $0.hostNanoseconds) }
        // Frequency: what the last interval says about the oscillator, unless it is implausible
        // (someone else stepped the clock, or the VM was paused).
        if let anchor, let interval, interval > 0, interval <= 4 * max(settings.staleSeconds, 1) {
            let measured = (anchor.residualSeconds - theta) / interval * 1e6 - anchor.frequencyPPM
            if abs(measured) <= settings.maximumFrequencyErrorPPM {
                estimatedErrorPPM += settings.frequencyGain * (measured - estimatedErrorPPM)
            }
        }
        let nextInterval =
            interval.flatMap { $0 > 0 && $0 <= 3600 ? $0 : nil } ?? anchor?.intervalSeconds
            ?? settings.defaultIntervalSeconds
        let base = clamp(-estimatedErrorPPM)
        if sample.isSync || abs(theta) > settings.stepThresholdSeconds {
            anchor = Anchor(
                hostNanoseconds: sample.hostNanoseconds, guestNanoseconds: sample.hostNanoseconds, residualSeconds: 0,
                frequencyPPM: base, intervalSeconds: nextInterval)
            return .step(offsetSeconds: theta, frequencyPPM: base)
        }
        let correction = clamp(base + settings.phaseGain * theta / nextInterval * 1e6)
        anchor = Anchor(
            hostNanoseconds: sample.hostNanoseconds, guestNanoseconds: sample.guestNanoseconds, residualSeconds: theta,
            frequencyPPM: correction, intervalSeconds: nextInterval)
        return .slew(offsetSeconds: theta, frequencyPPM: correction)
    }

    private func clamp(_ ppm: Double) -> Double { max(-settings.slewMaxPPM, min(settings.slewMaxPPM, ppm)) }

    private mutating func staleness(of sample: TimeSample) -> IgnoredSample? {
        if let age = sample.ageSeconds, age > settings.staleSeconds { return .stale(ageSeconds: age) }
        guard let anchor else { return nil }
        if sample.ageSeconds == nil {
            // predicted host − actual host, where predicted = anchor host + elapsed guest time.
            let behind = secondsBetween(anchor.hostNanoseconds, sample.hostNanoseconds)
                + secondsBetween(sample.guestNanoseconds, anchor.guestNanoseconds)
            if behind > settings.staleSeconds {
                predictedStaleInARow += 1
                if predictedStaleInARow < settings.reanchorAfter { return .stale(ageSeconds: behind) }
                // The host's clock really went back: follow it.
                predictedStaleInARow = 0
                return nil
            }
            predictedStaleInARow = 0
        }
        if sample.hostNanoseconds <= anchor.hostNanoseconds { return .outOfOrder }
        return nil
    }
}

/// A step in whole nanoseconds. Host times can put an offset right at the edge of Int64, where
/// rounding would leave the range, so it is clamped instead of trapping.
public func stepNanoseconds(_ seconds: Double) -> Int64 {
    let ns = (seconds * 1e9).rounded()
    guard ns.isFinite else { return 0 }
    if ns >= 9.2e18 { return 9_200_000_000_000_000_000 }
    if ns <= -9.2e18 { return -9_200_000_000_000_000_000 }
    return Int64(ns)
}

/// `a − b` in seconds: exact integer arithmetic when it fits, floating point when host-supplied
/// extremes would overflow (never a wrapped, sign-flipped result).
func secondsBetween(_ a: Int64, _ b: Int64) -> Double {
    let (d, overflow) = a.subtractingReportingOverflow(b)
    return overflow ? (Double(a) - Double(b)) / 1e9 : Double(d) / 1e9
}
