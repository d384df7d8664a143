/// Bounds-checked little-endian reads from a byte buffer. Every read past the end throws
/// `WireError.truncated`; nothing here can trap on host data.
public struct ByteReader: Sendable {
    public let bytes: [UInt8]
    /// Name of the structure being decoded, for error messages.
    public let structure: String

    public init(_ bytes: [UInt8], structure: String) {
        self.bytes = bytes
        self.structure = structure
    }

    public var count: Int { bytes.count }

    /// Throws unless the buffer holds at least `n` bytes.
    public func require(_ n: Int) throws(WireError) {
        if bytes.count < n { throw .truncated(structure: structure, needed: n, got: bytes.count) }
    }

    /// Throws unless the buffer holds at most `n` bytes.
    public func requireAtMost(_ n: Int) throws(WireError) {
        if bytes.count > n { throw .oversized(structure: structure, limit: n, got: bytes.count) }
    }

    @inline(__always)
    private func check(_ offset: Int, _ size: Int) throws(WireError) {
        if offset < 0 || size < 0 || offset > bytes.count - size {
            // Saturate: a huge size must report, not overflow while building the error.
            let (needed, overflow) = offset.addingReportingOverflow(size)
            throw .truncated(structure: structure, needed: overflow ? Int.max : needed, got: bytes.count)
        }
    }

    public func u8(at offset: Int) throws(WireError) -> UInt8 {
        try check(offset, 1)
        return bytes[offset]
    }

    public func u16(at offset: Int) throws(WireError) -> UInt16 {
        try check(offset, 2)
        return UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }

    public func u32(at offset: Int) throws(WireError) -> UInt32 {
        try check(offset, 4)
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[offset + i]) << (8 * UInt32(i)) }
        return v
    }

    public func u64(at offset: Int) throws(WireError) -> UInt64 {
        try check(offset, 8)
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
        return v
    }

    public func i32(at offset: Int) throws(WireError) -> Int32 { Int32(bitPattern: try u32(at: offset)) }

    public func slice(at offset: Int, count n: Int) throws(WireError) -> ArraySlice<UInt8> {
        try check(offset, n)
        return bytes[offset..<(offset + n)]
    }
}

/// Little-endian writes into a zero-filled buffer of fixed size (packed structs).
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(size: Int) { bytes = [UInt8](repeating: 0, count: size) }
    public init(bytes: [UInt8]) { self.bytes = bytes }

    public mutating func u8(_ v: UInt8, at offset: Int) { bytes[offset] = v }

    public mutating func u16(_ v: UInt16, at offset: Int) {
        bytes[offset] = UInt8(truncatingIfNeeded: v)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: v >> 8)
    }

    public mutating func u32(_ v: UInt32, at offset: Int) {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
    }

    public mutating func u64(_ v: UInt64, at offset: Int) {
        for i in 0..<8 { bytes[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
    }

    public mutating func i32(_ v: Int32, at offset: Int) { u32(UInt32(bitPattern: v), at: offset) }

    /// Copies `data` at `offset`; the caller guarantees it fits (encoders check field widths first).
    public mutating func copy<C: Collection>(_ data: C, at offset: Int) where C.Element == UInt8 {
        // One memory copy when the source is contiguous (arrays, slices): a byte loop with a
        // bounds check per byte was most of a KVP GET's cost (bench/NOTES.md).
        let copied: Bool? = data.withContiguousStorageIfAvailable { source in
            guard !source.isEmpty else { return true }
            precondition(offset >= 0 && offset + source.count <= bytes.count, "ByteWriter.copy out of range")
            bytes.withUnsafeMutableBufferPointer { target in
                (target.baseAddress! + offset).update(from: source.baseAddress!, count: source.count)
            }
            return true
        }
        if copied != nil { return }
        var i = offset
        for b in data {
            bytes[i] = b
            i += 1
        }
    }

    /// Sets `count` bytes from `offset` to zero.
    public mutating func zero(count: Int, at offset: Int) {
        guard count > 0 else { return }
        precondition(offset >= 0 && offset + count <= bytes.count, "ByteWriter.zero out of range")
        bytes.withUnsafeMutableBufferPointer { target in (target.baseAddress! + offset).update(repeating: 0, count: count) }
    }
}
