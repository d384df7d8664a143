import Foundation
import HVSystem
import HVServiceKit
import Logging

@testable import HVVSS

enum FileManagerShim {
    /// Reads the whole file. Not `FileManager.contents(atPath:)`: on procfs files (size 0) it
    /// returns only the first 4 KiB, so a long /proc/self/mountinfo lost our own mounts.
    static func read(_ path: String) -> String? {
        guard let bytes = try? readFile(path, limit: 64 << 20) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A temporary directory removed on `cleanup()`.
final class TempDir: @unchecked Sendable {
    let path: String
    init(_ prefix: String = "hvvss") throws {
        // Canonical (no `//`, no symlinks): mountinfo shows canonical paths, and the allow-list
        // must match them exactly.
        var base = NSTemporaryDirectory()
        while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
        var template = Array((base + "/\(prefix).XXXXXX").utf8CString)
        guard let p = mkdtemp(&template), let real = realpath(p, nil) else { throw POSIXError(.EIO) }
        path = String(cString: real)
        free(real)
    }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
}

/// A logger that keeps lines in memory (and never writes to disk).
final class LineCollector: @unchecked Sendable {
    let lines = NSMutableArray()
    let lock = NSLock()
    func append(_ s: String) { lock.lock(); lines.add(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return lines.compactMap { $0 as? String } }
}

struct CollectingHandler: LogHandler {
    let sink: LineCollector
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        sink.append("\(event.level) \(event.message)")
    }
}

func testLogger(_ sink: LineCollector = LineCollector()) -> Logger {
    Logger(label: "test") { _ in CollectingHandler(sink: sink) }
}

func environment(runtime: String, deviceRoot: String = "/", logger: Logger = testLogger()) -> ServiceEnvironment {
    ServiceEnvironment(
        deviceRoot: deviceRoot, stateDirectory: runtime, runtimeDirectory: runtime, configDirectory: runtime,
        logger: logger)
}

func mountTable(_ lines: String) -> MountTable {
    let t = MountTable.parse(lines)
    precondition(t.rejected.isEmpty, "\(t.rejected)")
    return t
}

enum ConfigSectionShim {
    static func make(_ values: [String: ConfigValue]) -> ConfigSection {
        ConfigSection(name: "vss", values: values, locate: { _ in ConfigLocation(file: "test.toml", line: 1) })
    }
}
