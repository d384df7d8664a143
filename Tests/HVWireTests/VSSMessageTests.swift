import Testing
@testable import HVWire

/// Golden bytes and round trips for `struct hv_vss_msg` (12 bytes) and the VSS registration
/// handshake (PROTOCOL.md §1.4, §3.2).
@Suite("VSS messages")
struct VSSMessageTests {
    @Test("FREEZE request: golden bytes")
    func freezeGolden() throws {
        let bytes = VSSRequest(operation: .freeze).encode()
        expectGolden(bytes, size: 12, [Field(0, [5], "vss_hdr.operation = VSS_OP_FREEZE")])
        let r = try VSSRequest.decode(bytes)
        #expect(r.operation == .freeze && r.flags == 0)
    }

    @Test("HOT_BACKUP request with vss_cf.flags: golden bytes")
    func hotBackupGolden() throws {
        let bytes = VSSRequest(operation: .hotBackup, flags: vssNoAutoRecoveryFlag).encode()
        expectGolden(bytes, size: 12, [
            Field(0, [2], "vss_hdr.operation = VSS_OP_HOT_BACKUP"),
            Field(8, le32(5), "vss_cf.flags = VSS_HBU_NO_AUTO_RECOVERY"),
        ])
        #expect(try VSSRequest.decode(bytes) == VSSRequest(operation: .hotBackup, flags: 5))
    }

    @Test("every operation survives encode → decode", arguments: VSSOperation.allCases)
    func requestRoundTrip(_ op: VSSOperation) throws {
        let request = VSSRequest(operation: op, flags: 0xA1B2_C3D4)
        let bytes = request.encode()
        #expect(bytes[0] == op.rawValue)
        #expect(Array(bytes[8..<12]) == [0xD4, 0xC3, 0xB2, 0xA1])
        #expect(try VSSRequest.decode(bytes) == request)
    }

    @Test("reserved header bytes are ignored on decode")
    func reservedIgnored() throws {
        let bytes: [UInt8] = [6, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]
        #expect(try VSSRequest.decode(bytes) == VSSRequest(operation: .thaw))
    }

    @Test("reply: error as s32 in bytes 0-3, flags at 8, exactly 12 bytes")
    func replyGolden() throws {
        let bytes = VSSReply(status: .fail).encode()
        expectGolden(bytes, size: 12, [Field(0, [0x05, 0x40, 0x00, 0x80], "error = HV_E_FAIL 0x80004005")])
        #expect(try VSSReply.decode(bytes) == VSSReply(status: .fail))
        let ok = VSSReply(status: .ok, flags: 7).encode()
        expectGolden(ok, size: 12, [Field(8, le32(7), "vss_cf.flags")])
        #expect(try VSSReply.decode(ok) == VSSReply(status: .ok, flags: 7))
    }

    @Test("reply decode insists on exactly 12 bytes (vss_on_msg: len != sizeof → EINVAL)")
    func replyExactSize() {
        let good = VSSReply(status: .ok).encode()
        #expect(wireError { () throws(WireError) in try VSSReply.decode(good + [0]) }
                == .oversized(structure: "hv_vss_msg(reply)", limit: 12, got: 13))
        #expect(wireError { () throws(WireError) in try VSSReply.decode(Array(good.dropLast())) }
                == .truncated(structure: "hv_vss_msg(reply)", needed: 12, got: 11))
    }

    @Test("registration: 12 bytes with operation 129; the kernel answers u32 129")
    func registrationGolden() throws {
        let message = VSSRegistration.message()
        expectGolden(message, size: 12, [Field(0, [129], "vss_hdr.operation = VSS_OP_REGISTER1")])
        #expect(try VSSRegistration.decodeMessage(message) == 129)
        #expect(try VSSRegistration.decodeMessage(VSSRegistration.message(code: 128)) == 128)

        let reply = VSSRegistration.reply()
        #expect(reply == [129, 0, 0, 0])  // u32 LE VSS_OP_REGISTER1
        #expect(try VSSRegistration.decodeReply(reply) == 129)
    }

    @Test("registration reply with another version, or of another size, is refused")
    func registrationReplyRefused() {
        let e = wireError { () throws(WireError) in try VSSRegistration.decodeReply([128, 0, 0, 0]) }
        guard case .invalidField(_, "version", _) = e else {
            Issue.record("expected invalidField(version), got \(String(describing: e))")
            return
        }
        #expect(wireError { () throws(WireError) in try VSSRegistration.decodeReply([129, 0, 0]) } != nil)
        #expect(wireError { () throws(WireError) in try VSSRegistration.decodeReply([129, 0, 0, 0, 0]) } != nil)
    }

    @Test("registration message: other codes and other sizes are refused")
    func registrationMessageRefused() {
        #expect(wireError { () throws(WireError) in try VSSRegistration.decodeMessage(VSSRequest(operation: .freeze).encode()) }
                == .unknownCode(structure: "hv_vss_msg(register)", field: "operation", value: 5))
        #expect(wireError { () throws(WireError) in try VSSRegistration.decodeMessage(VSSRegistration.message() + [0]) } != nil)
        #expect(wireError { () throws(WireError) in try VSSRegistration.decodeMessage([129]) } != nil)
    }

    @Test("operation names and routing")
    func names() {
        #expect(VSSOperation.allCases.map(\.description) == [
            "CREATE", "DELETE", "HOT_BACKUP", "GET_DM_INFO", "BU_COMPLETE", "FREEZE", "THAW", "AUTO_RECOVER",
            "REGISTER", "REGISTER1",
        ])
        #expect(VSSOperation.allCases.filter(\.isDaemonOperation) == [.hotBackup, .freeze, .thaw])
    }
}
