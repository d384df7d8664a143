import ArgumentParser
import Glibc
import HVDaemon
import HVServiceKit
import HVSystem

@main
struct HVGuestCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hvguestctl",
        abstract: "Inspect and manage hvguestd, the Hyper-V guest services daemon.",
        discussion: "See hvguestctl(1), hvguestd(8) and hvguest.toml(5).",
        subcommands: [StatusCommand.self, ConfigCommand.self, KVPCommand.self])
}

/// Where the daemons' runtime files are: `/run/hvguest`, or `DIR/run` for `hvguestd --state-dir DIR`.
struct RuntimeLocation: ParsableArguments {
    @Option(name: .long, help: "The --state-dir given to hvguestd (its status sockets are in DIR/run).")
    var stateDir: String?

    @Option(name: .long, help: "Runtime directory holding the status sockets (default /run/hvguest).")
    var runtimeDir: String?

    var resolved: String {
        if let runtimeDir { return runtimeDir }
        return DaemonOptions(stateDirectory: stateDir).resolvedRuntimeDirectory
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show every service's channel state, versions, last request, counters and details.",
        discussion: """
            Asks each running hvguestd over its status socket in the runtime directory. \
            Exit status: 0 all services healthy (registered, or waiting for their device); \
            1 a service is in error or stopped, or a daemon does not answer; 2 no daemon reachable.
            """)

    @OptionGroup var location: RuntimeLocation

    @Flag(name: .long, help: "Print one JSON document (for scripts and monitoring).")
    var json = false

    @Option(name: .long, help: "How long to wait for each daemon, in milliseconds.")
    var timeout: Int32 = 2000

    func run() throws {
        let collection = StatusCollection.gather(runtimeDirectory: location.resolved, timeoutMilliseconds: timeout)
        if json {
            print(collection.json.serialized(pretty: true))
        } else {
            print(collection.table(), terminator: "")
        }
        let health = collection.health
        if health != .healthy { throw ExitCode(health.rawValue) }
    }
}

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Work with the configuration.", subcommands: [ConfigCheck.self])
}

struct ConfigCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate the configuration file and its drop-ins as hvguestd would read them.",
        discussion: "Exit status 0 when valid; 1 with the file, line and key of the first problem otherwise.")

    @Option(name: .long, help: "Configuration file (default /etc/hvguest/hvguest.toml; drop-ins in FILE.d/).")
    var config: String?

    @Flag(name: .shortAndLong, help: "Print nothing when the configuration is valid.")
    var quiet = false

    func run() throws {
        let options = DaemonOptions(configFile: config)
        do {
            let loaded = try DaemonConfiguration.load(options)
            if !quiet {
                let files = loaded.document.files
                print(files.isEmpty
                    ? "configuration OK: no file at \(options.resolvedConfigFile); every setting has its default"
                    : "configuration OK: " + files.joined(separator: ", "))
            }
        } catch {
            writeToStandardError("hvguestctl: \(error)\n")
            throw ExitCode(1)
        }
    }
}
