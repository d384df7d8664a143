import Foundation
import HVServiceKit
import HVSystem
import HVWire
import Testing

@testable import HVKVP

/// The service as the kernel sees it: requests encoded as the kernel would, replies decoded the
/// way `kvp_respond_to_host` reads them.
final class KVPHarness {
    let dir = TemporaryDirectory("svc")
    let service: KVPService

    init(facts: FixedSystemFacts = FixedSystemFacts(), configuration: KVPConfiguration = KVPConfiguration(), networkRoot: String = "/")
        throws
    {
        service = try KVPService(
            stateDirectory: dir.path, configuration: configuration, facts: facts, networkRoot: networkRoot,
            startResolverThread: false)
    }

    func send(_ request: KVPRequest) throws -> KVPReply.Decoded {
        try send(raw: request.encode(), op: request.operation).decoded
    }

    func send(raw: [UInt8], op: KVPOperation) throws -> (reply: RelayReply, decoded: KVPReply.Decoded) {
        let reply = service.handle(request: raw)
        #expect(reply.bytes.count == KVPLayout.messageSize)
        #expect(reply.status == HResult(try ByteReader(reply.bytes, structure: "reply").u32(at: 0)))
        return (reply, try KVPReply.decode(reply.bytes, for: op))
    }

    func set(_ pool: UInt8, _ key: String, _ value: String) throws -> HResult {
        try send(.set(pool: pool, KVPExchange(key: key, value: value))).status
    }

    /// ENUMERATE 0, 1, … until the first non-zero status, as the host does.
    func enumerate(_ pool: UInt8) throws -> (items: [(String, String)], end: HResult) {
        var out: [(String, String)] = []
        for index in UInt32(0)... {
            let r = try send(.enumerate(pool: pool, index: index))
            guard r.status == .ok else { return (out, r.status) }
            out.append((String(decoding: r.key ?? [], as: UTF8.self), String(decoding: r.value ?? [], as: UTF8.self)))
            if index > 100_000 { break }
        }
        return (out, .fail)
    }
}

@Suite struct ServiceTests {
    @Test func registersWithREGISTER1AndKeepsTheVersion() throws {
        let h = try KVPHarness()
        let message = h.service.registrationMessage()
        #expect(message.count == 7432)
        #expect(message[0] == 100)
        #expect(message.dropFirst().allSatisfy { $0 == 0 })
        #expect(try h.service.registrationCompleted(reply: KVPRegistration.reply(version: "3.1")) == "3.1")
        #expect(h.service.integrationServicesVersion == "3.1")
        #expect(throws: (any Error).self) { try h.service.registrationCompleted(reply: KVPRegistration.reply(code: 4)) }
        // All five pool files exist, as hyperv-daemons creates them.
        for n in 0...4 { #expect(fileKind(h.dir.file(".kvp_pool_\(n)")) == .regular) }
    }

    @Test(arguments: [UInt8(0), 1, 2, 3, 4])
    func setGetDeleteEnumerateOnEveryFilePool(pool: UInt8) throws {
        let h = try KVPHarness()
        #expect(try h.set(pool, "alpha", "1") == .ok)
        #expect(try h.set(pool, "beta", "2") == .ok)
        #expect(try h.set(pool, "gamma", "3") == .ok)
        #expect(try h.set(pool, "alpha", "one") == .ok)
        #expect(h.dir.bytes(".kvp_pool_\(pool)") == goldenRecord("alpha", "one") + goldenRecord("beta", "2") + goldenRecord("gamma", "3"))

        let got = try h.send(.get(pool: pool, key: Array("alpha".utf8)))
        #expect(got.status == .ok)
        #expect(got.value == Array("one".utf8))
        #expect(try h.send(.get(pool: pool, key: Array("ALPHA".utf8))).status == .noMoreItems)

        #expect(try h.send(.delete(pool: pool, key: Array("alpha".utf8))).status == .ok)
        #expect(try h.send(.delete(pool: pool, key: Array("alpha".utf8))).status == .noMoreItems)
        #expect(h.dir.bytes(".kvp_pool_\(pool)") == goldenRecord("gamma", "3") + goldenRecord("beta", "2"))

        if pool != 2 {
            let listed = try h.enumerate(pool)
            #expect(listed.items.map(\.0) == ["gamma", "beta"])
            #expect(listed.items.map(\.1) == ["3", "2"])
            #expect(listed.end == .noMoreItems)
        }
    }

    @Test func enumerateOfAnEmptyPoolEndsAtOnce() throws {
        let h = try KVPHarness()
        let r = try h.send(.enumerate(pool: 0, index: 0))
        #expect(r.status == .noMoreItems)
        #expect(r.key == nil)
        #expect(try h.send(.enumerate(pool: 1, index: UInt32.max)).status == .noMoreItems)
    }

    @Test func getAnswerIsWhereTheKernelReadsIt() throws {
        let h = try KVPHarness()
        #expect(try h.set(0, "k", "ab") == .ok)
        let reply = h.service.handle(request: KVPRequest.get(pool: 0, key: Array("k".utf8)).encode())
        // Kernel (K1) reads @532; a value shorter than 4 bytes would be lost at @528.
        #expect(Array(reply.bytes[532..<535]) == [0x61, 0x62, 0])
        #expect(try KVPReply.decode(reply.bytes, for: .get).value == Array("ab".utf8))
    }

    @Test(arguments: [UInt8(5), 7, 255])
    func poolNumbersOutOfRangeAreRefused(pool: UInt8) throws {
        let h = try KVPHarness()
        #expect(try h.set(pool, "k", "v") == .invalidArgument)
        #expect(try h.send(.get(pool: pool, key: Array("k".utf8))).status == .invalidArgument)
        #expect(try h.send(.delete(pool: pool, key: Array("k".utf8))).status == .invalidArgument)
        #expect(try h.send(.enumerate(pool: pool, index: 0)).status == .invalidArgument)
    }

    @Test func oversizedAndUnterminatedKeysAndValuesAreRefused() throws {
        let h = try KVPHarness()
        var raw = KVPRequest.set(pool: 0, KVPExchange(key: "key", value: "value")).encode()
        var w = ByteWriter(bytes: raw)
        w.u32(600, at: KVPLayout.exchangeKeySize)  // larger than the 512-byte field
        #expect(try h.send(raw: w.bytes, op: .set).decoded.status == .noMoreItems)

        w = ByteWriter(bytes: raw)
        w.u32(4000, at: KVPLayout.exchangeValueSize)
        #expect(try h.send(raw: w.bytes, op: .set).decoded.status == .noMoreItems)

        w = ByteWriter(bytes: raw)
        w.u32(3, at: KVPLayout.exchangeKeySize)  // "key" without its NUL inside key_size
        #expect(try h.send(raw: w.bytes, op: .set).decoded.status == .invalidArgument)

        // A key filling all 512 bytes with no NUL at all.
        w = ByteWriter(bytes: raw)
        w.copy([UInt8](repeating: 0x41, count: 512), at: KVPLayout.exchangeKey)
        w.u32(512, at: KVPLayout.exchangeKeySize)
        #expect(try h.send(raw: w.bytes, op: .set).decoded.status == .invalidArgument)

        w = ByteWriter(bytes: raw)
        w.copy([UInt8](repeating: 0x42, count: 2048), at: KVPLayout.exchangeValue)
        w.u32(2048, at: KVPLayout.exchangeValueSize)
        #expect(try h.send(raw: w.bytes, op: .set).decoded.status == .invalidArgument)

        // Empty key (key_size 1, just the NUL) would look like a hole in the file: refused.
        raw = KVPRequest.set(pool: 0, KVPExchange(key: "", value: "v")).encode()
        #expect(try h.send(raw: raw, op: .set).decoded.status == .invalidArgument)

        raw = KVPRequest.delete(pool: 0, key: Array("k".utf8)).encode()
        w = ByteWriter(bytes: raw)
        w.u32(513, at: KVPLayout.deleteKeySize)
        #expect(try h.send(raw: w.bytes, op: .delete).decoded.status == .noMoreItems)

        #expect(h.dir.bytes(".kvp_pool_0").isEmpty)
        // Longest valid key and value still work.
        #expect(try h.set(0, String(repeating: "k", count: 511), String(repeating: "v", count: 2047)) == .ok)
    }

    @Test func wrongSizesAndUnknownOperationsGetAnErrorReply() throws {
        let h = try KVPHarness()
        let short = h.service.handle(request: [1, 0, 0, 0])
        #expect(short.status == .fail)
        #expect(short.bytes.count == 7432)
        var raw = KVPRequest.enumerate(pool: 0, index: 0).encode()
        raw[0] = 9
        #expect(h.service.handle(request: raw).status == .notSupported)
        #expect(h.service.handle(request: raw + [0]).status == .fail)
    }

    @Test func fullPoolRefusesInsertsWithHV_S_CONT() throws {
        var config = KVPConfiguration()
        config.maxRecordsPerPool = 2
        let h = try KVPHarness(configuration: config)
        #expect(try h.set(0, "a", "1") == .ok)
        #expect(try h.set(0, "b", "1") == .ok)
        #expect(try h.set(0, "c", "1") == .noMoreItems)
        #expect(try h.set(0, "a", "2") == .ok)
    }

    @Test func intrinsicPoolEnumeratesTheTenKeysInHostOrder() throws {
        let facts = FixedSystemFacts(
            kernelIdentity: KernelIdentity(
                systemName: "Linux", nodeName: "vm1", release: "6.8.0-45-generic", version: "#45", machine: "x86_64"),
            host: "vm1",
            osReleaseText: "NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\n",
            addresses: [
                InterfaceAddress(interface: "lo", family: .ipv4, address: "127.0.0.1", prefixLength: 8, isLoopback: true),
                InterfaceAddress(interface: "eth0", family: .ipv4, address: "192.0.2.10", prefixLength: 24),
                InterfaceAddress(interface: "eth0", family: .ipv6, address: "2001:db8::10", prefixLength: 64),
                InterfaceAddress(interface: "eth0", family: .ipv6, address: "fe80::1", prefixLength: 64),
                InterfaceAddress(interface: "docker0", family: .ipv4, address: "172.17.0.1", prefixLength: 16),
                InterfaceAddress(interface: "eth1", family: .ipv4, address: "198.51.100.7", prefixLength: 24),
            ])
        let h = try KVPHarness(facts: facts)
        _ = try h.service.registrationCompleted(reply: KVPRegistration.reply(version: "3.1"))
        let listed = try h.enumerate(2)
        #expect(listed.end == .noMoreItems)
        #expect(listed.items.map(\.0) == [
            "FullyQualifiedDomainName", "IntegrationServicesVersion", "NetworkAddressIPv4", "NetworkAddressIPv6",
            "OSBuildNumber", "OSName", "OSMajorVersion", "OSMinorVersion", "OSVersion", "ProcessorArchitecture",
        ])
        #expect(listed.items.map(\.1) == [
            "vm1", "3.1", "192.0.2.10;198.51.100.7", "2001:db8::10", "6.8.0-45-generic", "Ubuntu", "22.04", "", "6.8.0",
            "x86_64",
        ])
        #expect(try h.send(.enumerate(pool: 2, index: 10)).status == .noMoreItems)
        #expect(try h.send(.enumerate(pool: 2, index: 0x8000_0000)).status == .noMoreItems)
    }

    @Test func fqdnComesFromTheResolverCache() throws {
        let facts = FixedSystemFacts(host: "vm1", canonicalNames: ["vm1": "vm1.example.net"])
        let h = try KVPHarness(facts: facts)
        #expect(try h.send(.enumerate(pool: 2, index: 0)).value == Array("vm1".utf8))
        h.service.hostNameResolver.refreshNow()
        #expect(try h.send(.enumerate(pool: 2, index: 0)).value == Array("vm1.example.net".utf8))
        #expect(try h.send(.enumerate(pool: 2, index: 1)).value == Array("Unknown version".utf8))
    }

    @Test func seesRecordsAppendedByAnotherProgramWhileRunning() throws {
        let h = try KVPHarness()
        #expect(try h.set(1, "from-host?", "x") == .ok)
        externalAppend(h.dir.file(".kvp_pool_1"), key: "PROVISIONING_REPORT", value: "ok")
        let listed = try h.enumerate(1)
        #expect(listed.items.map(\.0) == ["from-host?", "PROVISIONING_REPORT"])
        #expect(try h.send(.get(pool: 1, key: Array("PROVISIONING_REPORT".utf8))).value == Array("ok".utf8))
    }

    @Test func invalidUTF8FromAnotherWriterStillEnumerates() throws {
        let h = try KVPHarness()
        var record = goldenRecord("bad", "")
        record[512] = 0xFF
        record[513] = 0x41
        h.dir.write(".kvp_pool_1", bytes: record + goldenRecord("next", "ok"))
        let listed = try h.enumerate(1)
        #expect(listed.items.map(\.0) == ["bad", "next"])
        #expect(listed.items[0].1 == "\u{FFFD}A")
    }
}
