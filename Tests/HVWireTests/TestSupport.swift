import Testing
@testable import HVWire

// Helpers shared by the HVWire tests: little-endian byte builders, a golden-bytes checker and
// a seeded PRNG so "random" inputs are the same on every run.

func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) } }
func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }
/// UTF-8 bytes of `s` followed by a NUL.
func cstr(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }

/// One expected field of a golden message: its documented offset, its exact bytes, and what it is.
struct Field {
    var offset: Int
    var bytes: [UInt8]
    var what: String
    init(_ offset: Int, _ bytes: [UInt8], _ what: String) {
        self.offset = offset
        self.bytes = bytes
        self.what = what
    }
}

/// Asserts `actual` is exactly `size` bytes, holds each field's bytes at its offset, and is zero
/// everywhere else (the kernel zero-fills its messages; so must we).
func expectGolden(_ actual: [UInt8], size: Int, _ fields: [Field], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == size, "message size", sourceLocation: sourceLocation)
    guard actual.count == size else { return }
    var covered = [Bool](repeating: false, count: size)
    for f in fields {
        let end = f.offset + f.bytes.count
        guard end <= size else {
            Issue.record("field \(f.what) @\(f.offset) runs past the message end", sourceLocation: sourceLocation)
            continue
        }
        #expect(Array(actual[f.offset..<end]) == f.bytes, "\(f.what) @\(f.offset)", sourceLocation: sourceLocation)
        for i in f.offset..<end { covered[i] = true }
    }
    let stray = (0..<size).filter { !covered[$0] && actual[$0] != 0 }
    #expect(stray.isEmpty, "non-zero bytes outside the documented fields at offsets \(stray.prefix(16))",
            sourceLocation: sourceLocation)
}

/// SplitMix64: tiny, seeded, good enough to generate fuzz inputs reproducibly.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func bytes(_ n: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: n)
        var i = 0
        while i < n {
            var word = next()
            for _ in 0..<8 where i < n {
                out[i] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                i += 1
            }
        }
        return out
    }
}

/// Runs a decoder and returns its value, or nil when it threw. Decoders throw only the typed
/// `WireError`, so getting here at all proves the decoder did not trap.
func decodes<T>(_ decode: () throws(WireError) -> T) -> T? {
    do { return try decode() } catch { return nil }
}

/// The error a decoder threw, or nil when it succeeded.
func wireError<T>(_ decode: () throws(WireError) -> T) -> WireError? {
    do {
        _ = try decode()
        return nil
    } catch { return error }
}
