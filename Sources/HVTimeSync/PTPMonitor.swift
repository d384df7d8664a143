import HVServiceKit
import HVSystem
import Logging

/// What the last PTP reading said.
public enum PTPHealth: Sendable, Equatable, CustomStringConvertible {
    case ok(PTPOffset)
    /// hv_utils has had no host sample for over 600 s (ESTALE).
    case stale
    /// No `hyperv` PTP clock (not on Hyper-V, hv_utils not loaded, or time sync taken over).
    case missing
    case failed(String)

    public var description: String {
        switch self {
        case .ok(let o): return "ok, offset \(formatMilliseconds(Double(o.offsetNanoseconds) / 1e9)) ms"
        case .stale: return "stale (no host time sample for over 600 s)"
        case .missing: return "no PTP clock named hyperv"
        case .failed(let why): return "error: \(why)"
        }
    }
}

/// Kernel mode: reads the Hyper-V PTP clock periodically, reports the host–guest offset and its
/// health in status and the journal, and with `kernel_discipline` steers the clock from it with
/// the same discipline as userspace mode.
public final class PTPMonitor: @unchecked Sendable {
    private let source: any PTPSource
    private let configuration: TimeSyncConfiguration
    private let clock: (any GuestClock)?
    private let status: StatusBoard
    private let logger: Logger
    private let wake: EventFD
    private let stopping = Locked(false)
    private let discipline: Locked<ClockDiscipline>
    private let lastHealth = Locked<PTPHealth?>(nil)
    private var thread: OSThread?

    /// - Parameter clock: the clock to discipline, nil to report only.
    public init(
        source: any PTPSource, configuration: TimeSyncConfiguration, clock: (any GuestClock)?, status: StatusBoard,
        logger: Logger
    ) throws(SystemError) {
        self.source = source
        self.configuration = configuration
        self.clock = clock
        self.status = status
        self.logger = logger
        wake = try EventFD()
        discipline = Locked(ClockDiscipline(settings: configuration.discipline, currentFrequencyPPM: clock?.frequencyPPM ?? 0))
    }

    public var health: PTPHealth? { lastHealth.current }

    /// One reading: updates status, logs changes and large offsets, disciplines when asked.
    @discardableResult
    public func sampleOnce() -> PTPHealth {
        let health: PTPHealth
        do {
            if let offset = PTPOffset.estimate(readings: try source.readings()) {
                health = .ok(offset)
            } else {
                health = .failed("malformed PTP_SYS_OFFSET reading")
            }
        } catch {
            health = error.isNoSuchFile ? .missing : error.isStale ? .stale : .failed("\(error)")
        }
        let previous = lastHealth.withLock { h -> PTPHealth? in
            defer { h = health }; return h
        }
        status.update(.timesync) {
            $0.details["ptp_health"] = health.description
            switch health {
            case .ok(let o):
                $0.state = .registered(version: "kernel (hv_utils), hyperv PTP clock")
                $0.details["offset_ms"] = formatMilliseconds(Double(o.offsetNanoseconds) / 1e9)
            case .missing:
                $0.state = .waitingForDevice("PTP clock named hyperv")
            case .stale, .failed:
                $0.state = .error(health.description)
            }
        }
        switch health {
        case .ok(let o):
            let ms = Double(o.offsetNanoseconds) / 1e6
            if abs(ms) > configuration.warnOffsetMilliseconds {
                logger.warning("guest clock is \(formatMilliseconds(Double(o.offsetNanoseconds) / 1e9)) ms off the Hyper-V host")
            }
            if let clock { discipline(clock, o) }
        default:
            if previous != health { logger.warning("Hyper-V PTP clock: \(health)") }
        }
        return health
    }

    private func discipline(_ clock: any GuestClock, _ offset: PTPOffset) {
        let action = discipline.withLock { $0.process(offset.sample) }
        do throws(SystemError) {
            switch action {
            case .step(let o, let ppm):
                logger.notice("PTP offset: \(action)")
                try clock.step(byNanoseconds: stepNanoseconds(o))
                try clock.setFrequency(ppm: ppm)
            case .slew(_, let ppm):
                try clock.setFrequency(ppm: ppm)
            case .ignore(let why):
                logger.info("PTP sample ignored: \(why)")
            }
        } catch {
            logger.error("could not adjust the clock (\(action)): \(error)")
        }
    }

    public func start() throws(SystemError) {
        let interval = Int32(min(configuration.ptpPollSeconds * 1000, 3_600_000))
        thread = try OSThread(name: "hv-timesync-ptp") { [self] in
            while !stopping.current {
                sampleOnce()
                _ = try? poll([(wake.fd, .readable)], timeoutMilliseconds: interval)
            }
        }
    }

    public func stop() {
        stopping.withLock { $0 = true }
        wake.signal()
        thread?.join()
        thread = nil
    }
}
