import HVTimeSync
import Testing

/// A deterministic jitter source (the same numbers every run).
struct Jitter {
    var state: UInt64
    mutating func next(_ range: ClosedRange<Double>) -> Double {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        let unit = Double(state >> 11) / Double(1 << 53)
        return range.lowerBound + unit * (range.upperBound - range.lowerBound)
    }
}

/// Host samples every `interval` s of simulated time; the guest receives each 50–150 µs after the
/// host took it and applies the discipline's action. Returns |guest − host| after each sample.
func simulate(
    offsetSeconds: Double, errorPPM: Double, samples: Int, interval: Double = 5,
    settings: ClockDiscipline.Settings = ClockDiscipline.Settings()
) -> [Double] {
    let clock = SimulatedClock(offsetSeconds: offsetSeconds, frequencyErrorPPM: errorPPM)
    var discipline = ClockDiscipline(settings: settings)
    var jitter = Jitter(state: 42)
    var trace: [Double] = []
    for _ in 0..<samples {
        clock.advance(seconds: interval)
        let host = clock.hostNanoseconds
        clock.advance(seconds: jitter.next(50e-6...150e-6))
        let sample = TimeSample(hostNanoseconds: host, guestNanoseconds: clock.nowNanoseconds())
        switch discipline.process(sample) {
        case .step(let o, let f):
            try? clock.step(byNanoseconds: Int64((o * 1e9).rounded()))
            try? clock.setFrequency(ppm: f)
        case .slew(_, let f):
            try? clock.setFrequency(ppm: f)
        case .ignore:
            break
        }
        trace.append(abs(clock.offsetSeconds))
    }
    return trace
}

@Suite struct ClockDisciplineTests {
    /// 2 s off and 30 ppm fast: the first sample steps, then the discipline holds it under 1 ms
    /// from sample 1 on, and learns the frequency (under 100 µs from sample 10 on).
    @Test func twoSecondsConvergeInOneSample() {
        let trace = simulate(offsetSeconds: 2, errorPPM: 30, samples: 60)
        #expect(trace.allSatisfy { $0 < 0.001 })
        #expect(trace[10...].allSatisfy { $0 < 0.0002 })
    }

    @Test func twoSecondsBehindWithSlowClock() {
        let trace = simulate(offsetSeconds: -2, errorPPM: -45, samples: 60)
        #expect(trace.allSatisfy { $0 < 0.001 })
    }

    /// 50 ms is under the step threshold: slewed at most 500 ppm (2.5 ms per 5 s sample), so
    /// under 1 ms within 25 samples (about two minutes), and it stays there.
    @Test func fiftyMillisecondsSlewWithin25Samples() {
        let trace = simulate(offsetSeconds: 0.05, errorPPM: -20, samples: 80)
        #expect(trace[24...].allSatisfy { $0 < 0.001 })
        #expect(trace[40...].allSatisfy { $0 < 0.0002 })
        // Never stepped: a slew never makes the offset jump past the start.
        #expect(trace.allSatisfy { $0 <= 0.0501 })
    }

    @Test func fiftyMillisecondsBehind() {
        let trace = simulate(offsetSeconds: -0.05, errorPPM: 25, samples: 80)
        #expect(trace[24...].allSatisfy { $0 < 0.001 })
    }

    @Test func smallerSlewLimitTakesLonger() {
        var settings = ClockDiscipline.Settings()
        settings.slewMaxPPM = 100
        let trace = simulate(offsetSeconds: 0.05, errorPPM: 10, samples: 150, settings: settings)
        #expect(trace[20] > 0.001)  // 100 ppm removes only 0.5 ms per sample
        #expect(trace[110...].allSatisfy { $0 < 0.001 })
    }

    @Test func thresholdsDecideStepOrSlew() {
        var d = ClockDiscipline(settings: ClockDiscipline.Settings(stepThresholdSeconds: 0.1))
        let base: Int64 = 1_750_000_000_000_000_000
        guard case .slew(let o, let f) = d.process(TimeSample(hostNanoseconds: base, guestNanoseconds: base - 99_000_000)) else {
            Issue.record("99 ms must be slewed")
            return
        }
        #expect(abs(o - 0.099) < 1e-9)
        #expect(f == 500)  // clamped
        guard case .step(let s, _) = d.process(TimeSample(hostNanoseconds: base + 5_000_000_000, guestNanoseconds: base + 4_800_000_000))
        else {
            Issue.record("200 ms must be stepped")
            return
        }
        #expect(abs(s - 0.2) < 1e-9)
        // SYNC steps even a small offset.
        let sync = TimeSample(hostNanoseconds: base + 10_000_000_000, guestNanoseconds: base + 9_999_000_000, isSync: true)
        guard case .step = d.process(sync)
        else {
            Issue.record("SYNC must step")
            return
        }
    }

    @Test func staleSamplesAreIgnored() {
        var d = ClockDiscipline(settings: ClockDiscipline.Settings(staleSeconds: 600))
        let base: Int64 = 1_750_000_000_000_000_000
        // Known age (v4 reference time) beyond the limit.
        #expect(d.process(TimeSample(hostNanoseconds: base, guestNanoseconds: base, ageSeconds: 601)) == .ignore(.stale(ageSeconds: 601)))
        #expect(d.process(TimeSample(hostNanoseconds: base, guestNanoseconds: base, ageSeconds: 599)) != .ignore(.stale(ageSeconds: 599)))
        // Replayed (not newer than the last sample used).
        #expect(d.process(TimeSample(hostNanoseconds: base, guestNanoseconds: base + 5_000_000_000)) == .ignore(.outOfOrder))
        // Without a known age: 700 s behind what the last sample and elapsed time predict.
        let late = TimeSample(hostNanoseconds: base + 10_000_000_000 - 700_000_000_000, guestNanoseconds: base + 10_000_000_000)
        guard case .ignore(.stale(let behind)) = d.process(late) else {
            Issue.record("a sample 700 s behind prediction must be stale")
            return
        }
        #expect(abs(behind - 700) < 0.001)
        #expect(d.ignored == 3)
        #expect(d.used == 1)
    }

    @Test func hostClockThatReallyWentBackIsFollowedAfterThreeSamples() {
        var d = ClockDiscipline(settings: ClockDiscipline.Settings(staleSeconds: 600))
        let base: Int64 = 1_750_000_000_000_000_000
        _ = d.process(TimeSample(hostNanoseconds: base, guestNanoseconds: base))
        var results: [ClockAction] = []
        for k in 1...3 {
            let guest = base + Int64(k) * 5_000_000_000
            results.append(d.process(TimeSample(hostNanoseconds: guest - 3_600_000_000_000, guestNanoseconds: guest)))
        }
        guard case .ignore = results[0], case .ignore = results[1], case .step(let o, _) = results[2] else {
            Issue.record("expected ignore, ignore, step; got \(results)")
            return
        }
        #expect(abs(o + 3600) < 0.001)
    }

    @Test func startsFromTheFrequencyAlreadyInForce() {
        let d = ClockDiscipline(settings: ClockDiscipline.Settings(), currentFrequencyPPM: -12.5)
        #expect(d.estimatedErrorPPM == 12.5)
    }
}

@Suite struct HostTimeEdgeTests {
    @Test func extremeOffsetsNeverTrap() {
        #expect(stepNanoseconds(Double(Int64.max) / 1e9) == 9_200_000_000_000_000_000)
        #expect(stepNanoseconds(-1e30) == -9_200_000_000_000_000_000)
        #expect(stepNanoseconds(.nan) == 0)
        #expect(stepNanoseconds(0.25) == 250_000_000)
        // A host time at the far end of the range, against a guest clock near the start.
        var d = ClockDiscipline(settings: ClockDiscipline.Settings())
        let action = d.process(TimeSample(hostNanoseconds: Int64.min, guestNanoseconds: Int64.max))
        guard case .step = action else {
            Issue.record("expected a step, got \(action)")
            return
        }
    }
}
