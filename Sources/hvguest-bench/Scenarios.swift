import Glibc
import HVEmulator
import HVSystem
import HVWire

/// File copy: MB/s (10^6 bytes per second) of whole `Copy-VMFile` jobs, and daemon CPU per GiB.
enum FileCopyScenario {
    static func run(_ o: BenchOptions, host: EmulatedHost, daemon: DaemonUnderTest) async throws {
        guard o.sizeBytes > 0, !o.destination.isEmpty else { throw BenchError("fcopy needs --size and --dest") }
        // A pattern rather than zeros, so no layer can take a zero-page shortcut.
        var data = [UInt8](repeating: 0, count: o.sizeBytes)
        data.withUnsafeMutableBufferPointer { b in
            for i in stride(from: 0, to: b.count, by: 64) { b[i] = UInt8(truncatingIfNeeded: i &>> 6) }
        }
        var rates: [Double] = []
        var cpuPerGiB: [Double] = []
        for rep in 0..<o.repetitions {
            let name = "hvbench-\(rep).bin"
            let cpu0 = daemon.cpuNanoseconds()
            let job = await host.fcopy.copy(data, toDirectory: o.destination, name: name, overwrite: true)
            let cpu1 = daemon.cpuNanoseconds()
            guard job.state == .completed, job.microseconds > 0 else { throw BenchError("copy failed: \(job)") }
            rates.append(Double(o.sizeBytes) / Double(job.microseconds))
            cpuPerGiB.append(Double(cpu1 &- cpu0) / 1e9 * Double(1 << 30) / Double(o.sizeBytes))
            unlink(o.destination + "/" + name)
        }
        let (_, peak) = daemon.memoryKiB()
        emit(o, metric: "throughput", unit: "MB/s", values: rates)
        emit(o, metric: "cpu_s_per_gib", unit: "s/GiB", values: cpuPerGiB)
        emit(o, metric: "peak_rss_kib", unit: "KiB", values: [Double(peak)])
    }
}

/// VSS: the freeze window the host sees (FREEZE sent → THAW answered, no hold).
enum VSSScenario {
    static func run(_ o: BenchOptions, host: EmulatedHost, daemon: DaemonUnderTest) async throws {
        // hvguestd only freezes its allow-list, but check anyway that what we ask it to freeze is ours.
        try SafeMounts.check(o.mounts)
        // One untimed round: the first freeze also writes back whatever mkfs left dirty.
        let warm = await host.vss.backup(hold: .zero)
        guard warm.succeeded else { throw BenchError("warm-up backup failed: \(warm)") }
        var windows: [Double] = []
        var freezes: [Double] = []
        for _ in 0..<o.repetitions {
            let r = await host.vss.backup(hold: .zero)
            guard r.succeeded else { throw BenchError("backup failed: \(r)") }
            windows.append(Double(r.totalMicroseconds) / 1000)
            freezes.append(Double(r.freezeMicroseconds) / 1000)
        }
        emit(o, metric: "freeze_window_ms", unit: "ms", values: windows)
        emit(o, metric: "freeze_rtt_ms", unit: "ms", values: freezes)
        emit(o, metric: "verified_frozen", unit: "bool", values: [await probeFrozen(o, host: host) ? 1 : 0])
    }

    /// Proof that the daemon really froze: between FREEZE and THAW (100 ms apart) a mkdir on the
    /// first filesystem must block until the thaw.
    static func probeFrozen(_ o: BenchOptions, host: EmulatedHost) async -> Bool {
        let dir = o.mounts[0] + "/hvbench-probe"
        let f = await host.vss.freeze()
        guard f.isSuccess else { return false }
        let started = monotonicNanoseconds()
        let finished = Locked<UInt64>(0)
        let thread = try? OSThread(name: "probe") {
            mkdir(dir, 0o755)
            finished.withLock { $0 = monotonicNanoseconds() }
        }
        try? await Task.sleep(for: .milliseconds(100))
        _ = await host.vss.thaw()
        thread?.join()
        rmdir(dir)
        return finished.withLock { $0 } &- started >= 80_000_000
    }
}

/// The floor: FIFREEZE every filesystem then FITHAW them in reverse, straight from this process.
enum VSSFloor {
    static func measure(_ o: BenchOptions) throws {
        try SafeMounts.check(o.mounts)
        func once() throws -> Double {
            let t0 = monotonicNanoseconds()
            var frozen: [String] = []
            defer { for m in frozen.reversed() { _ = try? FilesystemFreeze.thaw(m) } }
            for m in o.mounts {
                _ = try FilesystemFreeze.freeze(m)
                frozen.append(m)
            }
            for m in frozen.reversed() { _ = try FilesystemFreeze.thaw(m) }
            frozen = []
            return Double(monotonicNanoseconds() &- t0) / 1e6
        }
        _ = try once()
        var windows: [Double] = []
        for _ in 0..<o.repetitions { windows.append(try once()) }
        emit(o, metric: "freeze_window_ms", unit: "ms", values: windows)
    }
}

/// Refuses to freeze anything but loop or zram filesystems mounted under a bench temp dir.
enum SafeMounts {
    static func check(_ mounts: [String]) throws {
        guard !mounts.isEmpty else { throw BenchError("no --mounts given") }
        let info = String(decoding: try readFile("/proc/self/mountinfo"), as: UTF8.self)
        var sources: [String: String] = [:]
        for line in info.split(separator: "\n") {
            let halves = line.split(separator: " - ", maxSplits: 1)
            guard halves.count == 2 else { continue }
            let left = halves[0].split(separator: " ")
            let right = halves[1].split(separator: " ")
            guard left.count >= 5, right.count >= 2 else { continue }
            sources[String(left[4])] = String(right[1])
        }
        for m in mounts {
            guard m.contains("hvbench"), let src = sources[m], src.hasPrefix("/dev/loop") || src.hasPrefix("/dev/zram") else {
                throw BenchError("refusing to freeze \(m): not a loop/zram filesystem under a hvbench temp dir (source \(sources[m] ?? "none"))")
            }
        }
    }
}

/// KVP: ops/s of SET (insert), GET, ENUMERATE (one index) and DELETE with the pool holding
/// `keys` items. The pool file is written before the daemon starts (the format is the
/// kernel's `struct kvp_record` array, shared by both daemons), so no daemon pays O(N²) to fill it.
enum KVPScenario {
    static let keySize = KVPLayout.maxKeySize
    static let valueSize = KVPLayout.maxValueSize

    static func key(_ i: Int) -> String { "hvbench-key-\(i)" }
    static func value(_ i: Int) -> String { "value-\(i)-" + String(repeating: "v", count: 32) }

    static func preparePool(_ o: BenchOptions) throws {
        guard !o.poolFile.isEmpty else { throw BenchError("kvp needs --pool-file") }
        if let slash = o.poolFile.lastIndex(of: "/") { try makeDirectories(String(o.poolFile[..<slash])) }
        var bytes = [UInt8](repeating: 0, count: o.keys * (keySize + valueSize))
        for i in 0..<o.keys {
            let base = i * (keySize + valueSize)
            for (j, b) in key(i).utf8.enumerated() { bytes[base + j] = b }
            for (j, b) in value(i).utf8.enumerated() { bytes[base + keySize + j] = b }
        }
        let fd = open(o.poolFile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BenchError("open \(o.poolFile): errno \(errno)") }
        defer { close(fd) }
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else { throw BenchError("short write to \(o.poolFile)") }
    }

    static func run(_ o: BenchOptions, host: EmulatedHost, daemon: DaemonUnderTest) async throws {
        guard let pool = KVPPool(rawValue: o.pool) else { throw BenchError("bad pool") }
        let n = o.keys
        let k = o.operations
        // Check the daemon really sees the prepared pool: ENUMERATE of the last index returns the
        // last key. (Not GET: the kernel reads a GET value 4 bytes off, PROTOCOL §6.3 K1, and the
        // reference daemon's value depends on that.)
        let (st, item) = await host.kvp.item(pool: pool.rawValue, index: UInt32(n - 1))
        guard st.isSuccess, item?.key == key(n - 1) || o.label == "null" else {
            throw BenchError("\(o.label) does not see the prepared pool: ENUMERATE \(n - 1) → \(st) \(item?.description ?? "nil")")
        }
        let (rss0, _) = daemon.memoryKiB()
        var sets: [Double] = [], gets: [Double] = [], enums: [Double] = [], dels: [Double] = [], cpu: [Double] = []
        for _ in 0..<o.repetitions {
            let cpu0 = daemon.cpuNanoseconds()
            var t = monotonicNanoseconds()
            for i in 0..<k {
                let (s, _) = await host.kvp.get(pool: pool, key: key(i % n))
                guard s.isSuccess else { throw BenchError("GET failed: \(s)") }
            }
            gets.append(Double(k) * 1e9 / Double(monotonicNanoseconds() &- t))
            t = monotonicNanoseconds()
            for i in 0..<k {
                let (s, _) = await host.kvp.item(pool: pool.rawValue, index: UInt32(i % n))
                guard s.isSuccess else { throw BenchError("ENUMERATE failed: \(s)") }
            }
            enums.append(Double(k) * 1e9 / Double(monotonicNanoseconds() &- t))
            // DELETE then SET the same keys back, in rounds, so the pool keeps n items.
            var delNs: UInt64 = 0, setNs: UInt64 = 0, done = 0
            while done < k {
                let m = min(n, k - done)
                t = monotonicNanoseconds()
                for i in 0..<m {
                    let s = await host.kvp.delete(pool: pool, key: key(i))
                    guard s.isSuccess else { throw BenchError("DELETE failed: \(s)") }
                }
                delNs &+= monotonicNanoseconds() &- t
                t = monotonicNanoseconds()
                for i in 0..<m {
                    let s = await host.kvp.set(pool: pool, key: key(i), value: value(i))
                    guard s.isSuccess else { throw BenchError("SET failed: \(s)") }
                }
                setNs &+= monotonicNanoseconds() &- t
                done += m
            }
            dels.append(Double(k) * 1e9 / Double(delNs))
            sets.append(Double(k) * 1e9 / Double(setNs))
            cpu.append(Double(daemon.cpuNanoseconds() &- cpu0) / 1e9 * 10_000 / Double(4 * k))
        }
        let (_, peak) = daemon.memoryKiB()
        emit(o, metric: "set_ops", unit: "ops/s", values: sets)
        emit(o, metric: "get_ops", unit: "ops/s", values: gets)
        emit(o, metric: "enumerate_ops", unit: "ops/s", values: enums)
        emit(o, metric: "delete_ops", unit: "ops/s", values: dels)
        emit(o, metric: "cpu_s_per_10k", unit: "s/10k req", values: cpu)
        emit(o, metric: "loaded_rss_kib", unit: "KiB", values: [Double(rss0)])
        emit(o, metric: "peak_rss_kib", unit: "KiB", values: [Double(peak)])
    }
}
