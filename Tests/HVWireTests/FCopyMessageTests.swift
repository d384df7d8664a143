import Testing
@testable import HVWire

/// Golden bytes and round trips for the /dev/vmbus/hv_fcopy messages (PROTOCOL.md §4.1-4.2):
/// `hv_start_fcopy` (1088 B), `hv_do_fcopy` (6196 B), bare headers, 4-byte replies.
@Suite("File copy messages")
struct FCopyMessageTests {
    @Test("START_FILE_COPY: golden bytes (names as UTF-8 inside the u16 arrays)")
    func startGolden() throws {
        let start = FCopyStart(fileName: "data.bin", pathName: "/tmp/in/", flags: [.overwrite, .createPath],
                               fileSize: 0x0000_0001_0000_0002)
        let bytes = FCopyRequest.start(start).encode()
        expectGolden(bytes, size: 1088, [
            Field(0, le32(0), "hdr.operation = START_FILE_COPY"),
            Field(36, cstr("data.bin"), "file_name (UTF-8 bytes, NUL)"),
            Field(556, cstr("/tmp/in/"), "path_name"),
            Field(1076, le32(3), "copy_flags = OVER_WRITE | CREATE_PATH"),
            Field(1080, le64(0x0000_0001_0000_0002), "file_size (u64 LE)"),
        ])
        #expect(try FCopyRequest.decode(bytes) == .start(start))
    }

    @Test("WRITE_TO_FILE: golden bytes")
    func writeGolden() throws {
        let payload: [UInt8] = [0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x01]
        let write = FCopyWrite(offset: 0x1122_3344_5566_7788, data: payload[...])
        let bytes = FCopyRequest.write(write).encode()
        expectGolden(bytes, size: 6196, [
            Field(0, le32(1), "hdr.operation = WRITE_TO_FILE"),
            Field(40, [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11], "offset (u64 LE)"),
            Field(48, le32(6), "size"),
            Field(52, payload, "data"),
        ])
        guard case .write(let back) = try FCopyRequest.decode(bytes) else {
            Issue.record("not a WRITE")
            return
        }
        #expect(back.offset == write.offset)
        #expect(Array(back.data) == payload)
        #expect(back.data.startIndex == 52, "the data is a slice of the message, not a copy")
    }

    @Test("a full 6144-byte fragment round-trips; a longer one is cut to DATA_FRAGMENT on encode")
    func writeFullFragment() throws {
        var g = SeededGenerator(seed: 7)
        let data = g.bytes(6144)
        let bytes = FCopyRequest.write(FCopyWrite(offset: 0, data: data[...])).encode()
        #expect(Array(bytes[48..<52]) == le32(6144))
        #expect(try FCopyRequest.decode(bytes) == .write(FCopyWrite(offset: 0, data: bytes[52..<6196])))
        let cut = FCopyRequest.write(FCopyWrite(offset: 0, data: (data + [1, 2, 3])[...])).encode()
        #expect(cut.count == 6196 && Array(cut[48..<52]) == le32(6144))
    }

    @Test("COMPLETE and CANCEL: a bare 36-byte header", arguments: [FCopyRequest.complete, .cancel])
    func headerOnly(_ request: FCopyRequest) throws {
        let bytes = request.encode()
        expectGolden(bytes, size: 36, [Field(0, le32(request.operation.rawValue), "hdr.operation")])
        #expect(try FCopyRequest.decode(bytes) == request)
    }

    @Test("COMPLETE and CANCEL arrive as raw host bytes of any length ≥ 4 (the kernel relays recv_len)")
    func headerOnlyLengths() throws {
        for n in [4, 36, 64, 100] {
            var bytes = [UInt8](repeating: 0xAB, count: n)
            bytes.replaceSubrange(0..<4, with: le32(2))
            #expect(try FCopyRequest.decode(bytes) == .complete, "length \(n)")
            bytes.replaceSubrange(0..<4, with: le32(3))
            #expect(try FCopyRequest.decode(bytes) == .cancel, "length \(n)")
        }
    }

    static let starts: [FCopyStart] = [
        FCopyStart(fileName: "a", pathName: "/", flags: [], fileSize: 0),
        FCopyStart(fileName: "über café.txt", pathName: "/srv/データ/", flags: .overwrite, fileSize: UInt64.max),
        FCopyStart(fileName: "🙂.log", pathName: "C:/not/linux", flags: .createPath, fileSize: 6144),
        FCopyStart(fileName: String(repeating: "n", count: 259), pathName: String(repeating: "p", count: 259),
                   flags: FCopyFlags(rawValue: 0xFFFF_FFFF), fileSize: 1),
    ]

    @Test("every START survives encode → decode", arguments: starts)
    func startRoundTrip(_ start: FCopyStart) throws {
        let bytes = FCopyRequest.start(start).encode()
        #expect(bytes.count == 1088)
        #expect(try FCopyRequest.decode(bytes) == .start(start))
    }

    @Test("over-long names are cut like the kernel cuts them: W_MAX_PATH - 1 = 259 bytes, whole characters only")
    func startNameCut() throws {
        let name = String(repeating: "a", count: 258) + "ß"  // 258 + 2 bytes: "ß" does not fit
        let path = String(repeating: "/d", count: 300)
        let bytes = FCopyRequest.start(FCopyStart(fileName: name, pathName: path, flags: [], fileSize: 0)).encode()
        #expect(bytes[36 + 258] == 0 && bytes[556 + 259] == 0)
        #expect(bytes[(36 + 259)..<556].allSatisfy { $0 == 0 } && bytes[(556 + 260)..<1076].allSatisfy { $0 == 0 })
        guard case .start(let back) = try FCopyRequest.decode(bytes) else {
            Issue.record("not a START")
            return
        }
        #expect(back.fileName == String(repeating: "a", count: 258))
        #expect(back.pathName == String(path.prefix(259)))
    }

    @Test("the decoder accepts names up to the whole 520-byte field")
    func startDecoderLenientOnLength() throws {
        var bytes = FCopyRequest.start(FCopyStart(fileName: "", pathName: "", flags: [], fileSize: 0)).encode()
        for i in 36..<(36 + 519) { bytes[i] = 0x66 }
        guard case .start(let back) = try FCopyRequest.decode(bytes) else {
            Issue.record("not a START")
            return
        }
        #expect(back.fileName == String(repeating: "f", count: 519))
    }

    @Test("reply: a bare 4-byte status")
    func replyGolden() throws {
        #expect(FCopyReply.encode(.alreadyExists) == [0x50, 0x00, 0x07, 0x80])  // HV_ERROR_ALREADY_EXISTS
        #expect(FCopyReply.encode(.ok) == [0, 0, 0, 0])
        #expect(try FCopyReply.decode(FCopyReply.encode(.diskFull)) == .diskFull)
        #expect(wireError { () throws(WireError) in try FCopyReply.decode([0, 0, 0, 0, 0]) }
                == .oversized(structure: "fcopy reply", limit: 4, got: 5))
        #expect(wireError { () throws(WireError) in try FCopyReply.decode([0, 0, 0]) }
                == .truncated(structure: "fcopy reply", needed: 4, got: 3))
    }

    @Test("registration: int 1 both ways; legacy 0 accepted from the daemon, other values refused")
    func registration() throws {
        #expect(FCopyRegistration.message() == [1, 0, 0, 0])  // FCOPY_CURRENT_VERSION
        #expect(FCopyRegistration.reply() == [1, 0, 0, 0])
        #expect(try FCopyRegistration.decodeMessage(FCopyRegistration.message()) == 1)
        #expect(try FCopyRegistration.decodeMessage(FCopyRegistration.message(version: 0)) == 0)
        #expect(try FCopyRegistration.decodeReply(FCopyRegistration.reply()) == 1)
        #expect(wireError { () throws(WireError) in try FCopyRegistration.decodeMessage([2, 0, 0, 0]) }
                == .unknownCode(structure: "fcopy registration", field: "version", value: 2))
        #expect(wireError { () throws(WireError) in try FCopyRegistration.decodeMessage([1, 0, 0, 0, 0]) } != nil)
        #expect(wireError { () throws(WireError) in try FCopyRegistration.decodeReply([0, 0, 0, 0]) } != nil)
        #expect(wireError { () throws(WireError) in try FCopyRegistration.decodeReply([1, 0, 0]) } != nil)
    }

    @Test("operation names and flags")
    func names() {
        #expect(FCopyOperation.allCases.map(\.description) == ["START_FILE_COPY", "WRITE_TO_FILE", "COMPLETE_FCOPY", "CANCEL_FCOPY"])
        #expect(FCopyFlags([.overwrite, .createPath]).rawValue == 3)
    }
}
