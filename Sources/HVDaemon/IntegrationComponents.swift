import HVHeartbeat
import HVServiceKit
import HVShutdown
import HVSystem
import HVTimeSync
import HVTransport
import Logging

/// What runs for shutdown, time sync and heartbeat (docs/ICS.md): in userspace mode the channel
/// taken over from hv_utils and answered by an `ICChannelRunner`; in kernel mode the companions
/// (shutdown hooks on a host-initiated shutdown, PTP offset monitoring).
final class IntegrationComponents: @unchecked Sendable {
    let lock = Locked<Parts>(Parts())

    struct Parts {
        var runners: [ICChannelRunner] = []
        var takeovers: [TakeoverRecord] = []
        var takeover: UIOTakeover?
        var recordPath: String?
        var shutdownWatcher: KernelShutdownWatcher?
        var ptpMonitor: PTPMonitor?
    }

    func add(_ body: (inout Parts) -> Void) { lock.withLock(body) }

    /// The devices we moved to uio_hv_generic, kept in the runtime directory so that a run after
    /// a crash knows they are ours: it adopts them (userspace mode) or gives them back (kernel
    /// mode). One `INSTANCE DRIVER` line each.
    static func loadRecords(_ path: String) -> [String: String] {
        guard let bytes = try? readFile(path, limit: 64 * 1024) else { return [:] }
        var out: [String: String] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2 { out[String(parts[0])] = String(parts[1]) }
        }
        return out
    }

    static func saveRecords(_ records: [TakeoverRecord], to path: String) {
        let lines = records.compactMap { r in r.previousDriver.map { "\(r.instance) \($0)\n" } }.joined()
        if lines.isEmpty {
            try? removeFileIfPresent(path)
        } else {
            try? PathOps.writeFileDurably(path, Array(lines.utf8))
        }
    }

    /// Stops the channels first, then gives the devices back to hv_utils (the kernel answers the
    /// ICs again from then on), then the kernel-mode companions (waiting for running hooks).
    func stopAll() {
        let parts = lock.withLock { p -> Parts in
            defer { p = Parts() }; return p
        }
        for r in parts.runners.reversed() { r.stop() }
        if let takeover = parts.takeover {
            var kept: [TakeoverRecord] = []
            for record in parts.takeovers.reversed() {
                do { try takeover.release(record) } catch { kept.append(record) }
            }
            if let path = parts.recordPath { Self.saveRecords(kept, to: path) }
        }
        parts.shutdownWatcher?.stop()
        parts.ptpMonitor?.stop()
    }
}

extension Daemon {
    /// True when `name` should run: named on the command line, or none named.
    private func wants(_ name: ServiceName) -> Bool { options.services.isEmpty || options.services.contains(name) }

    /// Starts what the `[shutdown]`, `[timesync]` and `[heartbeat]` modes ask for. Failures are
    /// logged and shown in status; they never stop the other services.
    func startIntegrationComponents(environment env: ServiceEnvironment) {
        let config = configuration
        var icLogger = env.logger
        var userspace: [any ICService] = []
        if wants(.shutdown) {
            icLogger[metadataKey: LogField.service] = "shutdown"
            let hooks = ShutdownHooks(directory: config.shutdown.hooksDirectory, timeoutSeconds: config.shutdown.hookTimeoutSeconds)
            if config.shutdown.mode == .userspace {
                let root = env.deviceRoot
                userspace.append(
                    ShutdownService(
                        hooks: hooks, executor: SystemctlPowerExecutor(isEmulated: env.isEmulated, logger: icLogger),
                        inhibitorCheck: SystemdInhibitorCheck(), hibernationSupported: { hibernationSupported(deviceRoot: root) },
                        logger: icLogger))
            } else if config.shutdown.watchKernelLog {
                startShutdownWatcher(env: env, hooks: hooks, logger: icLogger)
            }
        }
        if wants(.timesync) {
            icLogger[metadataKey: LogField.service] = "timesync"
            if config.timeSync.mode == .userspace {
                var chrony: (any ChronySampleSink)?
                if config.timeSync.output == .chrony {
                    do { chrony = try ChronySocketWriter(path: config.timeSync.chronySocket) } catch {
                        icLogger.error("cannot create a socket for chronyd: \(error)")
                    }
                }
                userspace.append(
                    TimeSyncService(
                        configuration: config.timeSync, clock: makeGuestClock(deviceRoot: env.deviceRoot, logger: icLogger),
                        chrony: chrony, referenceCounter: env.isEmulated ? emulatedReferenceCounter : nil, logger: icLogger))
            } else {
                startPTPMonitor(env: env, logger: icLogger)
            }
        }
        if wants(.heartbeat) && config.heartbeat.mode == .userspace { userspace.append(HeartbeatService()) }

        let takeover = UIOTakeover(deviceRoot: env.deviceRoot)
        let recordPath = env.runtimeDirectory + "/ic-takeovers"
        let previous = IntegrationComponents.loadRecords(recordPath)
        if !previous.isEmpty {
            giveBackLeftovers(
                previous, keeping: userspace.map(\.classID), takeover: takeover, recordPath: recordPath, logger: env.logger)
        }
        guard !userspace.isEmpty else { return }
        integrationComponents.add {
            $0.takeover = takeover
            $0.recordPath = recordPath
        }
        var settings = ICChannelRunner.Settings()
        settings.initialBackoffMilliseconds = runnerSettings.initialBackoffMilliseconds
        settings.maximumBackoffMilliseconds = runnerSettings.maximumBackoffMilliseconds
        settings.devicePollMilliseconds = max(runnerSettings.devicePollMilliseconds, 20)
        for service in userspace {
            var log = env.logger
            log[metadataKey: LogField.service] = "\(service.name.rawValue)"
            do {
                var record = try takeover.take(classID: service.classID)
                if record.wasAlreadyBound, let driver = previous[record.instance] {
                    // Ours, from a run that crashed: give it back on stop as if we had just taken it.
                    record = TakeoverRecord(instance: record.instance, previousDriver: driver, wasAlreadyBound: false)
                    log.notice("\(record.instance) is still on uio_hv_generic from a previous run; adopting it")
                } else if !record.wasAlreadyBound {
                    log.notice("took \(record.instance) over from \(record.previousDriver ?? "no driver") to uio_hv_generic")
                }
                if !record.wasAlreadyBound {
                    let taken = record
                    let all = integrationComponents.lock.withLock { p -> [TakeoverRecord] in
                        p.takeovers.append(taken)
                        return p.takeovers
                    }
                    IntegrationComponents.saveRecords(all, to: recordPath)
                }
            } catch .deviceNotFound {
                // It may appear later (emulator started after us); the runner waits for it.
                log.info("no \(service.name.rawValue) device yet; waiting for it")
            } catch {
                log.error("cannot run \(service.name.rawValue) in userspace: \(error)")
                status.update(service.name) { $0.state = .error("\(error)") }
                continue
            }
            if let reporter = service as? any ServiceStatusReporting {
                statusReporters.withLock { $0[service.name] = reporter }
            }
            do {
                let runner = try ICChannelRunner(service: service, environment: env, status: status, settings: settings)
                try runner.start()
                integrationComponents.add { $0.runners.append(runner) }
            } catch {
                log.error("cannot start the \(service.name.rawValue) channel thread: \(error)")
            }
        }
    }

    /// Devices a crashed run left on uio_hv_generic whose IC is now in kernel mode: give them
    /// back to their driver, so the kernel answers the host again.
    private func giveBackLeftovers(
        _ records: [String: String], keeping classIDs: [String], takeover: UIOTakeover,
        recordPath: String, logger: Logger
    ) {
        let keptInstances = Set(classIDs.compactMap { takeover.findInstance(classID: $0) })
        var remaining: [TakeoverRecord] = []
        for (instance, driver) in records.sorted(by: { $0.key < $1.key }) {
            let record = TakeoverRecord(instance: instance, previousDriver: driver, wasAlreadyBound: false)
            if keptInstances.contains(instance) {
                remaining.append(record)
                continue
            }
            do {
                try takeover.release(record)
                logger.notice("gave \(instance) back to \(driver) (left on uio_hv_generic by a previous run)")
            } catch {
                logger.warning("could not give \(instance) back to \(driver): \(error)")
                remaining.append(record)
            }
        }
        IntegrationComponents.saveRecords(remaining, to: recordPath)
    }

    private func startShutdownWatcher(env: ServiceEnvironment, hooks: ShutdownHooks, logger: Logger) {
        let path = env.devicePath("dev/kmsg")
        guard fileKind(path) != .missing else {
            logger.debug("no \(path): host-initiated shutdowns will not run hooks")
            return
        }
        do {
            let watcher = try KernelShutdownWatcher(kernelLogPath: path, hooks: hooks, logger: logger)
            try watcher.start()
            integrationComponents.add { $0.shutdownWatcher = watcher }
        } catch {
            logger.warning("cannot watch \(path) for host shutdown requests: \(error)")
        }
    }

    private func startPTPMonitor(env: ServiceEnvironment, logger: Logger) {
        let source = HyperVPTPSource(deviceRoot: env.deviceRoot)
        guard source.deviceName != nil else {
            logger.debug("no Hyper-V PTP clock; not monitoring the host offset")
            return
        }
        let clock: (any GuestClock)? =
            configuration.timeSync.kernelDiscipline ? makeGuestClock(deviceRoot: env.deviceRoot, logger: logger) : nil
        do {
            let monitor = try PTPMonitor(
                source: source, configuration: configuration.timeSync, clock: clock, status: status,
                logger: logger)
            try monitor.start()
            integrationComponents.add { $0.ptpMonitor = monitor }
        } catch {
            logger.warning("cannot monitor the Hyper-V PTP clock: \(error)")
        }
    }
}
