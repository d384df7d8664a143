import Foundation
import Glibc
@testable import HVKVP

/// A temporary directory removed when the value goes away (even when a test fails).
final class TemporaryDirectory {
    let path: String

    init(_ label: String = "kvp") {
        var template = Array("/tmp/hvkvp-\(label)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }

    func bytes(_ name: String) -> [UInt8] {
        (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: file(name))))) ?? []
    }

    func write(_ name: String, _ text: String) {
        let p = file(name)
        try? FileManager.default.createDirectory(
            atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
    }

    func write(_ name: String, bytes: [UInt8]) {
        _ = FileManager.default.createFile(atPath: file(name), contents: Data(bytes))
    }
}

/// A record as hyperv-daemons writes it: key and value NUL-padded to 512 and 2048 bytes.
func goldenRecord(_ key: String, _ value: String) -> [UInt8] {
    var r = [UInt8](repeating: 0, count: 2560)
    for (i, b) in key.utf8.enumerated() { r[i] = b }
    for (i, b) in value.utf8.enumerated() { r[512 + i] = b }
    return r
}

/// Parses a pool file the way every reader does (whole records only, strings up to the NUL).
func parsePoolFile(_ bytes: [UInt8]) -> [(String, String)] {
    var out: [(String, String)] = []
    var i = 0
    while i + 2560 <= bytes.count {
        let key = bytes[i..<(i + 512)].prefix { $0 != 0 }
        let value = bytes[(i + 512)..<(i + 2560)].prefix { $0 != 0 }
        out.append((String(decoding: key, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        i += 2560
    }
    return out
}

/// Appends one record the way cloud-init does: open for append, flock, write, close.
func externalAppend(_ path: String, key: String, value: String) {
    let fd = open(path, O_WRONLY | O_APPEND)
    precondition(fd >= 0)
    flock(fd, LOCK_EX)
    let record = goldenRecord(key, value)
    _ = record.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    flock(fd, LOCK_UN)
    close(fd)
}

/// Overwrites the value of record `slot` in place (an outside editor using fcntl locks).
func externalOverwrite(_ path: String, slot: Int, key: String, value: String) {
    let fd = open(path, O_WRONLY)
    precondition(fd >= 0)
    var fl = Glibc.flock()
    fl.l_type = Int16(F_WRLCK)
    fl.l_whence = Int16(SEEK_SET)
    _ = fcntl(fd, F_SETLKW, &fl)
    let record = goldenRecord(key, value)
    _ = record.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(slot * 2560)) }
    fl.l_type = Int16(F_UNLCK)
    _ = fcntl(fd, F_SETLK, &fl)
    close(fd)
}

func fileMode(_ path: String) -> mode_t {
    var st = stat()
    stat(path, &st)
    return st.st_mode & 0o7777
}
