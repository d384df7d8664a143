import HVSystem

/// The offset of the Hyper-V PTP clock (the host's time as hv_utils keeps it) from the guest's
/// CLOCK_REALTIME, from one PTP_SYS_OFFSET reading.
public struct PTPOffset: Sendable, Equatable {
    /// PTP clock − system clock (ns): positive when the guest is behind the host.
    public var offsetNanoseconds: Int64
    /// The system-clock window around the chosen PHC read (ns): the measurement's uncertainty.
    public var delayNanoseconds: Int64
    /// Midpoint of that window (system time of the measurement).
    public var systemNanoseconds: Int64

    public init(offsetNanoseconds: Int64, delayNanoseconds: Int64, systemNanoseconds: Int64) {
        self.offsetNanoseconds = offsetNanoseconds
        self.delayNanoseconds = delayNanoseconds
        self.systemNanoseconds = systemNanoseconds
    }

    /// From the 2n+1 timestamps `sys₀, phc₀, sys₁, phc₁, …, sysₙ`: the pair with the narrowest
    /// system window wins (least disturbed by preemption). Nil for a malformed or empty reading.
    public static func estimate(readings: [Int64]) -> PTPOffset? {
        guard readings.count >= 3, readings.count % 2 == 1 else { return nil }
        var best: PTPOffset?
        var i = 0
        while i + 2 < readings.count {
            let before = readings[i], phc = readings[i + 1], after = readings[i + 2]
            i += 2
            let (delay, overflow) = after.subtractingReportingOverflow(before)
            guard !overflow, delay >= 0 else { continue }
            let mid = before &+ delay / 2
            let candidate = PTPOffset(offsetNanoseconds: phc &- mid, delayNanoseconds: delay, systemNanoseconds: mid)
            if best.map({ delay < $0.delayNanoseconds }) ?? true { best = candidate }
        }
        return best
    }

    /// As a time sample for the discipline (host = PTP time, guest = system time).
    public var sample: TimeSample {
        TimeSample(hostNanoseconds: systemNanoseconds &+ offsetNanoseconds, guestNanoseconds: systemNanoseconds)
    }
}

/// Reads the Hyper-V PTP clock.
public protocol PTPSource: Sendable {
    /// 2n+1 timestamps (see `PTPOffset.estimate`).
    func readings() throws(SystemError) -> [Int64]
}

/// `/dev/ptpN` whose `clock_name` is `hyperv` (registered by hv_utils' time sync; gone when time
/// sync is taken over), under the device root.
public struct HyperVPTPSource: PTPSource {
    public var deviceRoot: String
    public var samples: Int

    public init(deviceRoot: String, samples: Int = 5) {
        self.deviceRoot = deviceRoot
        self.samples = samples
    }

    /// `ptpN`, or nil when hv_utils registered no PTP clock.
    public var deviceName: String? { PTPDevice.find(clockName: "hyperv", deviceRoot: deviceRoot) }

    public func readings() throws(SystemError) -> [Int64] {
        guard let name = deviceName else { throw SystemError.noSuchFile("no PTP clock named hyperv") }
        let root = deviceRoot.hasSuffix("/") ? String(deviceRoot.dropLast()) : deviceRoot
        return try PTPDevice.systemOffsetReadings(path: root + "/dev/" + name, samples: samples)
    }
}
