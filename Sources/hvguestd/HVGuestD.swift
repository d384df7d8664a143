import Glibc
import HVDaemon
import HVServiceKit
import HVSystem
import HVVSS
import Logging

// No argument-parsing library here (nor Foundation): the command line is parsed by
// `DaemonCommandLine` (HVDaemon, unit-tested); see hvguestd(8).

@main
enum HVGuestD {
    static func main() {
        switch DaemonCommandLine.parse(Array(CommandLine.arguments.dropFirst())) {
        case .failure(let usage):
            writeToStandardError(usage.text)
            exit(usage.exitCode)
        case .success(.help(let text)):
            print(text, terminator: "")
        case .success(.run(let options)):
            exit(run(options))
        case .success(.thawAll(let options)):
            exit(thawAll(options))
        }
    }

    /// Loads and validates the configuration, or nil after reporting it (exit status 2).
    static func loadConfiguration(_ options: DaemonOptions) -> DaemonConfiguration? {
        do {
            return try DaemonConfiguration.load(options)
        } catch {
            writeToStandardError("hvguestd: configuration error: \(error)\n")
            return nil
        }
    }

    /// Runs the daemon until SIGTERM or SIGINT; the process exit status.
    static func run(_ options: DaemonOptions) -> Int32 {
        guard let config = loadConfiguration(options) else { return 2 }
        let logLevel = HVLogging.bootstrap(settings: config.settings)
        let logger = Logger(label: "hvguestd")
        let daemon = Daemon(options: options, configuration: config, logger: logger)
        do {
            return try daemon.runUntilSignalled(
                onReady: {
                    logger.notice("hvguestd started (device root \(options.deviceRoot))")
                    try? SystemdNotify.ready(status: "started: " + daemon.statusLine())
                },
                onStopping: { try? SystemdNotify.stopping(status: "stopping") },
                onReload: { reload(options, logLevel: logLevel, logger: logger) })
        } catch {
            writeToStandardError("hvguestd: \(error)\n")
            return 1
        }
    }

    /// SIGHUP (`systemctl reload`): re-reads and validates the configuration and applies
    /// `[log] level` to every logger; everything else takes effect at the next start. A
    /// configuration that does not load changes nothing.
    static func reload(_ options: DaemonOptions, logLevel: LogLevelSetting, logger: Logger) {
        do {
            let fresh = try DaemonConfiguration.load(options)
            let old = logLevel.level
            let new = fresh.settings.logLevel
            // Said under the more verbose of the two levels, so that it reaches the log if either does.
            if new < old { logLevel.set(new) }
            logger.notice("SIGHUP: configuration re-read; log level \(old) → \(new); other settings take effect at the next restart")
            if new >= old { logLevel.set(new) }
        } catch {
            logger.error("SIGHUP: configuration not reloaded, the running one stays: \(error)")
        }
    }

    /// Thaws what a crashed or killed daemon left frozen; 0 when nothing is left frozen.
    static func thawAll(_ options: DaemonOptions) -> Int32 {
        // Even with a broken configuration file the safety net must work: hooks are optional.
        let config = try? DaemonConfiguration.load(options)
        let hooks = config.map { DirectoryHookRunner(directory: $0.vss.hooksDirectory, timeoutSeconds: $0.vss.hookTimeoutSeconds) }
        let report = VSSRecovery.thawAll(runtimeDirectory: options.resolvedRuntimeDirectory, hooks: hooks)
        if !report.hadRecord {
            print("thaw-all: nothing recorded as frozen")
            return 0
        }
        for m in report.thawed { print("thawed \(m)") }
        for m in report.notFrozen { print("not frozen: \(m)") }
        for f in report.failures { writeToStandardError("thaw-all: \(f)\n") }
        return report.succeeded ? 0 : 1
    }
}
