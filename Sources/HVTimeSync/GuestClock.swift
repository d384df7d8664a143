import HVSystem
import Logging

/// The guest's CLOCK_REALTIME as the time-sync service sees it. Every write of hvguest goes
/// through this protocol: live only on a real guest; logged in an emulated run; simulated in tests.
public protocol GuestClock: AnyObject, Sendable {
    /// Nanoseconds since the Unix epoch.
    func nowNanoseconds() -> Int64
    /// Moves the clock by `nanoseconds` at once.
    func step(byNanoseconds nanoseconds: Int64) throws(SystemError)
    /// Sets the frequency correction (absolute, ppm; positive = run faster).
    func setFrequency(ppm: Double) throws(SystemError)
    /// The frequency correction in force (ppm).
    var frequencyPPM: Double { get }
}

/// Chooses the clock for an environment: the real one only when the device root is `/`.
public func makeGuestClock(deviceRoot: String, logger: Logger) -> any GuestClock {
    if let authorization = ClockWriteAuthorization.forDeviceRoot(deviceRoot) { return LiveGuestClock(authorization) }
    return DryRunGuestClock(logger: logger)
}

/// The machine's clock (clock_gettime / clock_adjtime). Needs the authorization that exists only
/// for device root `/`.
public final class LiveGuestClock: GuestClock {
    private let authorization: ClockWriteAuthorization
    public init(_ authorization: ClockWriteAuthorization) { self.authorization = authorization }
    public func nowNanoseconds() -> Int64 { RealtimeClock.nowNanoseconds() }
    public func step(byNanoseconds nanoseconds: Int64) throws(SystemError) {
        try RealtimeClock.step(byNanoseconds: nanoseconds, authorization)
    }
    public func setFrequency(ppm: Double) throws(SystemError) { try RealtimeClock.setFrequency(ppm: ppm, authorization) }
    public var frequencyPPM: Double { (try? RealtimeClock.frequencyPPM()) ?? 0 }
}

/// Reads the real clock, never writes it: adjustments are logged and remembered (emulated runs).
public final class DryRunGuestClock: GuestClock {
    private let logger: Logger
    private let state = Locked<(steps: [Int64], frequency: Double)>(([], 0))
    public init(logger: Logger) { self.logger = logger }
    public func nowNanoseconds() -> Int64 { RealtimeClock.nowNanoseconds() }
    public func step(byNanoseconds nanoseconds: Int64) throws(SystemError) {
        logger.notice("emulated: would step the clock by \(Double(nanoseconds) / 1e6) ms")
        state.withLock { $0.steps.append(nanoseconds) }
    }
    public func setFrequency(ppm: Double) throws(SystemError) {
        logger.info("emulated: would set the clock frequency correction to \(ppm) ppm")
        state.withLock { $0.frequency = ppm }
    }
    public var frequencyPPM: Double { state.withLock { $0.frequency } }
    /// Steps that would have been made.
    public var steps: [Int64] { state.withLock { $0.steps } }
}

/// A simulated guest clock against a simulated host clock (tests): the guest runs at
/// 1 + (frequency error + correction)·10⁻⁶ of the host's rate, from an initial offset.
public final class SimulatedClock: GuestClock {
    private struct State {
        var hostNanoseconds: Int64
        /// Guest − host, seconds (kept apart from the epoch value for precision).
        var offsetSeconds: Double
        var correctionPPM: Double = 0
        var steps: [Int64] = []
    }
    private let state: Locked<State>
    /// The oscillator's own error (ppm; positive = guest fast).
    public let frequencyErrorPPM: Double

    public init(hostNanoseconds: Int64 = 1_750_000_000_000_000_000, offsetSeconds: Double, frequencyErrorPPM: Double = 0) {
        state = Locked(State(hostNanoseconds: hostNanoseconds, offsetSeconds: offsetSeconds))
        self.frequencyErrorPPM = frequencyErrorPPM
    }

    /// Lets `seconds` of host time pass.
    public func advance(seconds: Double) {
        state.withLock {
            $0.hostNanoseconds &+= Int64(seconds * 1e9)
            $0.offsetSeconds += seconds * (frequencyErrorPPM + $0.correctionPPM) * 1e-6
        }
    }

    /// The host's (true) time.
    public var hostNanoseconds: Int64 { state.withLock { $0.hostNanoseconds } }
    /// Guest − host in seconds.
    public var offsetSeconds: Double { state.withLock { $0.offsetSeconds } }
    public var steps: [Int64] { state.withLock { $0.steps } }

    public func nowNanoseconds() -> Int64 {
        state.withLock { $0.hostNanoseconds &+ Int64(($0.offsetSeconds * 1e9).rounded()) }
    }
    public func step(byNanoseconds nanoseconds: Int64) throws(SystemError) {
        state.withLock {
            $0.offsetSeconds += Double(nanoseconds) / 1e9
            $0.steps.append(nanoseconds)
        }
    }
    public func setFrequency(ppm: Double) throws(SystemError) { state.withLock { $0.correctionPPM = max(-500, min(500, ppm)) } }
    public var frequencyPPM: Double { state.withLock { $0.correctionPPM } }
}
