import HVServiceKit

/// The `[timesync]` section (docs/ICS.md).
public struct TimeSyncConfiguration: Sendable, Equatable {
    public enum Mode: String, Sendable, Equatable { case kernel, userspace }
    /// Where samples go: the clock (our discipline) or chronyd's SOCK refclock.
    public enum Output: String, Sendable, Equatable { case clock, chrony }

    public var mode: Mode
    public var output: Output
    /// Offsets larger than this are stepped; smaller ones slewed.
    public var stepThresholdMilliseconds: Double
    /// The largest frequency correction the discipline applies (the kernel allows 500 ppm).
    public var slewMaxPPM: Double
    /// Samples older than this are ignored (the kernel's limit is 600 s).
    public var staleSeconds: Double
    /// chronyd's `refclock SOCK` path.
    public var chronySocket: String
    /// Kernel mode: how often to read the Hyper-V PTP clock.
    public var ptpPollSeconds: Double
    /// Kernel mode: also discipline the clock from the PTP offset (off: report only).
    public var kernelDiscipline: Bool
    /// Kernel mode: offsets above this are logged as a warning.
    public var warnOffsetMilliseconds: Double

    public static let knownKeys: Set<String> = [
        "mode", "output", "step_threshold_ms", "slew_max_ppm", "stale_seconds", "chrony_socket", "ptp_poll_seconds",
        "kernel_discipline", "warn_offset_ms",
    ]

    public init(
        mode: Mode = .kernel, output: Output = .clock, stepThresholdMilliseconds: Double = 100, slewMaxPPM: Double = 500,
        staleSeconds: Double = 600, chronySocket: String = "/run/chrony/hvguest-timesync.sock", ptpPollSeconds: Double = 16,
        kernelDiscipline: Bool = false, warnOffsetMilliseconds: Double = 100
    ) {
        self.mode = mode
        self.output = output
        self.stepThresholdMilliseconds = stepThresholdMilliseconds
        self.slewMaxPPM = slewMaxPPM
        self.staleSeconds = staleSeconds
        self.chronySocket = chronySocket
        self.ptpPollSeconds = ptpPollSeconds
        self.kernelDiscipline = kernelDiscipline
        self.warnOffsetMilliseconds = warnOffsetMilliseconds
    }

    public init(section: ConfigSection) throws(ConfigError) {
        try section.checkKnownKeys(Self.knownKeys)
        let socket = try section.string("chrony_socket", default: "/run/chrony/hvguest-timesync.sock")
        guard socket.hasPrefix("/") else { throw section.error("chrony_socket", "\"\(socket)\" is not an absolute path") }
        self.init(
            mode: Mode(rawValue: try section.choice("mode", allowed: ["kernel", "userspace"], default: "kernel")) ?? .kernel,
            output: Output(rawValue: try section.choice("output", allowed: ["clock", "chrony"], default: "clock")) ?? .clock,
            stepThresholdMilliseconds: Double(try section.integer("step_threshold_ms", default: 100, range: 1...3_600_000)),
            slewMaxPPM: Double(try section.integer("slew_max_ppm", default: 500, range: 1...500)),
            staleSeconds: try section.seconds("stale_seconds", default: 600, range: 1...86_400),
            chronySocket: socket,
            ptpPollSeconds: try section.seconds("ptp_poll_seconds", default: 16, range: 1...3600),
            kernelDiscipline: try section.bool("kernel_discipline", default: false),
            warnOffsetMilliseconds: Double(try section.integer("warn_offset_ms", default: 100, range: 1...3_600_000)))
    }

    /// The discipline's parameters.
    public var discipline: ClockDiscipline.Settings {
        ClockDiscipline.Settings(
            stepThresholdSeconds: stepThresholdMilliseconds / 1000, slewMaxPPM: slewMaxPPM, staleSeconds: staleSeconds)
    }
}
