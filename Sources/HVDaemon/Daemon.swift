import Glibc
import HVServiceKit
import HVSystem
import Logging

/// Command-line choices of `hvguestd` (DESIGN.md, "Interfaces others rely on").
public struct DaemonOptions: Sendable {
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
    public var configDirectory: String {
        let f = resolvedConfigFile
        guard let slash = f.lastIndex(of: "/") else { return "." }
        return slash == f.startIndex ? "/" : String(f[..<slash])
    }
}

/// Relay services (kernel char devices) hvguestd can run today, in start order.
let relayServices: [ServiceName] = [.kvp, .vss, .fcopy]

/// The composed daemon: configuration → services → channel threads, plus signals and sd_notify.
public final class Daemon: @unchecked Sendable {
    public let options: DaemonOptions
    public let status = StatusBoard()
    private let logger: Logger
    private var runners: [RelayChannelRunner] = []

    public init(options: DaemonOptions, logger: Logger) {
        self.options = options
        self.logger = logger
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
        let present = relayServices.filter { fileKind(env.devicePath("dev/vmbus/hv_\($0.rawValue)")) != .missing }
        if present.isEmpty {
            logger.notice("no Hyper-V relay device found under \(options.deviceRoot); waiting for any to appear")
            return relayServices
        }
        return present
    }

    func makeService(_ name: ServiceName) -> (any RelayService)? {
        switch name {
        case .kvp, .vss, .fcopy: return UnimplementedRelayService(name)
        case .shutdown, .timesync, .heartbeat: return nil
        }
    }

    /// Starts every selected service on its own thread.
    public func start() throws {
        try makeDirectories(options.resolvedRuntimeDirectory)
        let env = environment
        for name in selectedServices() {
            guard let service = makeService(name) else {
                logger.warning("service \(name.rawValue) is not available in this build; skipping")
                continue
            }
            let runner = try RelayChannelRunner(service: service, environment: env, status: status)
            try runner.start()
            runners.append(runner)
        }
    }

    /// Stops every service (each resets first: a freeze is thawed, a partial copy removed).
    public func stop() {
        for r in runners.reversed() { r.stop() }
        runners = []
    }

    /// Runs until SIGTERM or SIGINT: blocks those signals in every thread (call before any other
    /// thread starts), starts the services, and waits in `sigwait`.
    public func runUntilSignalled(onReady: () -> Void = {}, onStopping: () -> Void = {}) throws -> Int32 {
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
                logger.notice("SIGHUP: configuration reload is not supported yet; restart the service to apply changes")
                continue
            }
            logger.notice("signal \(sig) received; stopping")
            onStopping()
            stop()
            return 0
        }
    }
}
