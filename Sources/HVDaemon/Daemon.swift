import Glibc
import HVFileCopy
import HVKVP
import HVServiceKit
import HVSystem
import HVVSS
import Logging

/// Command-line choices of `hvguestd` (DESIGN.md, "Interfaces others rely on").
public struct DaemonOptions: Sendable, Equatable {
    /// `--config FILE`; nil = `/etc/hvguest/hvguest.toml` if it exists.
    public var configFile: String?
    /// `--device-root DIR` (default `/`).
    public var deviceRoot: String
    /// `--state-dir DIR`: replaces `/var/lib/hyperv`; the runtime directory becomes `DIR/run`.
    public var stateDirectory: String?
    /// Services named on the command line; empty = every service whose device exists.
    public var services: [ServiceName]

    public init(configFile: String? = nil, deviceRoot: String = "/", stateDirectory: String? = nil, services: [ServiceName] = []) {
        self.configFile = configFile
        self.deviceRoot = deviceRoot
        self.stateDirectory = stateDirectory
        self.services = services
    }

    public static let defaultConfigFile = "/etc/hvguest/hvguest.toml"
    public static let defaultStateDirectory = "/var/lib/hyperv"
    public static let defaultRuntimeDirectory = "/run/hvguest"

    public var resolvedStateDirectory: String { stateDirectory ?? Self.defaultStateDirectory }
    public var resolvedRuntimeDirectory: String { stateDirectory.map { $0 + "/run" } ?? Self.defaultRuntimeDirectory }
    public var resolvedConfigFile: String { configFile ?? Self.defaultConfigFile }
    /// The directory of the configuration file (hooks live below it), always absolute: a
    /// relative `--config` is taken from the working directory.
    public var configDirectory: String {
        var f = resolvedConfigFile
        if !f.hasPrefix("/"), let cwd = currentDirectory() { f = (cwd == "/" ? "" : cwd) + "/" + f }
        guard let slash = f.lastIndex(of: "/") else { return "." }
        return slash == f.startIndex ? "/" : String(f[..<slash])
    }
}

/// Relay services (kernel char devices) hvguestd can run today, in start order.
let relayServices: [ServiceName] = [.kvp, .vss, .fcopy]

/// The composed daemon: configuration → services → channel threads, plus signals and sd_notify.
public final class Daemon: @unchecked Sendable {
    public let options: DaemonOptions
    public let configuration: DaemonConfiguration
    public let status = StatusBoard()
    let logger: Logger
    var runners: [any ServiceRunner] = []
    private var watchdog: WatchdogPinger?
    /// Shutdown, time sync and heartbeat: userspace channels or kernel-mode companions.
    let integrationComponents = IntegrationComponents()
    private var statusServer: StatusServer?
    /// Services that add their own facts to `hvguestctl status`.
    let statusReporters = Locked<[ServiceName: any ServiceStatusReporting]>([:])
    /// CLOCK_REALTIME seconds when `start()` ran (status).
    var startedAt = 0
    /// Overrides for tests: the channel runner's timing.
    public var runnerSettings = RelayChannelRunner.Settings()

    public init(options: DaemonOptions, configuration: DaemonConfiguration, logger: Logger) {
        self.options = options
        self.configuration = configuration
        self.logger = logger
        runnerSettings.maximumBackoffMilliseconds = Int32(min(configuration.settings.reconnectMaxSeconds * 1000, 3_600_000))
    }

    var environment: ServiceEnvironment {
        ServiceEnvironment(deviceRoot: options.deviceRoot, stateDirectory: options.resolvedStateDirectory,
                           runtimeDirectory: options.resolvedRuntimeDirectory, configDirectory: options.configDirectory,
                           logger: logger)
    }

    /// Which services to run: those named, or every relay service whose device exists now
    /// (all of them, waiting, when none exists yet — devices can appear late).
    func selectedServices() -> [ServiceName] {
        if !options.services.isEmpty { return relayServices.filter(options.services.contains) + options.services.filter { !relayServices.contains($0) } }
        let env = environment
        let present = relayServices.filter {
            fileKind(env.devicePath("dev/vmbus/hv_\($0.rawValue)")) != .missing || ($0 == .fcopy && fileCopyRingExists(env))
        }
        if present.isEmpty {
            logger.notice("no Hyper-V relay device found under \(options.deviceRoot); waiting for any to appear")
            return relayServices
        }
        return present
    }

    func makeService(_ name: ServiceName, environment env: ServiceEnvironment) throws -> (any RelayService)? {
        switch name {
        case .kvp:
            return try KVPService(environment: env, configuration: configuration.kvp)
        case .vss:
            return VSSService(environment: env, configuration: configuration.vss)
        case .fcopy:
            let service = FileCopyService(configuration: configuration.fcopy, environment: env)
            // A copy interrupted by a crash left a hidden temporary file; remove it before the
            // host can start a new copy (never a partial file at the destination).
            _ = service.engine.cleanStaleTemporaries()
            return service
        case .shutdown, .timesync, .heartbeat:
            return nil
        }
    }

    /// Start-up safety net: a previous run that died while filesystems were frozen left a
    /// record; thaw what it lists before anything else (PROTOCOL.md §6.3 V3).
    func recoverFrozenFilesystems() {
        let report = VSSRecovery.thawAll(runtimeDirectory: options.resolvedRuntimeDirectory)
        guard report.hadRecord else { return }
        if report.succeeded {
            logger.warning("a previous run left filesystems frozen; thawed \(report.thawed), not frozen: \(report.notFrozen)")
        } else {
            logger.critical("could not thaw what a previous run froze: \(report.failures.joined(separator: "; "))")
        }
    }

    /// Starts every selected service on its own thread.
    public func start() throws {
        startedAt = time(nil)
        try makeDirectories(options.resolvedRuntimeDirectory)
        let selected = selectedServices()
        // Only the daemon that runs VSS owns the frozen record: the units share /run/hvguest,
        // and another unit's daemon must never thaw a freeze that is in progress.
        if selected.contains(.vss) { recoverFrozenFilesystems() }
        let env = environment
        startIntegrationComponents(environment: env)
        for name in selected where relayServices.contains(name) {
            let runner: any ServiceRunner
            if name == .fcopy {
                runner = try makeFileCopyRunner(environment: env)
            } else {
                guard let service = try makeService(name, environment: env) else {
                    logger.warning("service \(name.rawValue) is not available in this build; skipping")
                    continue
                }
                if let reporter = service as? any ServiceStatusReporting { statusReporters.withLock { $0[name] = reporter } }
                runner = try RelayChannelRunner(service: service, environment: env, status: status, settings: runnerSettings)
            }
            try runner.start()
            runners.append(runner)
        }
        statusServer = startStatusServer()
        let watched = runners
        watchdog = try WatchdogPinger.startIfRequested(settings: configuration.settings) {
            // Healthy unless a request has been running far longer than the kernel would wait
            // (FREEZE may legitimately take up to 900 s plus hooks).
            watched.allSatisfy { r in
                let limit: UInt64 = r.serviceName == .vss ? 1_000 : 120
                return (r.busyNanoseconds() ?? 0) < limit * 1_000_000_000
            }
        }
    }

    /// Stops every service (each resets first: a freeze is thawed, a partial copy removed).
    public func stop() {
        watchdog?.stop()
        watchdog = nil
        statusServer?.stop()
        statusServer = nil
        for r in runners.reversed() { r.stop() }
        runners = []
        integrationComponents.stopAll()
    }

    /// One line for systemd's STATUS=.
    public func statusLine() -> String {
        let all = status.snapshot()
        let registered = all.filter { $0.state.isHealthy }.map { $0.service.rawValue }
        let waiting = all.filter { !$0.state.isHealthy }.map { $0.service.rawValue }
        var parts: [String] = []
        if !registered.isEmpty { parts.append("registered: " + registered.joined(separator: ", ")) }
        if !waiting.isEmpty { parts.append("waiting: " + waiting.joined(separator: ", ")) }
        return parts.isEmpty ? "no services" : parts.joined(separator: "; ")
    }

    /// Runs until SIGTERM or SIGINT: blocks those signals in every thread (call before any other
    /// thread starts), starts the services, and waits in `sigwait`. SIGHUP calls `onReload`
    /// (on this thread, between signals).
    public func runUntilSignalled(onReady: () -> Void = {}, onStopping: () -> Void = {}, onReload: (() -> Void)? = nil) throws -> Int32 {
        var set = sigset_t()
        sigemptyset(&set)
        for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        try start()
        onReady()
        while true {
            var sig: Int32 = 0
            if sigwait(&set, &sig) != 0 { continue }
            if sig == SIGHUP {
                if let onReload {
                    onReload()
                } else {
                    logger.notice("SIGHUP: configuration reload is not supported here; restart the service to apply changes")
                }
                continue
            }
            logger.notice("signal \(sig) received; stopping")
            onStopping()
            stop()
            return 0
        }
    }
}
