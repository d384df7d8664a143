import Foundation
import Glibc
import HVFileCopy
import HVServiceKit
import HVSystem
import HVWire
import Logging

/// A temporary directory under /tmp (a real path: the engine refuses symlinks on the way),
/// removed when the test ends.
final class Scratch {
    let path: String

    init() throws {
        let base = "/tmp/hvguest-fcopy-tests-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: false)
        path = base
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func sub(_ relative: String) -> String { path + "/" + relative }

    /// Names in `relative` (sorted), hidden ones included.
    func names(_ relative: String = "") -> [String] {
        let dir = relative.isEmpty ? path : sub(relative)
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    func write(_ relative: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: sub(relative)))
    }

    func read(_ relative: String) -> [UInt8]? {
        FileManager.default.contents(atPath: sub(relative)).map { [UInt8]($0) }
    }

    func mkdir(_ relative: String) throws {
        try FileManager.default.createDirectory(atPath: sub(relative), withIntermediateDirectories: true)
    }

    func symlink(_ relative: String, to destination: String) throws {
        try FileManager.default.createSymbolicLink(atPath: sub(relative), withDestinationPath: destination)
    }

    /// Every path below the scratch directory (files and directories), relative, sorted.
    func tree() -> [String] {
        (FileManager.default.subpaths(atPath: path) ?? []).sorted()
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), so failures are reproducible.
func pseudoRandomBytes(_ count: Int, seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: count)
    var state = seed | 1
    out.withUnsafeMutableBytes { raw in
        var i = 0
        while i < count {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            var word = (state &* 0x2545_F491_4F6C_DD1D).littleEndian
            let n = min(8, count - i)
            withUnsafeBytes(of: &word) { w in
                for k in 0..<n { raw[i + k] = w[k] }
            }
            i += n
        }
    }
    return out
}

/// Captures log records (message, level, metadata).
final class LogRecorder: @unchecked Sendable {
    struct Record {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let lock = NSLock()
    private var _records: [Record] = []

    var records: [Record] { lock.withLock { _records } }

    func append(_ r: Record) { lock.withLock { _records.append(r) } }

    var logger: Logger {
        Logger(label: "fcopy-test") { _ in RecordingHandler(recorder: self) }
    }
}

struct RecordingHandler: LogHandler {
    let recorder: LogRecorder
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged: [String: String] = [:]
        for (k, v) in metadata { merged[k] = "\(v)" }
        for (k, v) in event.metadata ?? [:] { merged[k] = "\(v)" }
        recorder.append(.init(level: event.level, message: "\(event.message)", metadata: merged))
    }
}

/// An engine for tests: not emulated unless asked, logging into a recorder.
func makeEngine(
    _ configuration: FileCopyConfiguration = FileCopyConfiguration(), emulated: Bool = false,
    recorder: LogRecorder = LogRecorder()
) -> FileCopyEngine {
    FileCopyEngine(configuration: configuration, isEmulated: emulated, logger: recorder.logger)
}

/// The statuses of a whole copy: START, each WRITE (fragments of `fragment` bytes), COMPLETE.
/// Stops at the first failure and returns it.
@discardableResult
func copy(
    _ engine: FileCopyEngine, _ data: [UInt8], to directory: String, name: String,
    flags: FileCopyFlags = [], fragment: Int = 6144
) -> FileCopyOutcome {
    let started = engine.start(path: directory, name: name, flags: flags, size: UInt64(data.count))
    guard started.status.isSuccess else { return started }
    var offset = 0
    while offset < data.count {
        let n = min(fragment, data.count - offset)
        let written = engine.write(offset: UInt64(offset), data: data[offset..<(offset + n)])
        guard written.status.isSuccess else { return written }
        offset += n
    }
    return engine.complete()
}

func fileStatus(_ path: String) -> stat? {
    var st = stat()
    return lstat(path, &st) == 0 ? st : nil
}
