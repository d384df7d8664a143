import Glibc
import HVEmulator
import HVSystem
import HVWire

/// hvguest-bench: drives one daemon (hvguestd, a Debian hyperv-daemons binary through the
/// LD_PRELOAD shim, or the null responder) through the emulated host and prints one JSON line
/// per measurement. `bench/run` orchestrates it; see bench/README in the top-level README.
///
///     hvguest-bench SCENARIO --root DIR --label NAME [options] [-- COMMAND ARG...]
///
/// Scenarios: `startup` (exec → registration/READY, idle RSS), `fcopy`, `vss`, `kvp`.
/// Without a COMMAND, `vss` measures the raw FIFREEZE/FITHAW floor.
@main
struct Bench {
    static func main() async {
        // A closed stdout (`| head`) must not kill the driver before it stops its daemon.
        signal(SIGPIPE, SIG_IGN)
        do {
            let options = try BenchOptions.parse(Array(CommandLine.arguments.dropFirst()))
            try await run(options)
        } catch {
            writeToStandardError("hvguest-bench: \(error)\n")
            exit(1)
        }
    }

    static func run(_ o: BenchOptions) async throws {
        if o.scenario == "null-uio" {
            try NullUIOResponder.run(root: o.root)
            return
        }
        if o.scenario == "vss" && o.command.isEmpty {
            try VSSFloor.measure(o)
            return
        }
        let registered = Locked<[RelayKind: UInt64]>([:])
        let host = try EmulatedHost(root: o.root, devices: o.devices, fileCopyTransport: o.fileCopyOverUIO ? .uio : .relay,
                                    logEvents: o.logEvents) { event in
            if case .registered(let kind, _) = event {
                let now = monotonicNanoseconds()
                registered.withLock { if $0[kind] == nil { $0[kind] = now } }
            }
        }
        try host.start()
        defer { host.stop() }
        if o.scenario == "kvp" { try KVPScenario.preparePool(o) }

        let daemon = try DaemonUnderTest(o)
        defer { daemon.stop() }
        if let uio = host.fcopy.uio {
            guard await uio.waitUntilReady(timeout: .seconds(20)) else {
                throw BenchError("\(o.label) did not open and negotiate the fcopy UIO channel within 20 s")
            }
            let now = monotonicNanoseconds()
            registered.withLock { $0[.fcopy] = now }
        }
        guard await host.waitForAllRegistered(timeout: .seconds(20)) else {
            throw BenchError("\(o.label) did not register on \(o.devices.map(\.rawValue).sorted()) within 20 s")
        }
        let ready = daemon.waitForReady(timeoutMilliseconds: 20_000)

        switch o.scenario {
        case "startup":
            let lastRegistration = registered.withLock { $0.values.max() ?? 0 }
            let readyAt = ready ?? lastRegistration
            sleepMilliseconds(o.settleMilliseconds)
            let (rss, _) = daemon.memoryKiB()
            emit(o, metric: "startup_ms", unit: "ms", values: [Double(readyAt &- daemon.spawnedAt) / 1e6])
            emit(o, metric: "registered_ms", unit: "ms", values: [Double(lastRegistration &- daemon.spawnedAt) / 1e6])
            emit(o, metric: "idle_rss_kib", unit: "KiB", values: [Double(rss)])
        case "fcopy":
            try await FileCopyScenario.run(o, host: host, daemon: daemon)
        case "vss":
            try await VSSScenario.run(o, host: host, daemon: daemon)
        case "kvp":
            try await KVPScenario.run(o, host: host, daemon: daemon)
        default:
            throw BenchError("unknown scenario \(o.scenario)")
        }
        if !daemon.isRunning { throw BenchError("\(o.label) exited during the run") }
        let violations = host.devices.flatMap(\.violations)
        if !violations.isEmpty { throw BenchError("protocol violations: \(violations)") }
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Prints one result line: `{"scenario":…,"daemon":…,"param":…,"metric":…,"unit":…,"values":[…],
/// "min":…,"median":…,"max":…}`.
func emit(_ o: BenchOptions, metric: String, unit: String, values: [Double], param: String? = nil) {
    let sorted = values.sorted()
    let median: Double
    if sorted.isEmpty {
        median = .nan
    } else if sorted.count % 2 == 1 {
        median = sorted[sorted.count / 2]
    } else {
        median = (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
    func num(_ v: Double) -> String { v.isFinite ? String(v) : "null" }
    let p = param ?? o.param
    let line = "{\"scenario\":\"\(o.scenario)\",\"daemon\":\"\(o.label)\",\"param\":\"\(p)\",\"metric\":\"\(metric)\","
        + "\"unit\":\"\(unit)\",\"values\":[\(values.map(num).joined(separator: ","))],"
        + "\"min\":\(num(sorted.first ?? .nan)),\"median\":\(num(median)),\"max\":\(num(sorted.last ?? .nan))}"
    // Straight to fd 1, one write per line: results survive a crash of a later run.
    var text = line + "\n"
    text.withUTF8 { _ = write(1, $0.baseAddress, $0.count) }
}

func writeToStandardError(_ s: String) {
    var s = s
    s.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
