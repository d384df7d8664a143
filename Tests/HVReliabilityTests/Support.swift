import Foundation
import HVEmulator
import HVSystem
import HVTesting
import Testing

/// The package root (tests find the fuzz corpus and the built daemon from here).
let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }  // Tests/HVReliabilityTests/Support.swift
    return url.path
}()

/// The real daemon, as CI builds it (`swift build --build-tests` builds every product).
func daemonBinary() throws -> String {
    let path = packageRoot + "/.build/debug/hvguestd"
    try #require(FileManager.default.isExecutableFile(atPath: path), "\(path) is missing: run `swift build` first")
    return path
}

/// Lists every file below `path` (relative names, sorted), symlinks not followed.
func tree(_ path: String) -> [String] {
    guard let e = FileManager.default.enumerator(atPath: path) else { return [] }
    return e.compactMap { $0 as? String }.sorted()
}

/// One real `hvguestd` process against an emulated host in `dir`: config file written from
/// `config`, state in `dir/state`, output in `dir/hvguestd-N.log`.
final class DaemonUnderTest: @unchecked Sendable {
    let dir: String
    let configFile: String
    let services: [String]
    private(set) var process: ChildProcess?
    private var starts = 0

    init(dir: String, config: String, services: [String]) throws {
        self.dir = dir
        self.services = services
        configFile = dir + "/hvguest.toml"
        try config.write(toFile: configFile, atomically: true, encoding: .utf8)
    }

    var stateDirectory: String { dir + "/state" }
    var runtimeDirectory: String { dir + "/state/run" }

    func start() throws {
        starts += 1
        process = try ChildProcess(
            executable: try daemonBinary(),
            arguments: ["--config", configFile, "--device-root", dir, "--state-dir", stateDirectory] + services,
            environment: ["PATH=/usr/bin:/bin", "SWIFT_BACKTRACE=enable=no"],
            outputFile: dir + "/hvguestd-\(starts).log")
    }

    /// SIGKILL and reap (our own child, by PID).
    func kill9() {
        guard let p = process else { return }
        p.signal(SIGKILL)
        p.wait(milliseconds: 10_000)
        process = nil
    }

    /// SIGTERM (the daemon thaws and cleans up), then SIGKILL if it hangs.
    @discardableResult
    func stop() -> Int32? {
        guard let p = process else { return nil }
        process = nil
        return p.terminate(graceMilliseconds: 10_000)
    }

    var log: String {
        (1...max(starts, 1)).compactMap { try? String(contentsOfFile: dir + "/hvguestd-\($0).log", encoding: .utf8) }
            .joined(separator: "\n")
    }

    deinit { stop() }
}

/// utime + stime of a process in clock ticks (/proc/PID/stat fields 14 and 15).
func cpuTicks(_ pid: pid_t) -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = text.lastIndex(of: ")")
    else { return nil }
    // Fields after "comm)": state is field 3, so utime (14) is index 11 here.
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let u = Int(fields[11]), let s = Int(fields[12]) else { return nil }
    return u + s
}

/// Runs a command, waits for it; its exit status.
@discardableResult
func run(_ args: [String]) throws -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    return p.terminationStatus
}

/// Deterministic bytes for copies.
func patternBytes(_ count: Int, seed: UInt8 = 7) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    var x: UInt32 = 2_463_534_242 ^ UInt32(seed)
    for i in 0..<count {
        x ^= x << 13
        x ^= x >> 17
        x ^= x << 5
        out[i] = UInt8(truncatingIfNeeded: x)
    }
    return out
}
