import HVServiceKit

/// What `hvguestd`'s arguments ask for.
public enum DaemonCommand: Equatable, Sendable {
    /// `hvguestd [run] [options] [SERVICE...]`
    case run(DaemonOptions)
    /// `hvguestd thaw-all [options]`
    case thawAll(DaemonOptions)
    /// `--help`, `-h` or `help [COMMAND]`: print the text (to stdout) and exit 0.
    case help(String)
}

/// A command line `hvguestd` cannot follow: print `text` to stderr and exit `exitCode`.
public struct DaemonUsageError: Error, Equatable, Sendable {
    public let message: String
    /// The usage line of the command the error belongs to.
    public let usage: String
    /// EX_USAGE, as sysexits.h defines it (and as swift-argument-parser used before).
    public let exitCode: Int32 = 64

    /// What the operator sees: the problem, the usage line and where to find more.
    public var text: String {
        "hvguestd: \(message)\n\(usage)\n  See 'hvguestd --help' for more information.\n"
    }
}

/// `hvguestd`'s command line: a pure function of the arguments (no I/O), so that the daemon
/// needs no argument-parsing library (and no Foundation).
///
/// Options may come before, between or after the service names, as `--config FILE` or
/// `--config=FILE`; `--` ends the options. `run` or `thaw-all` must be the first argument
/// (`run` is the default).
public enum DaemonCommandLine {
    /// Parses the arguments after the program name.
    public static func parse(_ arguments: [String]) -> Result<DaemonCommand, DaemonUsageError> {
        var args = arguments[...]
        var thawAll = false
        var commandNamed = false
        switch args.first {
        case "run":
            commandNamed = true
            args = args.dropFirst()
        case "thaw-all":
            thawAll = true
            commandNamed = true
            args = args.dropFirst()
        case "help":
            // `hvguestd help [run|thaw-all]`, as swift-argument-parser offered.
            let rest = Array(args.dropFirst())
            switch rest {
            case []: return .success(.help(topHelp))
            case ["run"]: return .success(.help(runHelp))
            case ["thaw-all"]: return .success(.help(thawAllHelp))
            default:
                return .failure(DaemonUsageError(message: "unknown command '\(rest.joined(separator: " "))' for help (commands: run, thaw-all)", usage: topUsage))
            }
        default:
            break
        }
        let usage = thawAll ? thawAllUsage : runUsage
        func failure(_ message: String) -> Result<DaemonCommand, DaemonUsageError> {
            .failure(DaemonUsageError(message: message, usage: usage))
        }

        var options = DaemonOptions()
        var serviceNames: [String] = []
        var optionsEnded = false
        var wantsHelp = false
        while let arg = args.popFirst() {
            if optionsEnded || !arg.hasPrefix("-") || arg == "-" {
                serviceNames.append(arg)
                continue
            }
            if arg == "--" {
                optionsEnded = true
                continue
            }
            if arg == "--help" || arg == "-h" {
                wantsHelp = true
                continue
            }
            // --name VALUE or --name=VALUE
            var name = arg
            var value: String? = nil
            if let eq = arg.firstIndex(of: "=") {
                name = String(arg[..<eq])
                value = String(arg[arg.index(after: eq)...])
            }
            guard ["--config", "--device-root", "--state-dir"].contains(name) else {
                return failure("unknown option '\(name)'")
            }
            if value == nil, let next = args.first, !next.hasPrefix("-") {
                value = next
                args = args.dropFirst()
            }
            guard let value, !value.isEmpty else {
                return failure("missing value for '\(name) \(name == "--config" ? "FILE" : "DIR")'")
            }
            switch name {
            case "--config": options.configFile = value
            case "--device-root": options.deviceRoot = value
            default: options.stateDirectory = value
            }
        }
        if wantsHelp { return .success(.help(!commandNamed ? topHelp : thawAll ? thawAllHelp : runHelp)) }
        if thawAll {
            if let extra = serviceNames.first { return failure("unexpected argument '\(extra)' (thaw-all takes no service names)") }
            return .success(.thawAll(options))
        }
        for name in serviceNames {
            guard let service = ServiceName(rawValue: name) else {
                let known = ServiceName.allCases.map(\.rawValue).joined(separator: ", ")
                return failure("unknown service '\(name)' (services: \(known))")
            }
            if !options.services.contains(service) { options.services.append(service) }
        }
        return .success(.run(options))
    }

    // MARK: Help texts (hvguestd(8) has the whole story)

    static let optionsUsage = "[--config FILE] [--device-root DIR] [--state-dir DIR]"
    static let topUsage = "Usage: hvguestd [run] \(optionsUsage) [SERVICE...]\n       hvguestd thaw-all \(optionsUsage)"
    static let runUsage = "Usage: hvguestd [run] \(optionsUsage) [SERVICE...]"
    static let thawAllUsage = "Usage: hvguestd thaw-all \(optionsUsage)"

    static let optionsHelp = """
        OPTIONS:
          --config FILE           Configuration file (default /etc/hvguest/hvguest.toml;
                                  drop-ins in FILE.d/).
          --device-root DIR       Resolve device paths under DIR instead of / (emulated
                                  host). (default: /)
          --state-dir DIR         State directory instead of /var/lib/hyperv; runtime
                                  files go to DIR/run.
          -h, --help              Show help information.
        """

    static let servicesHelp = """
        ARGUMENTS:
          SERVICE                 Services to run: kvp, fcopy, vss (shutdown, timesync,
                                  heartbeat: kernel mode only for now). Default: every
                                  service whose device exists.
                                  (values: \(ServiceName.allCases.map(\.rawValue).joined(separator: ", ")))
        """

    public static let topHelp = """
        OVERVIEW: Guest side of the Hyper-V integration services (KVP, VSS, file copy, …).

        See hvguestd(8) and hvguest.toml(5).

        \(topUsage)

        COMMANDS:
          run (default)           Run the daemon (the default).
          thaw-all                Thaw every filesystem a crashed or killed hvguestd
                                  left frozen (ExecStopPost=).

        \(servicesHelp)

        \(optionsHelp)

          See 'hvguestd help COMMAND' or 'hvguestd COMMAND --help' for detailed help.

        """

    public static let runHelp = """
        OVERVIEW: Run the daemon (the default).

        \(runUsage)

        \(servicesHelp)

        \(optionsHelp)

        """

    public static let thawAllHelp = """
        OVERVIEW: Thaw every filesystem a crashed or killed hvguestd left frozen
        (ExecStopPost=).

        Reads the frozen record in the runtime directory (/run/hvguest/vss-frozen),
        thaws what it lists in reverse order, then runs the thaw hooks. Exits 0 when
        nothing is left frozen.

        \(thawAllUsage)

        \(optionsHelp)

        """
}
