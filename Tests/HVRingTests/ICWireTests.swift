import HVWire
import Testing

/// Little-endian helpers for building golden inputs by hand.
func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) } }
func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }

/// A negotiate request payload as a host would send it.
func negotiatePayload(framework: [ICVersion], message: [ICVersion], trailing: Int = 0) -> [UInt8] {
    let offer = ICVersionOffer(frameworkVersions: framework, messageVersions: message)
    return ICNegotiation.request(offer: offer, transactionID: 7).encode() + [UInt8](repeating: 0, count: trailing)
}

@Suite struct VMBusPacketTests {
    @Test func descriptorGoldenBytes() throws {
        let golden: [UInt8] =
            le16(6)  // type VM_PKT_DATA_INBAND
            + le16(2)  // offset8: 16-byte header
            + le16(5)  // len8: 40 bytes with payload and padding
            + le16(1)  // flags: completion requested
            + le64(0x0102_0304_0506_0708)  // trans_id
        let d = try VMBusPacketDescriptor.decode(from: golden)
        #expect(d == VMBusPacketDescriptor(type: .dataInband, offset8: 2, length8: 5, flags: 1, transactionID: 0x0102_0304_0506_0708))
        #expect(d.payloadLength == 24)
        #expect(d.encode() == golden)
        #expect(try VMBusPacketDescriptor.inband(payloadLength: 17, transactionID: 0x0102_0304_0506_0708, flags: 1) == d)
    }

    @Test func descriptorRejectsBadInput() {
        #expect(throws: WireError.truncated(structure: "vmpacket_descriptor", needed: 16, got: 15)) {
            try VMBusPacketDescriptor.decode(from: [UInt8](repeating: 0, count: 15))
        }
        let shortHeader = le16(6) + le16(1) + le16(4) + le16(0) + le64(0)
        #expect(throws: WireError.self) { try VMBusPacketDescriptor.decode(from: shortHeader) }
        let inverted = le16(6) + le16(5) + le16(4) + le16(0) + le64(0)
        #expect(throws: WireError.self) { try VMBusPacketDescriptor.decode(from: inverted) }
        #expect(throws: WireError.self) { try VMBusPacketDescriptor.inband(payloadLength: 600_000, transactionID: 0) }
    }

    @Test func packetFramingPadsToEight() throws {
        let packet = try VMBusPacket.encode(payload: [1, 2, 3], transactionID: 9)
        #expect(packet.count == 24)
        #expect(packet[16..<24] == [1, 2, 3, 0, 0, 0, 0, 0])
        let (d, payload) = try VMBusPacket.decode(from: packet)
        #expect(d.transactionID == 9)
        #expect(payload == [1, 2, 3, 0, 0, 0, 0, 0])
        #expect(throws: WireError.self) { try VMBusPacket.decode(from: Array(packet.prefix(20))) }
        #expect(throws: WireError.self) { try VMBusPacket.decode(from: packet + [0]) }
    }
}

@Suite struct ICMessageTests {
    static let golden: [UInt8] =
        le32(0x11)  // vmbuspipe_hdr.flags
        + le32(0x22)  // vmbuspipe_hdr.msgsize
        + le16(3) + le16(0)  // icverframe 3.0
        + le16(7)  // icmsgtype FCOPY
        + le16(1) + le16(1)  // icvermsg 1.1
        + le16(36)  // icmsgsize
        + le32(0x8000_4005)  // status E_FAIL
        + [0x2A]  // ictransaction_id
        + [0x03]  // icflags TRANSACTION|REQUEST
        + le16(0)  // reserved
        + [0xAB, 0xCD]  // start of the service message

    @Test func headerGoldenBytes() throws {
        let header = try ICMessageHeader.decode(from: Self.golden)
        #expect(header == ICMessageHeader(
            pipeFlags: 0x11, pipeMessageSize: 0x22, frameworkVersion: ICVersion(3, 0), messageType: .fcopy,
            messageVersion: ICVersion(1, 1), messageSize: 36, status: .fail, transactionID: 0x2A,
            flags: [.transaction, .request]))
        #expect(header.encode() == Array(Self.golden.prefix(28)))
        let message = try ICMessage.decode(from: Self.golden)
        #expect(message.body == [0xAB, 0xCD])
        #expect(message.encode() == Self.golden)
        #expect(ICVersion(3, 0).packed == 0x30000)
        #expect(ICVersion(1, 1) < ICVersion(3, 0))
    }

    @Test func truncatedHeaderThrows() {
        #expect(throws: WireError.truncated(structure: "icmsg_hdr", needed: 28, got: 27)) {
            try ICMessageHeader.decode(from: Array(Self.golden.prefix(27)))
        }
        var short: [UInt8] = [1, 2, 3]
        #expect(throws: WireError.self) { try ICMessageHeader.markResponse(in: &short, status: .ok) }
    }

    @Test func responseKeepsEverythingButStatusAndFlags() throws {
        var payload = Self.golden
        try ICMessageHeader.markResponse(in: &payload, status: .ok)
        var expected = Self.golden
        expected.replaceSubrange(20..<24, with: le32(0))  // status S_OK
        expected[25] = 0x05  // icflags TRANSACTION|RESPONSE
        #expect(payload == expected)
        let message = try ICMessage.decode(from: Self.golden)
        #expect(message.response(status: .ok).encode() == expected)
        #expect(message.response(status: .ok, body: [9]).body == [9])
    }
}

@Suite struct ICNegotiationTests {
    @Test func fcopyAnswerGoldenBytes() throws {
        let request = negotiatePayload(framework: [ICVersion(3, 0)], message: [ICVersion(1, 1)])
        #expect(request.count == 44)
        let result = try ICNegotiation.respond(to: request, supported: .fcopy)
        #expect(result.chosen?.framework == ICVersion(3, 0))
        #expect(result.chosen?.message == ICVersion(1, 1))
        #expect(result.problem == nil)
        let expected: [UInt8] =
            le32(0) + le32(36)  // pipe header echoed
            + le16(3) + le16(0)  // icverframe echoed
            + le16(0)  // icmsgtype NEGOTIATE
            + le16(1) + le16(1)  // icvermsg echoed
            + le16(16)  // icmsgsize = 16
            + le32(0)  // status S_OK
            + [7, 0x05]  // transaction id echoed, icflags TRANSACTION|RESPONSE
            + le16(0)
            + le16(1) + le16(1)  // icframe_vercnt 1, icmsg_vercnt 1
            + le32(0)  // reserved
            + le16(3) + le16(0)  // chosen framework 3.0
            + le16(1) + le16(1)  // chosen message 1.1
        #expect(result.response == expected)
        let parsed = try ICNegotiation.parseResponse(result.response)
        #expect(parsed.status == .ok)
        #expect(parsed.chosen?.framework == ICVersion(3, 0))
        #expect(parsed.chosen?.message == ICVersion(1, 1))
    }

    @Test("our priority order wins, exact matches only", arguments: [
        // (our versions, host framework, host message, expected framework, expected message)
        ("shutdown", [ICVersion(1, 0), ICVersion(3, 0)], [ICVersion(3, 0), ICVersion(3, 1), ICVersion(3, 2)], ICVersion(3, 0), ICVersion(3, 2)),
        ("shutdown", [ICVersion(1, 0)], [ICVersion(1, 0), ICVersion(9, 9)], ICVersion(1, 0), ICVersion(1, 0)),
        ("timesync", [ICVersion(3, 0), ICVersion(1, 0)], [ICVersion(1, 0), ICVersion(3, 0)], ICVersion(3, 0), ICVersion(3, 0)),
        ("timesync", [ICVersion(3, 0)], [ICVersion(4, 0), ICVersion(3, 0), ICVersion(1, 0)], ICVersion(3, 0), ICVersion(4, 0)),
        ("heartbeat", [ICVersion(3, 0)], [ICVersion(3, 0)], ICVersion(3, 0), ICVersion(3, 0)),
        ("kvp", [ICVersion(3, 0), ICVersion(1, 0)], [ICVersion(5, 0), ICVersion(4, 0)], ICVersion(3, 0), ICVersion(4, 0)),
        ("vss", [ICVersion(3, 0)], [ICVersion(5, 0), ICVersion(4, 0)], ICVersion(3, 0), ICVersion(5, 0)),
    ])
    func chooses(service: String, framework: [ICVersion], message: [ICVersion], expectedFramework: ICVersion, expectedMessage: ICVersion) throws {
        let supported: ICServiceVersions =
            switch service {
            case "shutdown": .shutdown
            case "timesync": .timeSync
            case "heartbeat": .heartbeat
            case "kvp": .kvp
            default: .vss
            }
        let result = try ICNegotiation.respond(to: negotiatePayload(framework: framework, message: message), supported: supported)
        #expect(result.chosen?.framework == expectedFramework)
        #expect(result.chosen?.message == expectedMessage)
        #expect(try ICMessageHeader.decode(from: result.response).status == .ok)
    }

    @Test func noExactMatchFails() throws {
        // 3.1 is not 3.0, and 1.0 is not 1.1: no near matches.
        let request = negotiatePayload(framework: [ICVersion(3, 1)], message: [ICVersion(1, 1)])
        let result = try ICNegotiation.respond(to: request, supported: .fcopy)
        #expect(result.chosen == nil)
        #expect(result.problem == nil)
        let header = try ICMessageHeader.decode(from: result.response)
        #expect(header.status == .fail)
        #expect(header.messageSize == 16)
        #expect(header.flags == [.transaction, .response])
        #expect(Array(result.response[28..<32]) == [0, 0, 0, 0])  // counts 0/0
        #expect(result.response.count == request.count)
        #expect(try ICNegotiation.parseResponse(result.response).chosen == nil)
        // Framework matches but message does not: still a failure.
        let half = try ICNegotiation.respond(to: negotiatePayload(framework: [ICVersion(3, 0)], message: [ICVersion(2, 0)]), supported: .fcopy)
        #expect(half.chosen == nil)
    }

    @Test func echoesTheReceivedLength() throws {
        let request = negotiatePayload(framework: [ICVersion(3, 0)], message: [ICVersion(1, 1)], trailing: 12)
        let result = try ICNegotiation.respond(to: request, supported: .fcopy)
        #expect(result.response.count == 56)
        #expect(result.chosen != nil)
    }

    @Test func malformedOffersGetAFailureAnswer() throws {
        var tooMany = negotiatePayload(framework: [ICVersion(3, 0)], message: [ICVersion(1, 1)])
        tooMany.replaceSubrange(28..<30, with: le16(101))
        let a = try ICNegotiation.respond(to: tooMany, supported: .fcopy)
        #expect(a.chosen == nil)
        #expect(a.problem == .invalidField(structure: "icmsg_negotiate", field: "icframe_vercnt", reason: "101 > 100"))
        #expect(try ICMessageHeader.decode(from: a.response).status == .fail)

        var shortForCounts = negotiatePayload(framework: [ICVersion(3, 0)], message: [ICVersion(1, 1)])
        shortForCounts.replaceSubrange(30..<32, with: le16(3))  // claims 3 message versions, carries 1
        let b = try ICNegotiation.respond(to: shortForCounts, supported: .fcopy)
        #expect(b.chosen == nil)
        #expect(b.problem == .truncated(structure: "icmsg_negotiate", needed: 52, got: 44))
        #expect(b.response.count == 44)

        let bare = Array(negotiatePayload(framework: [], message: []).prefix(32))
        let c = try ICNegotiation.respond(to: bare, supported: .fcopy)
        #expect(c.chosen == nil)
        #expect(c.response.count == 32)

        #expect(throws: WireError.truncated(structure: "icmsg_negotiate", needed: 32, got: 31)) {
            try ICNegotiation.respond(to: Array(bare.prefix(31)), supported: .fcopy)
        }
    }

    @Test func garbageNeverTraps() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let n = Int.random(in: 0..<80, using: &generator)
            var bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if n > 31 && Bool.random() { bytes[28] = UInt8.random(in: 0..<4); bytes[29] = 0; bytes[30] = UInt8.random(in: 0..<4); bytes[31] = 0 }
            if let result = try? ICNegotiation.respond(to: bytes, supported: .shutdown) {
                #expect(result.response.count == bytes.count)
            } else {
                #expect(n < 32)
            }
        }
    }

    @Test func versionTables() {
        #expect(ICServiceVersions.shutdown.message == [ICVersion(3, 2), ICVersion(3, 1), ICVersion(3, 0), ICVersion(1, 0)])
        #expect(ICServiceVersions.timeSync.message == [ICVersion(4, 0), ICVersion(3, 0), ICVersion(1, 0)])
        #expect(ICServiceVersions.heartbeat.framework == [ICVersion(3, 0), ICVersion(1, 0)])
        #expect(ICServiceVersions.kvp.message == [ICVersion(4, 0), ICVersion(3, 0), ICVersion(1, 0)])
        #expect(ICServiceVersions.vss == ICServiceVersions(framework: [ICVersion(3, 0)], message: [ICVersion(5, 0)]))
        #expect(ICServiceVersions.fcopy == ICServiceVersions(framework: [ICVersion(3, 0)], message: [ICVersion(1, 1)]))
    }
}

@Suite struct FCopyWireMessageTests {
    func utf16Field(_ s: String) -> [UInt8] {
        var out = s.utf16.flatMap { le16($0) }
        out += [UInt8](repeating: 0, count: 520 - out.count)
        return out
    }

    var startGolden: [UInt8] {
        le32(0)  // operation START_FILE_COPY
            + [UInt8](repeating: 0, count: 32)  // service_id0, service_id1
            + utf16Field("bericht-é.txt")  // file_name u16[260] @36
            + utf16Field("/tmp/in")  // path_name u16[260] @556
            + le32(3)  // copy_flags OVER_WRITE|CREATE_PATH @1076
            + le64(123_456)  // file_size @1080
    }

    @Test func startGoldenBytes() throws {
        let golden = startGolden
        #expect(golden.count == 1088)
        let message = try FCopyWireMessage.decode(body: golden)
        let start = FCopyWireMessage.Start(fileName: "bericht-é.txt", pathName: "/tmp/in", flags: [.overwrite, .createPath], fileSize: 123_456)
        #expect(message == .startCopy(start))
        #expect(try message.encode() == golden)
        // With the IC header and ring padding (1116 → 1120 bytes), as it arrives from the ring.
        let payload = ICMessage.request(type: .fcopy, frameworkVersion: ICVersion(3, 0), messageVersion: ICVersion(1, 1), body: golden).encode() + [0, 0, 0, 0]
        #expect(try FCopyWireMessage.decode(fromPayload: payload) == .startCopy(start))
    }

    @Test func writeGoldenBytes() throws {
        let data: [UInt8] = [0xDE, 0xAD, 0xBE, 0xEF, 0x01]
        let golden = le32(1)  // operation WRITE_TO_FILE
            + [UInt8](repeating: 0, count: 32)  // service ids
            + le32(0)  // pad @36
            + le64(0x1_0000_0000)  // offset @40
            + le32(5)  // size @48
            + data + [UInt8](repeating: 0, count: 6144 - 5)  // data[6144] @52
        #expect(golden.count == 6196)
        let message = try FCopyWireMessage.decode(body: golden)
        #expect(message == .writeToFile(offset: 0x1_0000_0000, data: data[...]))
        #expect(try message.encode() == golden)
        #expect(try FCopyWireMessage.complete.encode() == le32(2) + [UInt8](repeating: 0, count: 32))
        #expect(try FCopyWireMessage.decode(body: le32(3) + [UInt8](repeating: 0, count: 32)) == .cancel)
    }

    @Test func rejectsBadInput() throws {
        // Unpaired surrogate in file_name.
        var bad = startGolden
        bad.replaceSubrange(36..<38, with: le16(0xD800))
        #expect(throws: WireError.invalidField(structure: "hv_start_fcopy", field: "file_name", reason: "invalid UTF-16 (unpaired surrogate)")) {
            try FCopyWireMessage.decode(body: bad)
        }
        // path_name without its NUL.
        var unterminated = startGolden
        unterminated.replaceSubrange(556..<1076, with: [UInt8](repeating: 0x41, count: 520))
        #expect(throws: WireError.self) { try FCopyWireMessage.decode(body: unterminated) }
        // Truncated START.
        #expect(throws: WireError.truncated(structure: "hv_start_fcopy", needed: 1088, got: 1087)) {
            try FCopyWireMessage.decode(body: Array(startGolden.prefix(1087)))
        }
        // WRITE with size > 6144.
        var big = try FCopyWireMessage.writeToFile(offset: 0, data: [1][...]).encode()
        big.replaceSubrange(48..<52, with: le32(6145))
        #expect(throws: WireError.invalidField(structure: "hv_do_fcopy", field: "size", reason: "6145 > 6144")) {
            try FCopyWireMessage.decode(body: big)
        }
        // WRITE whose size runs past the bytes received.
        let shortWrite = le32(1) + [UInt8](repeating: 0, count: 44) + le32(100) + [UInt8](repeating: 7, count: 60)
        #expect(throws: WireError.truncated(structure: "hv_do_fcopy", needed: 152, got: 112)) {
            try FCopyWireMessage.decode(body: shortWrite)
        }
        // Oversized, unknown operation, shorter than the header, wrong IC type.
        #expect(throws: WireError.self) { try FCopyWireMessage.decode(body: le32(2) + [UInt8](repeating: 0, count: 6200)) }
        #expect(throws: WireError.unknownCode(structure: "hv_fcopy_hdr", field: "operation", value: 9)) {
            try FCopyWireMessage.decode(body: le32(9) + [UInt8](repeating: 0, count: 32))
        }
        #expect(throws: WireError.self) { try FCopyWireMessage.decode(body: [2, 0, 0]) }
        let wrongType = ICMessage.request(type: .shutdown, frameworkVersion: ICVersion(3, 0), messageVersion: ICVersion(3, 0), body: le32(2) + [UInt8](repeating: 0, count: 32)).encode()
        #expect(throws: WireError.self) { try FCopyWireMessage.decode(fromPayload: wrongType) }
        // Encoder limits.
        let longName = String(repeating: "a", count: 260)
        #expect(throws: WireError.self) {
            try FCopyWireMessage.startCopy(.init(fileName: longName, pathName: "/", flags: [], fileSize: 0)).encode()
        }
        #expect(throws: WireError.self) { try FCopyWireMessage.writeToFile(offset: 0, data: [UInt8](repeating: 0, count: 6145)[...]).encode() }
    }

    @Test func garbageNeverTraps() {
        var generator = SystemRandomNumberGenerator()
        for i in 0..<3000 {
            let n = [0, 35, 36, 52, 1087, 1088, 1100, 6196, 6203, 6204][i % 10]
            var bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if n >= 4 { bytes[0] = UInt8(i % 5); bytes[1] = 0; bytes[2] = 0; bytes[3] = 0 }
            if let message = try? FCopyWireMessage.decode(body: bytes) {
                if case .writeToFile(_, let data) = message { #expect(data.count <= 6144) }
            }
        }
    }
}
