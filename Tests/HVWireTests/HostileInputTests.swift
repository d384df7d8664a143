import Testing
@testable import HVWire

/// Every decoder fed what a broken or hostile peer could send (the idea of swift-nio's
/// `ByteToMessageDecoderVerifier`): nothing, every truncation of a valid message, too much,
/// random garbage, mutated valid messages, unknown codes, bad sizes and bad strings.
/// The rule: a typed `WireError` or a value, never a trap.
@Suite("Hostile input")
struct HostileInputTests {
    /// A decoder under test with valid samples. `shortest` is the shortest length the decoder
    /// accepts for that sample (usually its full length); `acceptsLonger` says whether the
    /// kernel's rules let a longer buffer through (tail ignored).
    struct Decoder: Sendable, CustomTestStringConvertible {
        var name: String
        var samples: [(bytes: [UInt8], shortest: Int)]
        var acceptsLonger: Bool
        var decode: @Sendable ([UInt8]) throws(WireError) -> Void
        var testDescription: String { name }
    }

    static func full(_ b: [UInt8]) -> (bytes: [UInt8], shortest: Int) { (b, b.count) }

    static let kvpRequests: [[UInt8]] = [
        KVPRequest.get(pool: 0, key: Array("k".utf8)).encode(),
        KVPRequest.set(pool: 1, KVPExchange(key: "key", value: "value")).encode(),
        KVPRequest.delete(pool: 0, key: Array("k".utf8)).encode(),
        KVPRequest.enumerate(pool: 2, index: 3).encode(),
        KVPRequest.getIPInfo(pool: 0, KVPIPInfo(adapterID: "00:15:5D:00:00:01")).encode(),
        KVPRequest.setIPInfo(pool: 0, KVPIPInfo(adapterID: "{g}", ipAddresses: "10.0.0.1", subnets: "255.0.0.0",
                                                gateways: "10.0.0.254", dnsServers: "10.0.0.53")).encode(),
    ]

    static let enumerateReply = KVPReply.enumerate(key: Array("k".utf8), value: Array("v".utf8),
                                                   echoing: KVPRequest.enumerate(pool: 1, index: 0).encode())
    static let ipInfoReply = KVPReply.ipInfo(KVPIPInfo(adapterID: "m", ipAddresses: "10.0.0.1"),
                                             echoing: KVPRequest.getIPInfo(pool: 0, KVPIPInfo(adapterID: "m")).encode())
    static let getReply = KVPReply.get(value: Array("value".utf8), echoing: KVPRequest.get(pool: 0, key: Array("k".utf8)).encode(),
                                       valueOffset: KVPLayout.enumerateValue)

    static let decoders: [Decoder] = [
        Decoder(name: "KVPRequest.decode", samples: kvpRequests.map(full), acceptsLonger: false) { b throws(WireError) in
            _ = try KVPRequest.decode(b)
        },
        Decoder(name: "KVPReply.decode(.get)", samples: [full(getReply)], acceptsLonger: true) { b throws(WireError) in
            _ = try KVPReply.decode(b, for: .get)
        },
        Decoder(name: "KVPReply.decode(.enumerate)", samples: [full(enumerateReply)], acceptsLonger: true) { b throws(WireError) in
            _ = try KVPReply.decode(b, for: .enumerate)
        },
        Decoder(name: "KVPReply.decode(.getIPInfo)", samples: [full(ipInfoReply)], acceptsLonger: true) { b throws(WireError) in
            _ = try KVPReply.decode(b, for: .getIPInfo)
        },
        Decoder(name: "KVPReply.decode(.set)", samples: [full(KVPReply.status(.ok, echoing: []))], acceptsLonger: true) { b throws(WireError) in
            _ = try KVPReply.decode(b, for: .set)
        },
        Decoder(name: "KVPRegistration.decodeMessage", samples: [full(KVPRegistration.message())], acceptsLonger: true) { b throws(WireError) in
            _ = try KVPRegistration.decodeMessage(b)
        },
        Decoder(name: "KVPRegistration.decodeReply", samples: [full(KVPRegistration.reply())], acceptsLonger: true) { b throws(WireError) in
            _ = try KVPRegistration.decodeReply(b)
        },
        Decoder(name: "VSSRequest.decode", samples: VSSOperation.allCases.map { full(VSSRequest(operation: $0).encode()) },
                acceptsLonger: true) { b throws(WireError) in
            _ = try VSSRequest.decode(b)
        },
        Decoder(name: "VSSReply.decode", samples: [full(VSSReply(status: .fail).encode())], acceptsLonger: false) { b throws(WireError) in
            _ = try VSSReply.decode(b)
        },
        Decoder(name: "VSSRegistration.decodeMessage", samples: [full(VSSRegistration.message())], acceptsLonger: false) { b throws(WireError) in
            _ = try VSSRegistration.decodeMessage(b)
        },
        Decoder(name: "VSSRegistration.decodeReply", samples: [full(VSSRegistration.reply())], acceptsLonger: false) { b throws(WireError) in
            _ = try VSSRegistration.decodeReply(b)
        },
        Decoder(name: "FCopyRequest.decode(START/WRITE)",
                samples: [full(FCopyRequest.start(FCopyStart(fileName: "f", pathName: "/p/", flags: .overwrite, fileSize: 9)).encode()),
                          full(FCopyRequest.write(FCopyWrite(offset: 1, data: [1, 2, 3][...])).encode())],
                acceptsLonger: false) { b throws(WireError) in
            _ = try FCopyRequest.decode(b)
        },
        Decoder(name: "FCopyRequest.decode(COMPLETE/CANCEL)",
                samples: [(FCopyRequest.complete.encode(), 4), (FCopyRequest.cancel.encode(), 4)],
                acceptsLonger: true) { b throws(WireError) in
            _ = try FCopyRequest.decode(b)
        },
        Decoder(name: "FCopyReply.decode", samples: [full(FCopyReply.encode(.ok))], acceptsLonger: false) { b throws(WireError) in
            _ = try FCopyReply.decode(b)
        },
        Decoder(name: "FCopyRegistration.decodeMessage", samples: [full(FCopyRegistration.message())], acceptsLonger: false) { b throws(WireError) in
            _ = try FCopyRegistration.decodeMessage(b)
        },
        Decoder(name: "FCopyRegistration.decodeReply", samples: [full(FCopyRegistration.reply())], acceptsLonger: false) { b throws(WireError) in
            _ = try FCopyRegistration.decodeReply(b)
        },
    ]

    static func succeeds(_ d: Decoder, _ bytes: [UInt8]) -> Bool {
        do {
            try d.decode(bytes)
            return true
        } catch {
            return false
        }
    }

    // MARK: Sizes

    @Test("valid samples decode; the empty buffer is refused", arguments: decoders)
    func validAndEmpty(_ d: Decoder) {
        for (i, s) in d.samples.enumerated() {
            #expect(Self.succeeds(d, s.bytes), "sample \(i)")
        }
        #expect(!Self.succeeds(d, []), "empty buffer")
    }

    @Test("every truncation of a valid message is refused with .truncated", arguments: decoders)
    func everyTruncation(_ d: Decoder) {
        for (i, s) in d.samples.enumerated() {
            var accepted: [Int] = []
            for n in 0..<s.shortest {
                do {
                    try d.decode(Array(s.bytes.prefix(n)))
                    accepted.append(n)
                } catch {
                    guard case .truncated(_, let needed, let got) = error else {
                        Issue.record("sample \(i), length \(n): expected .truncated, got \(error)")
                        continue
                    }
                    #expect(got == n && needed > n, "sample \(i), length \(n): \(error)")
                }
            }
            #expect(accepted.isEmpty, "sample \(i) accepted at truncated lengths \(accepted.prefix(8))")
            // Between the shortest accepted length and the full one, the decoder must accept.
            for n in s.shortest...s.bytes.count where n != s.bytes.count && n % 8 == 0 {
                #expect(Self.succeeds(d, Array(s.bytes.prefix(n))), "sample \(i), length \(n)")
            }
        }
    }

    @Test("oversized buffers are refused with .oversized, or accepted with the tail ignored, per the kernel's rule",
          arguments: decoders)
    func oversized(_ d: Decoder) {
        for (i, s) in d.samples.enumerated() {
            for extra in [1, 3, 100, 4096] {
                let long = s.bytes + [UInt8](repeating: 0xA5, count: extra)
                do {
                    try d.decode(long)
                    #expect(d.acceptsLonger, "sample \(i) + \(extra) bytes was accepted")
                } catch {
                    guard case .oversized(_, let limit, let got) = error else {
                        Issue.record("sample \(i) + \(extra): expected .oversized, got \(error)")
                        continue
                    }
                    #expect(!d.acceptsLonger && limit == s.bytes.count && got == long.count)
                }
            }
        }
    }

    // MARK: Garbage

    @Test("thousands of random buffers: a WireError or a value, never a trap", arguments: decoders)
    func randomGarbage(_ d: Decoder) {
        var g = SeededGenerator(seed: 0x4856_5749_5245)  // "HVWIRE"
        let sizes = d.samples.map(\.bytes.count)
        var accepted = 0
        let rounds = 3000
        for round in 0..<rounds {
            let length: Int
            switch round % 4 {
            case 0: length = Int(g.next() % UInt64(sizes.max()! + 64))
            case 1: length = sizes[round % sizes.count]
            case 2: length = max(0, sizes[round % sizes.count] + Int(g.next() % 5) - 2)
            default: length = Int(g.next() % 16)
            }
            var bytes = g.bytes(length)
            // Steer a quarter of the full-size buffers past the operation check so field
            // validation runs on garbage too.
            if round % 8 == 1, let sample = d.samples.first, bytes.count >= 4 {
                bytes.replaceSubrange(0..<4, with: sample.bytes.prefix(4))
            }
            if Self.succeeds(d, bytes) { accepted += 1 }
        }
        // Not a correctness claim, a sanity one: garbage is overwhelmingly refused.
        #expect(accepted < rounds, "\(accepted) of \(rounds) random buffers decoded")
    }

    @Test("valid messages with random bytes flipped: a WireError or a value, never a trap", arguments: decoders)
    func mutatedMessages(_ d: Decoder) {
        var g = SeededGenerator(seed: 0x5EED)
        for round in 0..<2000 {
            var bytes = d.samples[round % d.samples.count].bytes
            let flips = 1 + Int(g.next() % 8)
            for _ in 0..<flips {
                // Aim half the flips at the first 64 bytes, where headers and sizes live.
                let limit = round % 2 == 0 ? min(64, bytes.count) : bytes.count
                let i = Int(g.next() % UInt64(limit))
                bytes[i] = UInt8(truncatingIfNeeded: g.next())
            }
            _ = Self.succeeds(d, bytes)
        }
        #expect(Self.succeeds(d, d.samples[0].bytes), "the pristine sample still decodes")
    }

    @Test("whatever KVPRequest.decode accepts re-encodes to a message that decodes to the same value")
    func kvpAcceptedIsStable() {
        // A few flipped bytes cannot grow the samples' short strings past the kernel's cut
        // (128 bytes for adapter_id), so re-encoding loses nothing.
        var g = SeededGenerator(seed: 42)
        var accepted = 0
        for round in 0..<3000 {
            var bytes = Self.kvpRequests[round % Self.kvpRequests.count]
            for _ in 0..<(1 + Int(g.next() % 6)) {
                let i = Int(g.next() % 600)  // header, sizes and the start of key/value/strings
                bytes[i] = round % 3 == 0 ? 0 : UInt8(truncatingIfNeeded: g.next())
            }
            guard let request = decodes({ () throws(WireError) in try KVPRequest.decode(bytes) }) else { continue }
            accepted += 1
            let again = decodes { () throws(WireError) in try KVPRequest.decode(request.encode()) }
            #expect(again == request, "round \(round)")
        }
        #expect(accepted > 100, "the mutations left \(accepted) decodable messages")
    }

    // MARK: Unknown codes

    @Test("KVP operations 6…255 are refused with .unknownCode")
    func kvpUnknownOperations() {
        for op in 6...255 {
            var bytes = Self.kvpRequests[0]
            bytes[0] = UInt8(op)
            #expect(wireError { () throws(WireError) in try KVPRequest.decode(bytes) }
                    == .unknownCode(structure: "hv_kvp_msg", field: "operation", value: UInt32(op)))
        }
    }

    @Test("KVP pools beyond 4 are passed through for the service to refuse")
    func kvpPoolPassedThrough() throws {
        var bytes = KVPRequest.enumerate(pool: 0, index: 0).encode()
        bytes[1] = 200
        #expect(try KVPRequest.decode(bytes) == .enumerate(pool: 200, index: 0))
    }

    @Test("KVP registration codes other than 4 and 100 are refused")
    func kvpUnknownRegistration() {
        for code: UInt8 in [0, 1, 3, 5, 99, 101, 255] {
            #expect(wireError { () throws(WireError) in try KVPRegistration.decodeMessage(KVPRegistration.message(code: code)) }
                    == .unknownCode(structure: "hv_kvp_msg(register)", field: "operation", value: UInt32(code)))
        }
    }

    @Test("fcopy operations beyond CANCEL are refused with .unknownCode, whatever the length")
    func fcopyUnknownOperations() {
        for op: UInt32 in [4, 5, 255, 256, 0x0100_0000, UInt32.max] {
            for length in [4, 36, 1088, 6196] {
                var bytes = [UInt8](repeating: 0, count: length)
                bytes.replaceSubrange(0..<4, with: le32(op))
                #expect(wireError { () throws(WireError) in try FCopyRequest.decode(bytes) }
                        == .unknownCode(structure: "hv_fcopy_hdr", field: "operation", value: op))
            }
        }
    }

    @Test("VSS requests with unknown operations still decode, so they can be answered")
    func vssUnknownOperations() throws {
        for op: UInt8 in [8, 9, 127, 130, 255] {
            var bytes = [UInt8](repeating: 0, count: 12)
            bytes[0] = op
            let r = try VSSRequest.decode(bytes)
            #expect(r.rawOperation == op && r.operation == nil)
        }
    }

    @Test("VSS: 12 bytes or more accepted (tail ignored), 0…11 refused")
    func vssLengths() throws {
        let freeze = VSSRequest(operation: .freeze, flags: 1).encode()
        for extra in [1, 4, 100, 6260 - 12] {
            #expect(try VSSRequest.decode(freeze + [UInt8](repeating: 0xFF, count: extra)) == VSSRequest(operation: .freeze, flags: 1))
        }
        for n in 0..<12 {
            #expect(wireError { () throws(WireError) in try VSSRequest.decode(Array(freeze.prefix(n))) }
                    == .truncated(structure: "hv_vss_msg", needed: 12, got: n))
        }
    }

    // MARK: KVP sizes

    static func withU32(_ bytes: [UInt8], _ value: UInt32, at offset: Int) -> [UInt8] {
        var b = bytes
        b.replaceSubrange(offset..<(offset + 4), with: le32(value))
        return b
    }

    @Test("key_size / value_size larger than the field are refused", arguments: [
        (0, 8, "key_size"), (1, 8, "key_size"), (1, 12, "value_size"), (2, 4, "key_size"),
    ])
    func kvpSizeBeyondField(_ sample: Int, _ sizeOffset: Int, _ field: String) {
        for size: UInt32 in [513, 2049, 0x8000_0000, UInt32.max] {
            if field == "value_size" && size == 513 { continue }  // 513 fits a value
            let bytes = Self.withU32(Self.kvpRequests[sample], size, at: sizeOffset)
            let e = wireError { () throws(WireError) in try KVPRequest.decode(bytes) }
            guard case .invalidField(_, let f, _) = e else {
                Issue.record("size \(size): expected invalidField(\(field)), got \(String(describing: e))")
                continue
            }
            #expect(f == field, "size \(size)")
        }
    }

    @Test("sizes at the field limit are accepted when the NUL is inside")
    func kvpSizeAtLimit() throws {
        let key = [UInt8](repeating: 0x6B, count: 511)
        let bytes = KVPRequest.get(pool: 0, key: key).encode()
        #expect(Array(bytes[8..<12]) == le32(512))
        #expect(try KVPRequest.decode(bytes) == .get(pool: 0, key: key))
    }

    @Test("zero sizes decode as empty strings (the kernel leaves value_size 0 for value types it does not render)")
    func kvpZeroSizes() throws {
        var set = Self.withU32(Self.kvpRequests[1], 0, at: 8)  // key_size = 0
        set = Self.withU32(set, 0, at: 12)  // value_size = 0
        #expect(try KVPRequest.decode(set) == .set(pool: 1, KVPExchange(key: [], value: [])))
        let get = Self.withU32(Self.kvpRequests[0], 0, at: 8)
        #expect(try KVPRequest.decode(get) == .get(pool: 0, key: []))
        let delete = Self.withU32(Self.kvpRequests[2], 0, at: 4)
        #expect(try KVPRequest.decode(delete) == .delete(pool: 0, key: []))
    }

    @Test("a key without a NUL within key_size is refused")
    func kvpKeyWithoutNUL() {
        var bytes = KVPRequest.get(pool: 0, key: Array("abcde".utf8)).encode()
        bytes = Self.withU32(bytes, 5, at: 8)  // size claims 5: "abcde" with no room for the NUL
        #expect(wireError { () throws(WireError) in try KVPRequest.decode(bytes) }
                == .invalidField(structure: "hv_kvp_msg", field: "key", reason: "not NUL-terminated within key_size 5"))
        var full = [UInt8](repeating: 0, count: 7432)
        full[0] = KVPOperation.delete.rawValue
        full.replaceSubrange(4..<8, with: le32(512))
        for i in 8..<520 { full[i] = 0x41 }  // 512 'A's fill kvp_delete.key
        #expect(wireError { () throws(WireError) in try KVPRequest.decode(full) } != nil)
    }

    @Test("a NUL before the end of key_size ends the key there")
    func kvpEarlyNUL() throws {
        let bytes = Self.withU32(KVPRequest.get(pool: 0, key: Array("ab".utf8)).encode(), 100, at: 8)
        #expect(try KVPRequest.decode(bytes) == .get(pool: 0, key: Array("ab".utf8)))
    }

    @Test("KVP keys and values are raw bytes: invalid UTF-8 is kept byte-exact, as the pool files match them")
    func kvpKeysAreBytes() throws {
        let odd: [UInt8] = [0xC0, 0xAF, 0xFF, 0x80]
        let bytes = KVPRequest.set(pool: 0, KVPExchange(key: odd, value: odd)).encode()
        #expect(try KVPRequest.decode(bytes) == .set(pool: 0, KVPExchange(key: odd, value: odd)))
    }

    // MARK: Strings

    /// Invalid UTF-8: overlong '/', overlong NUL-free 3-byte form, lone continuation, a UTF-16
    /// surrogate encoded in UTF-8 (CESU), beyond U+10FFFF, a truncated sequence, bytes never valid.
    static let invalidUTF8: [[UInt8]] = [
        [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0x61, 0x80, 0x62], [0xED, 0xA0, 0x80], [0xED, 0xB0, 0x80],
        [0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0xFE], [0xFF], [0xF8, 0x88, 0x80, 0x80, 0x80],
    ]

    @Test("invalid UTF-8 in IP info strings is refused", arguments: [
        (4, "adapter_id"), (262, "ip_addr"), (2310, "sub_net"), (4358, "gate_way"), (5382, "dns_addr"),
    ])
    func ipInfoInvalidUTF8(_ offset: Int, _ field: String) {
        for bad in Self.invalidUTF8 {
            var bytes = Self.kvpRequests[5]
            bytes.replaceSubrange(offset..<(offset + bad.count + 1), with: bad + [0])
            #expect(wireError { () throws(WireError) in try KVPRequest.decode(bytes) }
                    == .invalidField(structure: "hv_kvp_msg", field: field, reason: "invalid UTF-8"), "\(bad)")
        }
    }

    @Test("IP info strings without a NUL in their field are refused", arguments: [
        (4, 256, "adapter_id"), (262, 2048, "ip_addr"), (2310, 2048, "sub_net"), (4358, 1024, "gate_way"), (5382, 2048, "dns_addr"),
    ])
    func ipInfoWithoutNUL(_ offset: Int, _ width: Int, _ field: String) {
        var bytes = Self.kvpRequests[5]
        for i in offset..<(offset + width) { bytes[i] = 0x31 }
        let e = wireError { () throws(WireError) in try KVPRequest.decode(bytes) }
        guard case .invalidField(_, let f, let reason) = e else {
            Issue.record("expected invalidField, got \(String(describing: e))")
            return
        }
        #expect(f == field && reason.contains("NUL"))
        // The reply decoder (emulator side) refuses the same for GET_IP_INFO.
        var reply = Self.ipInfoReply
        for i in offset..<(offset + width) { reply[i] = 0x31 }
        #expect(wireError { () throws(WireError) in try KVPReply.decode(reply, for: .getIPInfo) } != nil)
    }

    @Test("invalid UTF-8 or a missing NUL in fcopy names is refused", arguments: [(36, "file_name"), (556, "path_name")])
    func fcopyNames(_ offset: Int, _ field: String) {
        let start = FCopyRequest.start(FCopyStart(fileName: "f", pathName: "/p/", flags: [], fileSize: 0)).encode()
        for bad in Self.invalidUTF8 {
            var bytes = start
            bytes.replaceSubrange(offset..<(offset + bad.count + 1), with: bad + [0])
            #expect(wireError { () throws(WireError) in try FCopyRequest.decode(bytes) }
                    == .invalidField(structure: "hv_start_fcopy", field: field, reason: "invalid UTF-8"), "\(bad)")
        }
        var unterminated = start
        for i in offset..<(offset + 520) { unterminated[i] = 0x78 }
        #expect(wireError { () throws(WireError) in try FCopyRequest.decode(unterminated) }
                == .invalidField(structure: "hv_start_fcopy", field: field, reason: "string is not NUL-terminated within 520 bytes"))
    }

    @Test("KVP registration reply: invalid UTF-8 or an unterminated version is refused")
    func registrationVersion() {
        for bad in Self.invalidUTF8 {
            var bytes = KVPRegistration.reply()
            bytes.replaceSubrange(4..<(4 + bad.count + 1), with: bad + [0])
            #expect(wireError { () throws(WireError) in try KVPRegistration.decodeReply(bytes) } != nil, "\(bad)")
        }
        var bytes = KVPRegistration.reply()
        for i in 4..<516 { bytes[i] = 0x39 }
        #expect(wireError { () throws(WireError) in try KVPRegistration.decodeReply(bytes) } != nil)
    }

    @Test("KVP reply decode: unterminated key or value is refused", arguments: [(20, 512), (532, 2048)])
    func replyUnterminated(_ offset: Int, _ width: Int) {
        var bytes = Self.enumerateReply
        for i in offset..<(offset + width) { bytes[i] = 0x7A }
        #expect(wireError { () throws(WireError) in try KVPReply.decode(bytes, for: .enumerate) } != nil)
    }

    // MARK: fcopy WRITE size

    @Test("fcopy WRITE: size up to 6144 accepted, beyond refused")
    func fcopyWriteSize() throws {
        let write = FCopyRequest.write(FCopyWrite(offset: 0, data: [1][...])).encode()
        for size: UInt32 in [0, 1, 6143, 6144] {
            guard case .write(let w) = try FCopyRequest.decode(Self.withU32(write, size, at: 48)) else {
                Issue.record("not a WRITE")
                continue
            }
            #expect(w.data.count == Int(size))
        }
        for size: UInt32 in [6145, 6196, 0x8000_0000, UInt32.max] {
            #expect(wireError { () throws(WireError) in try FCopyRequest.decode(Self.withU32(write, size, at: 48)) }
                    == .invalidField(structure: "hv_do_fcopy", field: "size", reason: "\(size) exceeds DATA_FRAGMENT 6144"))
        }
    }
}
