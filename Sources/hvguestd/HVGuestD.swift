import ArgumentParser
import Glibc
import HVDaemon
import HVServiceKit
import HVSystem
import HVVSS
import Logging

extension ServiceName: ExpressibleByArgument {}

@main
struct HVGuestD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hvguestd",
        abstract: "Guest side of the Hyper-V integration services (KVP, VSS, file copy, …).",
        discussion: "See hvguestd(8) and hvguest.toml(5).",
        subcommands: [Run.self, ThawAll.self],
        defaultSubcommand: Run.self)
}

struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: "Configuration file (default /etc/hvguest/hvguest.toml; drop-ins in FILE.d/).")
    var config: String?

    @Option(name: .long, help: "Resolve device paths under DIR instead of / (emulated host).")
    var deviceRoot: String = "/"

    @Option(name: .long, help: "State directory instead of /var/lib/hyperv; runtime files go to DIR/run.")
    var stateDir: String?

    func options(services: [ServiceName] = []) -> DaemonOptions {
        DaemonOptions(configFile: config, deviceRoot: deviceRoot, stateDirectory: stateDir, services: services)
    }
}

/// Loads and validates the configuration, or exits 2 naming the file, line and key.
func loadConfiguration(_ options: DaemonOptions) throws -> DaemonConfiguration {
    do {
        return try DaemonConfiguration.load(options)
    } catch {
        writeToStandardError("hvguestd: configuration error: \(error)\n")
        throw ExitCode(2)
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the daemon (the default).")

    @OptionGroup var common: CommonOptions

    @Argument(help: "Services to run: kvp, fcopy, vss (shutdown, timesync, heartbeat: kernel mode only for now). Default: every service whose device exists.")
    var services: [ServiceName] = []

    func run() throws {
        let options = common.options(services: services)
        let config = try loadConfiguration(options)
        HVLogging.bootstrap(settings: config.settings)
        let logger = Logger(label: "hvguestd")
        let daemon = Daemon(options: options, configuration: config, logger: logger)
        let code = try daemon.runUntilSignalled(
            onReady: {
                logger.notice("hvguestd started (device root \(options.deviceRoot))")
                try? SystemdNotify.ready(status: "started: " + daemon.statusLine())
            },
            onStopping: { try? SystemdNotify.stopping(status: "stopping") })
        throw ExitCode(code)
    }
}

struct ThawAll: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "thaw-all",
        abstract: "Thaw every filesystem a crashed or killed hvguestd left frozen (ExecStopPost=).",
        discussion: "Reads the frozen record in the runtime directory (/run/hvguest/vss-frozen), thaws what it lists in reverse order, then runs the thaw hooks. Exits 0 when nothing is left frozen.")

    @OptionGroup var common: CommonOptions

    func run() throws {
        let options = common.options()
        // Even with a broken configuration file the safety net must work: hooks are optional.
        let config = try? DaemonConfiguration.load(options)
        let hooks = config.map { DirectoryHookRunner(directory: $0.vss.hooksDirectory, timeoutSeconds: $0.vss.hookTimeoutSeconds) }
        let report = VSSRecovery.thawAll(runtimeDirectory: options.resolvedRuntimeDirectory, hooks: hooks)
        if !report.hadRecord {
            print("thaw-all: nothing recorded as frozen")
            return
        }
        for m in report.thawed { print("thawed \(m)") }
        for m in report.notFrozen { print("not frozen: \(m)") }
        for f in report.failures { writeToStandardError("thaw-all: \(f)\n") }
        if !report.succeeded { throw ExitCode(1) }
    }
}
