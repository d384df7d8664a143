import Testing
@testable import HVWire

/// Golden bytes and round trips for `struct hv_kvp_msg` (7432 bytes) as relayed on
/// /dev/vmbus/hv_kvp. Offsets are written out as numbers from PROTOCOL.md §2.1 on purpose:
/// these tests check the encoders against the documented layout, not against `KVPLayout`.
@Suite("KVP messages")
struct KVPMessageTests {
    static let size = 7432

    // MARK: Requests (kernel → daemon)

    @Test("GET request: golden bytes")
    func getGolden() throws {
        let bytes = KVPRequest.get(pool: 3, key: Array("HostName".utf8)).encode()
        expectGolden(bytes, size: Self.size, [
            Field(0, [0], "kvp_hdr.operation = KVP_OP_GET (0)"),
            Field(1, [3], "kvp_hdr.pool = KVP_POOL_AUTO_EXTERNAL"),
            Field(8, le32(9), "kvp_get.data.key_size = 8 bytes + NUL"),
            Field(16, cstr("HostName"), "kvp_get.data.key (UTF-8, NUL-terminated)"),
        ])
        #expect(try KVPRequest.decode(bytes) == .get(pool: 3, key: Array("HostName".utf8)))
    }

    @Test("SET request: golden bytes")
    func setGolden() throws {
        let x = KVPExchange(valueType: KVPValueType.string, key: Array("VirtualMachineName".utf8), value: Array("vm-01".utf8))
        let bytes = KVPRequest.set(pool: 0, x).encode()
        expectGolden(bytes, size: Self.size, [
            Field(0, [1], "kvp_hdr.operation = KVP_OP_SET (1)"),
            Field(1, [0], "kvp_hdr.pool = KVP_POOL_EXTERNAL"),
            Field(4, le32(1), "kvp_set.data.value_type = REG_SZ"),
            Field(8, le32(19), "kvp_set.data.key_size = 18 + NUL"),
            Field(12, le32(6), "kvp_set.data.value_size = 5 + NUL"),
            Field(16, cstr("VirtualMachineName"), "kvp_set.data.key"),
            Field(528, cstr("vm-01"), "kvp_set.data.value"),
        ])
        #expect(try KVPRequest.decode(bytes) == .set(pool: 0, x))
    }

    @Test("SET request with REG_U64 keeps the type; the kernel has already rendered the number as text")
    func setU64() throws {
        let x = KVPExchange(valueType: KVPValueType.u64, key: Array("n".utf8), value: Array("18446744073709551615".utf8))
        let bytes = KVPRequest.set(pool: 0, x).encode()
        #expect(Array(bytes[4..<8]) == le32(8))  // value_type = REG_U64
        #expect(Array(bytes[12..<16]) == le32(21))  // value_size = 20 digits + NUL
        #expect(try KVPRequest.decode(bytes) == .set(pool: 0, x))
    }

    @Test("DELETE request: golden bytes")
    func deleteGolden() throws {
        let bytes = KVPRequest.delete(pool: 0, key: Array("k1".utf8)).encode()
        expectGolden(bytes, size: Self.size, [
            Field(0, [2], "kvp_hdr.operation = KVP_OP_DELETE (2)"),
            Field(1, [0], "kvp_hdr.pool"),
            Field(4, le32(3), "kvp_delete.key_size = 2 + NUL"),
            Field(8, cstr("k1"), "kvp_delete.key"),
        ])
        #expect(try KVPRequest.decode(bytes) == .delete(pool: 0, key: Array("k1".utf8)))
    }

    @Test("ENUMERATE request: golden bytes")
    func enumerateGolden() throws {
        let bytes = KVPRequest.enumerate(pool: 2, index: 0x0102_0304).encode()
        expectGolden(bytes, size: Self.size, [
            Field(0, [3], "kvp_hdr.operation = KVP_OP_ENUMERATE (3)"),
            Field(1, [2], "kvp_hdr.pool = KVP_POOL_AUTO"),
            Field(4, [0x04, 0x03, 0x02, 0x01], "kvp_enum_data.index (LE)"),
        ])
        #expect(try KVPRequest.decode(bytes) == .enumerate(pool: 2, index: 0x0102_0304))
    }

    static let mac = "00:15:5D:0A:1B:2C"

    @Test("GET_IP_INFO request: golden bytes (only adapter_id and addr_family are filled by the kernel)")
    func getIPInfoGolden() throws {
        let info = KVPIPInfo(adapterID: Self.mac, addressFamily: KVPIPInfo.familyIPv4 | KVPIPInfo.familyIPv6)
        let bytes = KVPRequest.getIPInfo(pool: 0, info).encode()
        expectGolden(bytes, size: Self.size, [
            Field(0, [4], "kvp_hdr.operation = KVP_OP_GET_IP_INFO (4)"),
            Field(4, cstr(Self.mac), "kvp_ip_val.adapter_id (UTF-8 in a u16[128])"),
            Field(260, [3], "kvp_ip_val.addr_family = IPV4|IPV6"),
        ])
        #expect(try KVPRequest.decode(bytes) == .getIPInfo(pool: 0, info))
    }

    @Test("SET_IP_INFO request: golden bytes")
    func setIPInfoGolden() throws {
        let info = KVPIPInfo(adapterID: "{4d2a3b1c-0000-1111-2222-333344445555}", addressFamily: 1, dhcpEnabled: true,
                             ipAddresses: "10.0.0.5;10.0.0.6", subnets: "255.255.255.0;255.255.0.0",
                             gateways: "10.0.0.1", dnsServers: "10.0.0.2;10.0.0.3")
        let bytes = KVPRequest.setIPInfo(pool: 0, info).encode()
        expectGolden(bytes, size: Self.size, [
            Field(0, [5], "kvp_hdr.operation = KVP_OP_SET_IP_INFO (5)"),
            Field(4, cstr(info.adapterID), "kvp_ip_val.adapter_id"),
            Field(260, [1], "kvp_ip_val.addr_family = IPV4"),
            Field(261, [1], "kvp_ip_val.dhcp_enabled"),
            Field(262, cstr(info.ipAddresses), "kvp_ip_val.ip_addr"),
            Field(2310, cstr(info.subnets), "kvp_ip_val.sub_net"),
            Field(4358, cstr(info.gateways), "kvp_ip_val.gate_way"),
            Field(5382, cstr(info.dnsServers), "kvp_ip_val.dns_addr"),
        ])
        #expect(try KVPRequest.decode(bytes) == .setIPInfo(pool: 0, info))
    }

    static let requests: [KVPRequest] = [
        .get(pool: 0, key: Array("k".utf8)),
        .get(pool: 4, key: []),
        .set(pool: 1, KVPExchange(key: "ключ", value: "値🙂")),
        .set(pool: 0, KVPExchange(valueType: KVPValueType.u32, key: Array("n".utf8), value: Array("42".utf8))),
        .set(pool: 0, KVPExchange(key: [UInt8](repeating: 0x61, count: 511), value: [UInt8](repeating: 0x62, count: 2047))),
        .delete(pool: 0, key: Array("gone".utf8)),
        .enumerate(pool: 1, index: 0),
        .enumerate(pool: 255, index: UInt32.max),
        .getIPInfo(pool: 0, KVPIPInfo(adapterID: "00:15:5D:00:00:01", addressFamily: 2)),
        .setIPInfo(pool: 0, KVPIPInfo(adapterID: "{guid}", addressFamily: 3, dhcpEnabled: false,
                                      ipAddresses: "fe80::1;10.1.2.3", subnets: "/64;255.0.0.0",
                                      gateways: "fe80::fffe;", dnsServers: "")),
    ]

    @Test("every request survives encode → decode", arguments: requests)
    func requestRoundTrip(_ request: KVPRequest) throws {
        let bytes = request.encode()
        #expect(bytes.count == Self.size)
        #expect(bytes[0] == request.operation.rawValue)
        #expect(bytes[1] == request.pool)
        let decoded = try KVPRequest.decode(bytes)
        #expect(decoded == request)
        #expect(decoded.encode() == bytes, "re-encoding is byte-identical")
    }

    @Test("over-long keys and values are cut to 511 / 2047 bytes with the size counting the NUL")
    func encodeCutsToField() throws {
        let bytes = KVPRequest.set(pool: 0, KVPExchange(key: [UInt8](repeating: 0x6B, count: 600),
                                                        value: [UInt8](repeating: 0x76, count: 3000))).encode()
        #expect(Array(bytes[8..<12]) == le32(512))  // key_size = 511 + NUL
        #expect(Array(bytes[12..<16]) == le32(2048))  // value_size = 2047 + NUL
        #expect(bytes[16 + 511] == 0 && bytes[528 + 2047] == 0)
        guard case .set(_, let x) = try KVPRequest.decode(bytes) else {
            Issue.record("not a SET")
            return
        }
        #expect(x.key.count == 511 && x.value.count == 2047)
    }

    @Test("a cut never splits a UTF-8 character (the kernel drops a character that does not fit)")
    func encodeCutsAtCharacterBoundary() throws {
        // 510 ASCII bytes then a 3-byte character: only 1 byte would fit, so the character goes.
        let key = [UInt8](repeating: 0x61, count: 510) + Array("€".utf8)
        let bytes = KVPRequest.get(pool: 0, key: key).encode()
        #expect(Array(bytes[8..<12]) == le32(511))  // key_size = 510 + NUL
        #expect(try KVPRequest.decode(bytes) == .get(pool: 0, key: Array(key.prefix(510))))

        let info = KVPIPInfo(adapterID: String(repeating: "x", count: 127) + "é")  // 127 + 2 bytes > 128
        let ip = KVPRequest.getIPInfo(pool: 0, info).encode()
        guard case .getIPInfo(_, let back) = try KVPRequest.decode(ip) else {
            Issue.record("not GET_IP_INFO")
            return
        }
        #expect(back.adapterID == String(repeating: "x", count: 127))
    }

    @Test("IP strings in requests are cut where the kernel cuts them: 128 / 1024 / 1024 / 512 / 1024 bytes")
    func requestIPStringsKernelLimits() throws {
        let long = KVPIPInfo(adapterID: String(repeating: "a", count: 300), addressFamily: 1, dhcpEnabled: true,
                             ipAddresses: String(repeating: "1", count: 3000), subnets: String(repeating: "2", count: 3000),
                             gateways: String(repeating: "3", count: 3000), dnsServers: String(repeating: "4", count: 3000))
        let bytes = KVPRequest.setIPInfo(pool: 0, long).encode()
        guard case .setIPInfo(_, let got) = try KVPRequest.decode(bytes) else {
            Issue.record("not SET_IP_INFO")
            return
        }
        #expect(got.adapterID.utf8.count == 128)  // MAX_ADAPTER_ID_SIZE bytes (process_ib_ipinfo)
        #expect(got.ipAddresses.utf8.count == 1024)  // MAX_IP_ADDR_SIZE
        #expect(got.subnets.utf8.count == 1024)
        #expect(got.gateways.utf8.count == 512)  // MAX_GATEWAY_SIZE
        #expect(got.dnsServers.utf8.count == 1024)

        // A daemon reply may use each whole field (less the NUL).
        let reply = KVPReply.ipInfo(long, echoing: KVPRequest.getIPInfo(pool: 0, KVPIPInfo(adapterID: "m")).encode())
        let info = try #require(try KVPReply.decode(reply, for: .getIPInfo).ipInfo)
        #expect(info.adapterID.utf8.count == 255)
        #expect(info.ipAddresses.utf8.count == 2047)
        #expect(info.gateways.utf8.count == 1023)
    }

    @Test("the request decoder accepts IP strings up to the whole field, beyond the kernel's own cut")
    func requestDecoderLenientOnLength() throws {
        var bytes = KVPRequest.getIPInfo(pool: 0, KVPIPInfo(adapterID: "")).encode()
        for i in 4..<(4 + 255) { bytes[i] = 0x41 }  // 255 'A's + the field's last byte as NUL
        guard case .getIPInfo(_, let got) = try KVPRequest.decode(bytes) else {
            Issue.record("not GET_IP_INFO")
            return
        }
        #expect(got.adapterID == String(repeating: "A", count: 255))
    }

    // MARK: Registration

    @Test("registration message: a zeroed 7432-byte hv_kvp_msg with operation 100")
    func registrationGolden() throws {
        let bytes = KVPRegistration.message()
        expectGolden(bytes, size: Self.size, [Field(0, [100], "kvp_hdr.operation = KVP_OP_REGISTER1")])
        #expect(try KVPRegistration.decodeMessage(bytes) == 100)
        let legacy = KVPRegistration.message(code: KVPRegistration.legacy)
        expectGolden(legacy, size: Self.size, [Field(0, [4], "kvp_hdr.operation = KVP_OP_REGISTER")])
        #expect(try KVPRegistration.decodeMessage(legacy) == 4)
    }

    @Test("registration reply: the code and HV_DRV_VERSION \"3.1\" at @4")
    func registrationReplyGolden() throws {
        let bytes = KVPRegistration.reply()
        expectGolden(bytes, size: Self.size, [
            Field(0, [100], "kvp_hdr.operation = KVP_OP_REGISTER1"),
            Field(4, [0x33, 0x2E, 0x31, 0x00], "kvp_register.version = \"3.1\" NUL"),
        ])
        #expect(try KVPRegistration.decodeReply(bytes) == "3.1")
        let legacy = KVPRegistration.reply(code: 4, version: "4.0")
        #expect(try KVPRegistration.decodeReply(legacy, expecting: 4) == "4.0")
    }

    @Test("registration reply with another code is refused")
    func registrationReplyWrongCode() {
        let e = wireError { () throws(WireError) in try KVPRegistration.decodeReply(KVPRegistration.reply(code: 4)) }
        guard case .invalidField(_, let field, _) = e else {
            Issue.record("expected invalidField, got \(String(describing: e))")
            return
        }
        #expect(field == "operation")
    }

    @Test("registration accepts writes of 7432 bytes or more (the kernel checks len < sizeof)")
    func registrationLongWrite() throws {
        #expect(try KVPRegistration.decodeMessage(KVPRegistration.message() + [1, 2, 3]) == 100)
        #expect(wireError { () throws(WireError) in try KVPRegistration.decodeMessage(Array(KVPRegistration.message().dropLast())) }
                == .truncated(structure: "hv_kvp_msg(register)", needed: 7432, got: 7431))
    }

    // MARK: Replies (daemon → kernel)

    static func setRequestBytes() -> [UInt8] {
        KVPRequest.set(pool: 0, KVPExchange(key: "k", value: "v")).encode()
    }

    @Test("status reply: the request echoed with error in bytes 0-3")
    func statusGolden() throws {
        let request = Self.setRequestBytes()
        let bytes = KVPReply.status(.noMoreItems, echoing: request)
        expectGolden(bytes, size: Self.size, [
            Field(0, [0x03, 0x01, 0x07, 0x80], "error = HV_S_CONT 0x80070103 (overlays operation and pool)"),
            Field(4, le32(1), "echoed value_type"),
            Field(8, le32(2), "echoed key_size"),
            Field(12, le32(2), "echoed value_size"),
            Field(16, cstr("k"), "echoed key"),
            Field(528, cstr("v"), "echoed value"),
        ])
        let d = try KVPReply.decode(bytes, for: .set)
        #expect(d == KVPReply.Decoded(status: .noMoreItems, key: nil, value: nil, ipInfo: nil))
        #expect(try KVPReply.decode(KVPReply.status(.ok, echoing: request), for: .set).status == .ok)
    }

    @Test("status reply pads a short request and cuts a long one to 7432 bytes")
    func statusEchoSizes() {
        let short = KVPReply.status(.fail, echoing: [9, 9, 9, 9, 9, 9])
        expectGolden(short, size: Self.size, [
            Field(0, le32(0x8000_4005), "error = HV_E_FAIL"),
            Field(4, [9, 9], "the request's bytes 4-5"),
        ])
        let long = KVPReply.status(.ok, echoing: [UInt8](repeating: 7, count: 8000))
        #expect(long.count == Self.size)
        #expect(Array(long[0..<4]) == [0, 0, 0, 0])
        #expect(long[7431] == 7)
    }

    @Test("GET reply: value in the kvp_get layout at @528, value_size counts the NUL, REG_SZ")
    func getReplyGolden() throws {
        let request = KVPRequest.get(pool: 0, key: Array("key".utf8)).encode()
        let bytes = KVPReply.get(value: Array("hello".utf8), echoing: request)
        expectGolden(bytes, size: Self.size, [
            Field(0, le32(0), "error = HV_S_OK"),
            Field(4, le32(1), "kvp_get.data.value_type = REG_SZ"),
            Field(8, le32(4), "echoed key_size"),
            Field(12, le32(6), "kvp_get.data.value_size = 5 + NUL"),
            Field(16, cstr("key"), "echoed key"),
            Field(528, cstr("hello"), "kvp_get.data.value"),
        ])
    }

    @Test("GET reply: the kernel reads the value back from @532 (PROTOCOL.md §6.3 K1)")
    func getReplyKernelOffset() throws {
        let request = KVPRequest.get(pool: 0, key: Array("key".utf8)).encode()
        // Written at the uapi offset, the kernel loses the first four bytes — faithfully emulated.
        let uapi = KVPReply.get(value: Array("hello world".utf8), echoing: request)
        #expect(try KVPReply.decode(uapi, for: .get).value == Array("o world".utf8))
        // Written where the kernel reads, the value arrives whole.
        let atKernel = KVPReply.get(value: Array("hello world".utf8), echoing: request, valueOffset: KVPLayout.enumerateValue)
        #expect(Array(atKernel[532..<544]) == cstr("hello world"))
        #expect(Array(atKernel[528..<532]) == [0, 0, 0, 0], "the @528 area is cleared")
        #expect(try KVPReply.decode(atKernel, for: .get).value == Array("hello world".utf8))
        // The decoder can also read the uapi offset when asked.
        #expect(try KVPReply.decode(uapi, for: .get, getValueOffset: KVPLayout.exchangeValue).value == Array("hello world".utf8))
    }

    @Test("GET reply clears stale request bytes in both value areas")
    func getReplyClearsStaleValue() {
        var request = KVPRequest.get(pool: 0, key: Array("k".utf8)).encode()
        for i in 528..<(528 + 2052) { request[i] = 0xEE }
        let bytes = KVPReply.get(value: Array("v".utf8), echoing: request)
        #expect(Array(bytes[528..<530]) == cstr("v"))
        #expect(bytes[530..<(528 + 2052)].allSatisfy { $0 == 0 })
    }

    @Test("ENUMERATE reply: key @20, value @532, sizes with NUL, REG_SZ, index kept")
    func enumerateReplyGolden() throws {
        let request = KVPRequest.enumerate(pool: 2, index: 4).encode()
        let bytes = KVPReply.enumerate(key: Array("OSBuildNumber".utf8), value: Array("6.1.0-28-amd64".utf8), echoing: request)
        expectGolden(bytes, size: Self.size, [
            Field(0, le32(0), "error = HV_S_OK"),
            Field(4, le32(4), "echoed kvp_enum_data.index"),
            Field(8, le32(1), "kvp_enum_data.data.value_type = REG_SZ"),
            Field(12, le32(14), "kvp_enum_data.data.key_size = 13 + NUL"),
            Field(16, le32(15), "kvp_enum_data.data.value_size = 14 + NUL"),
            Field(20, cstr("OSBuildNumber"), "kvp_enum_data.data.key"),
            Field(532, cstr("6.1.0-28-amd64"), "kvp_enum_data.data.value"),
        ])
        let d = try KVPReply.decode(bytes, for: .enumerate)
        #expect(d.status == .ok)
        #expect(d.key == Array("OSBuildNumber".utf8))
        #expect(d.value == Array("6.1.0-28-amd64".utf8))
    }

    @Test("GET_IP_INFO reply: every string at its offset, adapter_id kept")
    func ipInfoReplyGolden() throws {
        let request = KVPRequest.getIPInfo(pool: 0, KVPIPInfo(adapterID: Self.mac, addressFamily: 3)).encode()
        let info = KVPIPInfo(adapterID: Self.mac, addressFamily: 3, dhcpEnabled: true, ipAddresses: "10.0.0.4;fe80::215:5dff:fe0a:1b2c",
                             subnets: "255.255.255.0;/64", gateways: "10.0.0.1;", dnsServers: "168.63.129.16;")
        let bytes = KVPReply.ipInfo(info, echoing: request)
        expectGolden(bytes, size: Self.size, [
            Field(0, le32(0), "error = HV_S_OK"),
            Field(4, cstr(Self.mac), "kvp_ip_val.adapter_id"),
            Field(260, [3], "kvp_ip_val.addr_family"),
            Field(261, [1], "kvp_ip_val.dhcp_enabled"),
            Field(262, cstr(info.ipAddresses), "kvp_ip_val.ip_addr"),
            Field(2310, cstr(info.subnets), "kvp_ip_val.sub_net"),
            Field(4358, cstr(info.gateways), "kvp_ip_val.gate_way"),
            Field(5382, cstr(info.dnsServers), "kvp_ip_val.dns_addr"),
        ])
        #expect(try KVPReply.decode(bytes, for: .getIPInfo).ipInfo == info)
    }

    @Test("reply decode: a failure status carries no data, whatever the operation", arguments: KVPOperation.allCases)
    func replyFailureHasNoData(_ op: KVPOperation) throws {
        var bytes = [UInt8](repeating: 0xFF, count: Self.size)  // garbage everywhere but the status
        bytes.replaceSubrange(0..<4, with: le32(HResult.fail.rawValue))
        #expect(try KVPReply.decode(bytes, for: op) == KVPReply.Decoded(status: .fail, key: nil, value: nil, ipInfo: nil))
    }

    @Test("reply decode: SET, DELETE and SET_IP_INFO replies carry only the status",
          arguments: [KVPOperation.set, .delete, .setIPInfo])
    func replyStatusOnly(_ op: KVPOperation) throws {
        let bytes = KVPReply.status(.ok, echoing: [UInt8](repeating: 0xFF, count: Self.size))
        #expect(try KVPReply.decode(bytes, for: op) == KVPReply.Decoded(status: .ok, key: nil, value: nil, ipInfo: nil))
    }

    @Test("reply decode accepts a write longer than 7432 bytes and ignores the tail, like kvp_on_msg")
    func replyLongWrite() throws {
        let request = KVPRequest.enumerate(pool: 1, index: 0).encode()
        let bytes = KVPReply.enumerate(key: Array("a".utf8), value: Array("b".utf8), echoing: request) + [0xFF, 0xFF]
        let d = try KVPReply.decode(bytes, for: .enumerate)
        #expect(d.key == Array("a".utf8) && d.value == Array("b".utf8))
    }

    @Test("operation and pool names")
    func names() {
        #expect(KVPOperation.allCases.map(\.description) == ["GET", "SET", "DELETE", "ENUMERATE", "GET_IP_INFO", "SET_IP_INFO"])
        #expect(KVPPool.allCases.map(\.description) == ["external", "guest", "auto", "auto_external", "auto_internal"])
        #expect(KVPRequest.setIPInfo(pool: 0, KVPIPInfo(adapterID: "")).operation == .setIPInfo)
    }
}
