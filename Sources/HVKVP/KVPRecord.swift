import Glibc
import HVWire

extension KVPPool: Comparable {
    /// The pool for a number from the host or the command line; nil when out of range
    /// (the reference daemon indexes its arrays with the host's byte unchecked; we don't).
    public init?(number: Int) {
        guard number >= 0, number <= 4, let p = KVPPool(rawValue: UInt8(number)) else { return nil }
        self = p
    }

    /// `.kvp_pool_N`, the file name hyperv-daemons uses.
    public var fileName: String { ".kvp_pool_\(rawValue)" }

    public static func < (a: KVPPool, b: KVPPool) -> Bool { a.rawValue < b.rawValue }
}

/// The pool file format of hyperv-daemons (PROTOCOL.md §2.5): a flat array of 2560-byte records,
/// no header; each record is the key (UTF-8, NUL-terminated, zero-padded to 512 bytes) followed
/// by the value (same, 2048 bytes). A trailing partial record is ignored by every reader.
public enum KVPRecordLayout {
    public static let keyWidth = 512
    public static let valueWidth = 2048
    public static let recordSize = keyWidth + valueWidth
    /// Longest key that fits with its NUL.
    public static let maxKeyBytes = keyWidth - 1
    /// Longest value that fits with its NUL.
    public static let maxValueBytes = valueWidth - 1
}

/// One key/value pair; both are raw bytes (UTF-8 by convention, matched byte for byte).
public struct KVPRecord: Sendable, Equatable, Hashable {
    public var key: [UInt8]
    public var value: [UInt8]

    public init(key: [UInt8], value: [UInt8]) {
        self.key = key
        self.value = value
    }

    public init(key: String, value: String) {
        self.init(key: Array(key.utf8), value: Array(value.utf8))
    }

    /// The key as text (invalid UTF-8 from other writers is shown with U+FFFD).
    public var keyText: String { String(decoding: key, as: UTF8.self) }
    public var valueText: String { String(decoding: value, as: UTF8.self) }

    /// The 2560-byte file record. Our own writes are validated to leave room for the NUL; a
    /// record another program wrote with a full field (no NUL) is written back as it was when
    /// the store moves it, byte for byte, so moving never changes a value (fuzz finding 3).
    /// Longer fields are cut at the field width.
    public func encoded() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: KVPRecordLayout.recordSize)
        out.withUnsafeMutableBytes { dst in
            Self.copyField(key, into: UnsafeMutableRawBufferPointer(rebasing: dst[..<KVPRecordLayout.keyWidth]))
            Self.copyField(value, into: UnsafeMutableRawBufferPointer(rebasing: dst[KVPRecordLayout.keyWidth...]))
        }
        return out
    }

    private static func copyField(_ bytes: [UInt8], into field: UnsafeMutableRawBufferPointer) {
        bytes.withUnsafeBytes { src in
            field.copyMemory(from: UnsafeRawBufferPointer(rebasing: src.prefix(field.count)))
        }
    }

    /// Length of a NUL-terminated field: up to its first NUL, or all of it when it has none.
    public static func fieldLength(_ field: UnsafeRawBufferPointer) -> Int {
        guard let base = field.baseAddress, !field.isEmpty else { return 0 }
        guard let nul = memchr(base, 0, field.count) else { return field.count }
        return base.distance(to: UnsafeRawPointer(nul))
    }

    /// Decodes one record. A field without a NUL is taken whole (readers use `strlen`-like
    /// logic; we stop at the field end rather than running into the next field).
    public static func decode<C: RandomAccessCollection>(_ record: C) -> KVPRecord where C.Element == UInt8, C.Index == Int {
        if let r = record.withContiguousStorageIfAvailable({ decode(UnsafeRawBufferPointer($0)) }) { return r }
        return Array(record).withUnsafeBytes { decode($0) }
    }

    /// Decodes one record from raw bytes (at most `recordSize` of them are looked at).
    public static func decode(_ record: UnsafeRawBufferPointer) -> KVPRecord {
        let keyField = UnsafeRawBufferPointer(rebasing: record.prefix(KVPRecordLayout.keyWidth))
        let valueField = UnsafeRawBufferPointer(rebasing: record.dropFirst(keyField.count).prefix(KVPRecordLayout.valueWidth))
        return KVPRecord(key: Array(keyField.prefix(fieldLength(keyField))),
                         value: Array(valueField.prefix(fieldLength(valueField))))
    }
}
