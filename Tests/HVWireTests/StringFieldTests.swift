import Testing
@testable import HVWire

/// The fixed-width string helpers and the bounds-checked reader/writer underneath every message.
@Suite("String fields and byte primitives")
struct StringFieldTests {
    // MARK: UTF-16LE fields (what the host puts on the VMBus wire)

    static func utf16Field(_ units: [UInt16], width: Int) -> [UInt8] {
        var b = units.flatMap(le16)
        b += [UInt8](repeating: 0, count: width * 2 - b.count)
        return b
    }

    static func readUTF16(_ bytes: [UInt8], units: Int) throws(WireError) -> String {
        try ByteReader(bytes, structure: "test").utf16String(at: 0, units: units, field: "name")
    }

    @Test("UTF-16 golden: \"A🙂\" is 41 00, a surrogate pair, then the NUL unit")
    func utf16Golden() throws {
        var w = ByteWriter(size: 10)
        w.utf16String("A🙂", at: 0, units: 5)
        #expect(w.bytes == [0x41, 0x00, 0x3D, 0xD8, 0x42, 0xDE, 0x00, 0x00, 0x00, 0x00])
        #expect(try Self.readUTF16(w.bytes, units: 5) == "A🙂")
    }

    @Test("UTF-16 round trips", arguments: [
        "", "plain ASCII", "漢字とかなカナ", "한국어", "🙂👍🏽🇩🇪", "mixed: ä 中 🙂 z", String(repeating: "𝄞", count: 10),
    ])
    func utf16RoundTrip(_ s: String) throws {
        let units = s.utf16.count + 1
        var w = ByteWriter(size: units * 2 + 6)
        w.utf16String(s, at: 2, units: units)
        #expect(try ByteReader(w.bytes, structure: "t").utf16String(at: 2, units: units, field: "f") == s)
        #expect(try ByteReader(w.bytes, structure: "t").utf16Units(at: 2, units: units, field: "f") == Array(s.utf16))
    }

    @Test("unpaired surrogates are refused", arguments: [
        [0xD83D, 0x0041] as [UInt16],  // high surrogate followed by a letter
        [0xDE42],  // lone low surrogate
        [0x0041, 0xD83D],  // high surrogate right before the NUL
        [0xDE42, 0xD83D],  // pair in the wrong order
        [0xD800, 0xD800, 0xDC00, 0xDC00],  // two highs, two lows
    ])
    func unpairedSurrogates(_ units: [UInt16]) {
        let bytes = Self.utf16Field(units, width: 8)
        #expect(wireError { () throws(WireError) in try Self.readUTF16(bytes, units: 8) }
                == .invalidField(structure: "test", field: "name", reason: "invalid UTF-16 (unpaired surrogate)"))
    }

    @Test("a UTF-16 field without a NUL unit is refused; a field past the buffer is truncated")
    func utf16Bounds() {
        let full = Self.utf16Field([0x61, 0x62, 0x63, 0x64], width: 4)
        #expect(wireError { () throws(WireError) in try Self.readUTF16(full, units: 4) }
                == .invalidField(structure: "test", field: "name", reason: "string is not NUL-terminated within 4 UTF-16 units"))
        // The NUL hides after the field: still unterminated within it.
        #expect(wireError { () throws(WireError) in try Self.readUTF16(full + [0, 0], units: 4) } != nil)
        #expect(wireError { () throws(WireError) in try Self.readUTF16([0x61, 0x00, 0x00], units: 2) }
                == .truncated(structure: "test", needed: 4, got: 3))
    }

    @Test("the UTF-16 writer cuts to fit, keeps the NUL, and never leaves half a surrogate pair")
    func utf16Cut() throws {
        var w = ByteWriter(size: 6)
        w.utf16String("a🙂", at: 0, units: 3)  // room for 2 units: "a" + half a pair would be invalid
        #expect(w.bytes == [0x61, 0x00, 0x00, 0x00, 0x00, 0x00])
        #expect(try Self.readUTF16(w.bytes, units: 3) == "a")

        var v = ByteWriter(size: 8)
        v.utf16String("ab🙂", at: 0, units: 4)  // 3 units fit: "ab" and the pair's high half is dropped
        #expect(try Self.readUTF16(v.bytes, units: 4) == "ab")

        var x = ByteWriter(size: 8)
        x.utf16String("漢字テスト", at: 0, units: 4)
        #expect(try Self.readUTF16(x.bytes, units: 4) == "漢字テ")
    }

    // MARK: UTF-8 fields (what the kernel relays on /dev/vmbus/hv_*)

    static func readUTF8(_ bytes: [UInt8], width: Int) throws(WireError) -> String {
        try ByteReader(bytes, structure: "test").utf8String(at: 0, width: width, field: "s")
    }

    @Test("UTF-8 fields round trip, including CJK and emoji", arguments: ["", "x", "漢字", "🙂 ok", "Grüße"])
    func utf8RoundTrip(_ s: String) throws {
        var w = ByteWriter(size: 32)
        let n = w.cString(Array(s.utf8), at: 0, width: 32)
        #expect(n == s.utf8.count)
        #expect(try Self.readUTF8(w.bytes, width: 32) == s)
        #expect(try ByteReader(w.bytes, structure: "t").cStringBytes(at: 0, width: 32, field: "s") == Array(s.utf8))
    }

    @Test("invalid UTF-8 is refused by utf8String but kept by cStringBytes")
    func utf8Invalid() throws {
        for bad in HostileInputTests.invalidUTF8 {
            let bytes = bad + [0] + [UInt8](repeating: 0, count: 4)
            #expect(wireError { () throws(WireError) in try Self.readUTF8(bytes, width: bytes.count) }
                    == .invalidField(structure: "test", field: "s", reason: "invalid UTF-8"), "\(bad)")
            #expect(try ByteReader(bytes, structure: "t").cStringBytes(at: 0, width: bytes.count, field: "s") == bad)
        }
    }

    @Test("a UTF-8 field without a NUL is refused")
    func utf8WithoutNUL() {
        #expect(wireError { () throws(WireError) in try Self.readUTF8(Array("abcd".utf8) + [0], width: 4) }
                == .invalidField(structure: "test", field: "s", reason: "string is not NUL-terminated within 4 bytes"))
    }

    @Test("cString cuts at a character boundary", arguments: [
        ("aé", 3, 1),  // 'é' is 2 bytes; 2 bytes of room
        ("ab€", 4, 2),  // '€' is 3 bytes
        ("ab🙂", 5, 2),  // '🙂' is 4 bytes; 4 bytes of room
        ("ab🙂", 6, 2),
        ("ab🙂", 7, 6),  // fits whole
        ("€€", 5, 3),
    ])
    func cStringCut(_ s: String, _ width: Int, _ expected: Int) throws {
        var w = ByteWriter(size: width)
        let n = w.cString(Array(s.utf8), at: 0, width: width)
        #expect(n == expected)
        #expect(w.bytes[n] == 0)
        #expect(try Self.readUTF8(w.bytes, width: width) == String(decoding: Array(s.utf8).prefix(expected), as: UTF8.self))
    }

    @Test("cString cuts bytes that are not UTF-8 exactly at the field width")
    func cStringRawBytes() {
        var w = ByteWriter(size: 4)
        #expect(w.cString([0x80, 0x80, 0x80, 0x80, 0x80], at: 0, width: 4) == 3)
        #expect(w.bytes == [0x80, 0x80, 0x80, 0x00])
        var v = ByteWriter(size: 4)
        #expect(v.cString([0x61, 0x62, 0x63, 0x64], at: 0, width: 4) == 3)
        #expect(v.bytes == [0x61, 0x62, 0x63, 0x00])
    }

    // MARK: ByteReader / ByteWriter

    @Test("little-endian reads and writes")
    func littleEndian() throws {
        var w = ByteWriter(size: 16)
        w.u8(0xAB, at: 0)
        w.u16(0x1234, at: 1)
        w.u32(0xDEAD_BEEF, at: 3)
        w.u64(0x0102_0304_0506_0708, at: 7)
        w.i32(-2, at: 12)  // overwrites the u64's top byte
        #expect(w.bytes == [0xAB, 0x34, 0x12, 0xEF, 0xBE, 0xAD, 0xDE, 0x08, 0x07, 0x06, 0x05, 0x04, 0xFE, 0xFF, 0xFF, 0xFF])
        let r = ByteReader(w.bytes, structure: "t")
        #expect(try r.u8(at: 0) == 0xAB)
        #expect(try r.u16(at: 1) == 0x1234)
        #expect(try r.u32(at: 3) == 0xDEAD_BEEF)
        #expect(try r.u32(at: 7) == 0x0506_0708)
        #expect(try r.i32(at: 12) == -2)
        #expect(try r.u64(at: 8) == 0xFFFF_FFFE_0405_0607)
    }

    @Test("out-of-range reads throw .truncated instead of trapping")
    func readerBounds() {
        let r = ByteReader([1, 2, 3, 4], structure: "t")
        #expect(wireError { () throws(WireError) in try r.u32(at: 1) } == .truncated(structure: "t", needed: 5, got: 4))
        #expect(wireError { () throws(WireError) in try r.u8(at: 4) } == .truncated(structure: "t", needed: 5, got: 4))
        #expect(wireError { () throws(WireError) in try r.u64(at: 0) } == .truncated(structure: "t", needed: 8, got: 4))
        #expect(wireError { () throws(WireError) in try r.u16(at: -1) } != nil)
        #expect(wireError { () throws(WireError) in try r.slice(at: 0, count: -1) } != nil)
        #expect(wireError { () throws(WireError) in try r.u8(at: Int.min) } != nil)
        // A size so large that offset + size overflows must still report, not trap.
        #expect(wireError { () throws(WireError) in try r.slice(at: 2, count: Int.max) }
                == .truncated(structure: "t", needed: Int.max, got: 4))
        #expect(wireError { () throws(WireError) in try r.u32(at: Int.max) } != nil)
        #expect((try? r.slice(at: 1, count: 2)).map(Array.init) == [2, 3])
    }

    @Test("require and requireAtMost")
    func requireBounds() {
        let r = ByteReader([0, 0], structure: "t")
        #expect(wireError { () throws(WireError) in try r.require(3) } == .truncated(structure: "t", needed: 3, got: 2))
        #expect(wireError { () throws(WireError) in try r.requireAtMost(1) } == .oversized(structure: "t", limit: 1, got: 2))
        #expect(wireError { () throws(WireError) in try r.require(2) } == nil)
        #expect(wireError { () throws(WireError) in try r.requireAtMost(2) } == nil)
    }

    @Test("WireError descriptions name the structure and the problem")
    func wireErrorDescriptions() {
        #expect(WireError.truncated(structure: "hv_vss_msg", needed: 12, got: 3).description
                == "hv_vss_msg: truncated message (3 bytes, need 12)")
        #expect(WireError.oversized(structure: "fcopy reply", limit: 4, got: 5).description
                == "fcopy reply: oversized message (5 bytes, at most 4)")
        #expect(WireError.unknownCode(structure: "hv_kvp_msg", field: "operation", value: 9).description
                == "hv_kvp_msg: unknown operation 9")
        #expect(WireError.invalidField(structure: "hv_start_fcopy", field: "file_name", reason: "invalid UTF-8").description
                == "hv_start_fcopy.file_name: invalid UTF-8")
    }
}
