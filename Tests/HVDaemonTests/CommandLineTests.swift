import HVServiceKit
import Testing

@testable import HVDaemon

private func parsed(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) -> DaemonCommand? {
    switch DaemonCommandLine.parse(args) {
    case .success(let c): return c
    case .failure(let e):
        Issue.record("\(args) refused: \(e.text)", sourceLocation: sourceLocation)
        return nil
    }
}

private func refused(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) -> DaemonUsageError? {
    switch DaemonCommandLine.parse(args) {
    case .success(let c):
        Issue.record("\(args) accepted: \(c)", sourceLocation: sourceLocation)
        return nil
    case .failure(let e): return e
    }
}

@Suite struct DaemonCommandLineTests {
    @Test func noArgumentsRunsEveryServiceWithDefaults() {
        #expect(parsed([]) == .run(DaemonOptions()))
        #expect(parsed(["run"]) == .run(DaemonOptions()))
        #expect(DaemonOptions().deviceRoot == "/")
    }

    @Test func optionsAndServicesInAnyOrder() {
        let expected = DaemonOptions(configFile: "/etc/x.toml", deviceRoot: "/emu", stateDirectory: "/st", services: [.kvp, .vss])
        #expect(parsed(["--config", "/etc/x.toml", "--device-root", "/emu", "--state-dir", "/st", "kvp", "vss"]) == .run(expected))
        #expect(parsed(["run", "kvp", "--config=/etc/x.toml", "vss", "--device-root=/emu", "--state-dir", "/st"]) == .run(expected))
        // systemd: ExecStart=hvguestd $HVGUEST_OPTIONS kvp
        #expect(parsed(["--config", "/c.toml", "kvp"]) == .run(DaemonOptions(configFile: "/c.toml", services: [.kvp])))
        // The last of a repeated option wins; a service named twice runs once.
        #expect(parsed(["--config", "/a", "--config", "/b", "kvp", "kvp"]) == .run(DaemonOptions(configFile: "/b", services: [.kvp])))
        // Every service name is its ServiceName raw value.
        let all = ServiceName.allCases.map(\.rawValue)
        #expect(parsed(all) == .run(DaemonOptions(services: ServiceName.allCases)))
        // `--` ends the options; `=` inside a value is kept.
        #expect(parsed(["--config=/a=b", "--", "fcopy"]) == .run(DaemonOptions(configFile: "/a=b", services: [.fcopy])))
    }

    @Test func thawAllTakesTheSameOptions() {
        // systemd: ExecStopPost=hvguestd thaw-all $HVGUEST_OPTIONS
        #expect(parsed(["thaw-all"]) == .thawAll(DaemonOptions()))
        #expect(parsed(["thaw-all", "--config", "/c", "--device-root=/r", "--state-dir", "/s"])
            == .thawAll(DaemonOptions(configFile: "/c", deviceRoot: "/r", stateDirectory: "/s")))
        let e = refused(["thaw-all", "kvp"])
        #expect(e?.message == "unexpected argument 'kvp' (thaw-all takes no service names)")
        #expect(e?.usage == "Usage: hvguestd thaw-all [--config FILE] [--device-root DIR] [--state-dir DIR]")
    }

    @Test func helpForEachCommand() {
        for args in [["--help"], ["-h"], ["help"], ["--config", "/x", "-h"]] {
            #expect(parsed(args) == .help(DaemonCommandLine.topHelp), "\(args)")
        }
        for args in [["run", "--help"], ["run", "-h"], ["help", "run"], ["run", "kvp", "-h"]] {
            #expect(parsed(args) == .help(DaemonCommandLine.runHelp), "\(args)")
        }
        for args in [["thaw-all", "--help"], ["thaw-all", "-h"], ["help", "thaw-all"]] {
            #expect(parsed(args) == .help(DaemonCommandLine.thawAllHelp), "\(args)")
        }
        #expect(refused(["help", "nope"])?.message.contains("unknown command 'nope'") == true)
        // The texts name what hvguestd(8) documents.
        for text in [DaemonCommandLine.topHelp, DaemonCommandLine.runHelp] {
            for word in ["--config FILE", "--device-root DIR", "--state-dir DIR", "-h, --help", "kvp, fcopy, vss, shutdown, timesync, heartbeat"] {
                #expect(text.contains(word), "\(word)")
            }
        }
        #expect(DaemonCommandLine.topHelp.contains("thaw-all"))
        #expect(DaemonCommandLine.thawAllHelp.contains("/run/hvguest/vss-frozen"))
        #expect(!DaemonCommandLine.thawAllHelp.contains("SERVICE"))
    }

    @Test func usageErrorsNameTheProblemAndExit64() {
        let unknown = refused(["--bogus"])
        #expect(unknown?.message == "unknown option '--bogus'")
        #expect(unknown?.exitCode == 64)
        #expect(unknown?.text == """
            hvguestd: unknown option '--bogus'
            Usage: hvguestd [run] [--config FILE] [--device-root DIR] [--state-dir DIR] [SERVICE...]
              See 'hvguestd --help' for more information.

            """)
        #expect(refused(["--version"])?.message == "unknown option '--version'")
        #expect(refused(["-x"])?.message == "unknown option '-x'")
        #expect(refused(["--bogus=1"])?.message == "unknown option '--bogus'")
        #expect(refused(["--config"])?.message == "missing value for '--config FILE'")
        #expect(refused(["kvp", "--config"])?.message == "missing value for '--config FILE'")
        #expect(refused(["--config="])?.message == "missing value for '--config FILE'")
        #expect(refused(["--state-dir", "--config", "/x"])?.message == "missing value for '--state-dir DIR'")
        #expect(refused(["thaw-all", "--device-root"])?.message == "missing value for '--device-root DIR'")
        let service = refused(["kvp", "nosuch"])
        #expect(service?.message == "unknown service 'nosuch' (services: kvp, fcopy, vss, shutdown, timesync, heartbeat)")
        // A command word is only a command in the first place.
        #expect(refused(["kvp", "thaw-all"])?.message.hasPrefix("unknown service 'thaw-all'") == true)
        #expect(refused(["--", "--config"])?.message.hasPrefix("unknown service '--config'") == true)
    }
}
