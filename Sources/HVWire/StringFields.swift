/// Fixed-width string fields of the kernel structs.
///
/// Two encodings appear: UTF-8 NUL-terminated bytes (everything the kernel relays to the daemon
/// over `/dev/vmbus/hv_*`, even inside `__u16` arrays) and UTF-16LE NUL-terminated code units
/// (what the host puts on the VMBus wire). A field without its NUL, or with invalid text, is
/// rejected: the kernel measures our strings with `strlen`, and host bytes are never trusted.
extension ByteReader {
    /// The bytes before the first NUL in the `width`-byte field at `offset`.
    /// Throws when the field has no NUL (an unterminated string).
    public func cStringBytes(at offset: Int, width: Int, field: String) throws(WireError) -> [UInt8] {
        let field_ = try slice(at: offset, count: width)
        guard let nul = field_.firstIndex(of: 0) else {
            throw .invalidField(structure: structure, field: field, reason: "string is not NUL-terminated within \(width) bytes")
        }
        return Array(field_[field_.startIndex..<nul])
    }

    /// The NUL-terminated UTF-8 string in the field; throws on a missing NUL or invalid UTF-8.
    public func utf8String(at offset: Int, width: Int, field: String) throws(WireError) -> String {
        let raw = try cStringBytes(at: offset, width: width, field: field)
        guard let s = String(validating: raw, as: UTF8.self) else {
            throw .invalidField(structure: structure, field: field, reason: "invalid UTF-8")
        }
        return s
    }

    /// The UTF-16LE code units before the first NUL unit of a field of `units` code units.
    public func utf16Units(at offset: Int, units: Int, field: String) throws(WireError) -> [UInt16] {
        _ = try slice(at: offset, count: units * 2)
        var out: [UInt16] = []
        for i in 0..<units {
            let u = try u16(at: offset + 2 * i)
            if u == 0 { return out }
            out.append(u)
        }
        throw .invalidField(structure: structure, field: field, reason: "string is not NUL-terminated within \(units) UTF-16 units")
    }

    /// The NUL-terminated UTF-16LE string in the field; throws on a missing NUL or on unpaired
    /// surrogates (invalid UTF-16 must be refused, not repaired).
    public func utf16String(at offset: Int, units: Int, field: String) throws(WireError) -> String {
        let raw = try utf16Units(at: offset, units: units, field: field)
        guard let s = String(validating: raw, as: UTF16.self) else {
            throw .invalidField(structure: structure, field: field, reason: "invalid UTF-16 (unpaired surrogate)")
        }
        return s
    }
}

extension ByteWriter {
    /// Writes `value` plus a NUL into a `width`-byte field and returns how many bytes of `value`
    /// were written (without the NUL). Values of `width` bytes or more are cut to fit, NUL kept,
    /// and the cut never splits a UTF-8 sequence (the kernel's `utf16s_to_utf8s` never writes
    /// part of a character either), so the field stays valid UTF-8.
    @discardableResult
    public mutating func cString<C: Collection>(_ value: C, at offset: Int, width: Int) -> Int where C.Element == UInt8 {
        let bytes = Array(value)
        var n = Swift.min(bytes.count, width - 1)
        if n > 0 && n < bytes.count {
            // Back up over at most three continuation bytes (10xxxxxx) to the lead byte of the
            // character being cut; bytes that are not UTF-8 anyway are cut where they are.
            var cut = n
            var steps = 0
            while cut > 0 && steps < 3 && bytes[cut] & 0xC0 == 0x80 {
                cut -= 1
                steps += 1
            }
            if bytes[cut] & 0xC0 == 0xC0 { n = cut }
        }
        copy(bytes[0..<n], at: offset)
        u8(0, at: offset + n)
        return n
    }

    /// Writes `value` as UTF-16LE plus a NUL unit into a field of `units` code units, cut to fit
    /// without splitting a surrogate pair (a half pair would be invalid UTF-16).
    public mutating func utf16String(_ value: String, at offset: Int, units: Int) {
        let all = Array(value.utf16)
        var n = Swift.min(all.count, units - 1)
        if n > 0 && n < all.count && UTF16.isLeadSurrogate(all[n - 1]) { n -= 1 }
        for i in 0..<Swift.max(n, 0) { u16(all[i], at: offset + 2 * i) }
        u16(0, at: offset + 2 * Swift.max(n, 0))
    }
}
