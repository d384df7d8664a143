import HVSystem

/// One fuzz target: a body that feeds bytes from outside to the daemon's own decoders and
/// checks invariants. The libFuzzer driver (`Fuzz/Driver`) traps on a returned failure; the
/// corpus replay test (`HVReliabilityTests`) records it as a test failure. Bodies never trap on
/// their own: any trap is a bug in the code under test.
public struct FuzzTarget: Sendable {
    public let name: String
    /// What the target feeds (for docs and `--list`).
    public let summary: String
    /// Runs one input; nil when every invariant held, else what broke.
    public let body: @Sendable ([UInt8]) -> String?
    /// Valid or interesting starting inputs (also written to `Fuzz/corpus/<name>/`).
    public let seeds: @Sendable () -> [[UInt8]]

    public init(name: String, summary: String, seeds: @escaping @Sendable () -> [[UInt8]],
                body: @escaping @Sendable ([UInt8]) -> String?) {
        self.name = name
        self.summary = summary
        self.body = body
        self.seeds = seeds
    }
}

/// Every fuzz target, by name.
public enum FuzzTargets {
    public static let all: [FuzzTarget] = wireTargets + ringTargets + parserTargets + serviceTargets + kvpTargets

    public static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }
}

/// Splits an input into a sequence of messages: each is a 16-bit little-endian length (masked
/// to 0…8191, enough for every relay message) followed by that many bytes (fewer at the end).
/// Lets one input drive a conversation (START, WRITE…, COMPLETE) through a service.
public func splitMessages(_ data: [UInt8], maximumCount: Int = 64) -> [[UInt8]] {
    var out: [[UInt8]] = []
    var i = 0
    while i + 2 <= data.count && out.count < maximumCount {
        let n = (Int(data[i]) | Int(data[i + 1]) << 8) & 0x1FFF
        i += 2
        let end = min(data.count, i + n)
        out.append(Array(data[i..<end]))
        i = end
    }
    return out
}

/// The inverse of `splitMessages` (seeds are built with it).
public func joinMessages(_ messages: [[UInt8]]) -> [UInt8] {
    var out: [UInt8] = []
    for m in messages {
        let n = min(m.count, 0x1FFF)
        out.append(UInt8(n & 0xFF))
        out.append(UInt8(n >> 8))
        out.append(contentsOf: m.prefix(n))
    }
    return out
}

/// A scratch directory shared by the service targets of one process (created on first use,
/// below /tmp; the fuzz run and the test remove it — see `FuzzScratch.remove`).
public enum FuzzScratch {
    private static let made = Locked<String?>(nil)

    public static var path: String {
        made.withLock { p in
            if let p { return p }
            // HVFUZZ_SCRATCH: the prefix Fuzz/run removes afterwards.
            let prefix = (environment("HVFUZZ_SCRATCH") ?? "/tmp/hvguest-fuzz") + "-"
            let dir = (try? makeTemporaryDirectory(prefix: prefix)) ?? prefix + "unavailable"
            p = dir
            return dir
        }
    }

    /// Removes the scratch directory (call at exit of a replay).
    public static func remove() {
        made.withLock { p in
            if let dir = p { removeTree(dir) }
            p = nil
        }
    }
}
