import Glibc
import HVSystem
import HVWire
import Testing

@testable import HVKVP

/// Facts whose host name can change while the resolver runs.
final class ChangingFacts: SystemFacts, @unchecked Sendable {
    let name = Locked("vm1")
    func kernel() -> KernelIdentity { FixedSystemFacts().kernelIdentity }
    func hostName() -> String { name.current }
    func canonicalName(of host: String) -> String? { host + ".example.net" }
    func osRelease() -> String? { nil }
    func legacyRelease() -> String? { nil }
    func interfaceAddresses() -> [InterfaceAddress] { [] }
}

@Suite struct RobustnessTests {
    @Test func garbageRequestsAlwaysGetAFullSizedReplyAndNeverTrap() throws {
        let h = try KVPHarness()
        var rng = SystemRandomNumberGenerator()
        for round in 0..<1500 {
            var raw = [UInt8](repeating: 0, count: 7432)
            raw[0] = UInt8.random(in: 0...7, using: &rng)
            raw[1] = UInt8.random(in: 0...6, using: &rng)
            // Random sizes and random (often unterminated) strings in every string field.
            for offset in [4, 8, 12, 16] { raw[offset] = UInt8.random(in: 0...255, using: &rng); raw[offset + 1] = UInt8.random(in: 0...9, using: &rng) }
            let fill = Int.random(in: 0...7432, using: &rng)
            for i in stride(from: 20, to: min(fill, 7432), by: 1) where round % 3 == 0 { raw[i] = UInt8.random(in: 1...255, using: &rng) }
            let reply = h.service.handle(request: round % 50 == 0 ? Array(raw.prefix(Int.random(in: 0...7431, using: &rng))) : raw)
            #expect(reply.bytes.count == 7432)
            let error = try ByteReader(reply.bytes, structure: "reply").u32(at: 0)
            #expect(error == reply.status.rawValue)
        }
        // The pools are still consistent files.
        for n in 0...4 { #expect(h.dir.bytes(".kvp_pool_\(n)").count % 2560 == 0) }
    }

    @Test func resolverFollowsHostNameChangesInTheBackground() async throws {
        let facts = ChangingFacts()
        let resolver = HostNameResolver(facts: facts, refreshSeconds: 3600, hostNameCheckSeconds: 0.02)
        #expect(resolver.current == "vm1")  // before any lookup: the plain host name
        try resolver.start()
        defer { resolver.stop() }
        #expect(await eventually { resolver.current == "vm1.example.net" })
        facts.name.withLock { $0 = "renamed" }
        #expect(await eventually { resolver.current == "renamed.example.net" })
    }
}

func eventually(timeoutSeconds: Double = 5, _ condition: () -> Bool) async -> Bool {
    let deadline = monotonicNow() + timeoutSeconds
    while monotonicNow() < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}
