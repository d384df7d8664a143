import HVEmulator

/// Command line of hvguest-bench (kept dependency-free: a handful of `--key value` options).
struct BenchOptions {
    var scenario = ""
    var root = ""
    var label = "daemon"
    var param = ""
    var repetitions = 5
    var devices: Set<RelayKind> = []
    /// Bind a NOTIFY_SOCKET and wait for READY=1 (hvguestd).
    var notify = false
    /// LD_PRELOAD for the daemon (the vmbus shim for the Debian daemons).
    var preload: String?
    var command: [String] = []
    var settleMilliseconds = 1000
    var logEvents = true
    /// How long the daemon gets to exit after SIGTERM (profilers need longer to write out).
    var stopGraceMilliseconds = 5_000
    // fcopy
    /// Serve file copy on the UIO ring (`dev/uio0`) instead of the relay device.
    var fileCopyOverUIO = false
    var sizeBytes = 0
    var destination = ""
    // vss
    var mounts: [String] = []
    // kvp
    var keys = 10
    var pool: UInt8 = 0
    var operations = 1000
    /// Where to write the prepared pool file before the daemon starts.
    var poolFile = ""

    static func parse(_ args: [String]) throws(BenchError) -> BenchOptions {
        var o = BenchOptions()
        guard let first = args.first else { throw BenchError("usage: hvguest-bench SCENARIO --root DIR [options] [-- COMMAND...]") }
        o.scenario = first
        var i = 1
        func value() throws(BenchError) -> String {
            guard i + 1 < args.count else { throw BenchError("\(args[i]) needs a value") }
            i += 1
            return args[i]
        }
        func int() throws(BenchError) -> Int {
            let s = try value()
            guard let v = Int(s) else { throw BenchError("\(args[i - 1]): not an integer: \(s)") }
            return v
        }
        while i < args.count {
            switch args[i] {
            case "--root": o.root = try value()
            case "--label": o.label = try value()
            case "--param": o.param = try value()
            case "--reps": o.repetitions = try int()
            case "--devices":
                for name in try value().split(separator: ",") {
                    guard let k = RelayKind(rawValue: String(name)) else { throw BenchError("unknown device \(name)") }
                    o.devices.insert(k)
                }
            case "--notify": o.notify = true
            case "--preload": o.preload = try value()
            case "--settle-ms": o.settleMilliseconds = try int()
            case "--no-event-log": o.logEvents = false
            case "--stop-grace-ms": o.stopGraceMilliseconds = try int()
            case "--size": o.sizeBytes = try int()
            case "--uio": o.fileCopyOverUIO = true
            case "--dest": o.destination = try value()
            case "--mounts": o.mounts = try value().split(separator: ",").map(String.init)
            case "--keys": o.keys = try int()
            case "--pool":
                guard let p = UInt8(exactly: try int()), p <= 4 else { throw BenchError("--pool must be 0…4") }
                o.pool = p
            case "--ops": o.operations = try int()
            case "--pool-file": o.poolFile = try value()
            case "--":
                o.command = Array(args[(i + 1)...])
                i = args.count
                continue
            default: throw BenchError("unknown option \(args[i])")
            }
            i += 1
        }
        if o.root.isEmpty && !(o.scenario == "vss" && o.command.isEmpty) { throw BenchError("--root is required") }
        if o.scenario == "null-uio" { return o }
        if o.devices.isEmpty {
            switch o.scenario {
            case "fcopy": o.devices = [.fcopy]
            case "vss": o.devices = [.vss]
            case "kvp": o.devices = [.kvp]
            default: o.devices = Set(RelayKind.allCases)
            }
        }
        return o
    }
}
