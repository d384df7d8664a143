import HVEmulator
import HVServiceKit
import HVSystem
import HVWire
import Logging
import Testing

@testable import HVKVP

/// The service behind the real channel runner, talking to the emulated kernel and host.
@Suite struct EndToEndTests {
    @Test func hostOperationsThroughTheEmulatedKernel() async throws {
        let root = TemporaryDirectory("e2e")
        let state = root.file("state")
        let host = try EmulatedHost(root: root.path, devices: [.kvp])
        try host.start()
        defer { host.stop() }
        let facts = FixedSystemFacts(
            osReleaseText: "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n",
            addresses: [InterfaceAddress(interface: "eth0", family: .ipv4, address: "192.0.2.10", prefixLength: 24)])
        let service = try KVPService(stateDirectory: state, facts: facts, startResolverThread: false)
        let environment = ServiceEnvironment(
            deviceRoot: root.path, stateDirectory: state, runtimeDirectory: root.file("run"), configDirectory: root.file("etc"),
            logger: Logger(label: "test"))
        let runner = try RelayChannelRunner(service: service, environment: environment, status: StatusBoard())
        try runner.start()
        defer { runner.stop() }
        #expect(await host.waitForAllRegistered())
        #expect(service.integrationServicesVersion == "3.1")

        #expect(await host.kvp.set(pool: .external, key: "VirtualMachineName", value: "vm-under-test") == .ok)
        #expect(await host.kvp.set(pool: .autoExternal, key: "HostName", value: "hv01") == .ok)
        #expect(await host.kvp.set(rawPool: 9, key: Array("k".utf8), value: Array("v".utf8)) == .invalidArgument)
        #expect(root.bytes("state/.kvp_pool_0") == goldenRecord("VirtualMachineName", "vm-under-test"))

        let (getStatus, value) = await host.kvp.get(pool: .external, key: "VirtualMachineName")
        #expect(getStatus == .ok)
        #expect(value == "vm-under-test")  // whole value: written where the kernel reads it (K1)

        try KVPAdmin(stateDirectory: state).set("app", "ready")
        let guest = await host.kvp.guestItems()
        #expect(guest.items == [KVPHost.Item(key: "app", value: "ready")])
        #expect(guest.end == .noMoreItems)

        let intrinsic = await host.kvp.intrinsicItems()
        #expect(intrinsic.items.count == 10)
        #expect(intrinsic.items.first(where: { $0.key == "IntegrationServicesVersion" })?.value == "3.1")
        #expect(intrinsic.items.first(where: { $0.key == "OSName" })?.value == "Debian GNU/Linux")
        #expect(intrinsic.items.first(where: { $0.key == "NetworkAddressIPv4" })?.value == "192.0.2.10")

        #expect(await host.kvp.delete(pool: .external, key: "VirtualMachineName") == .ok)
        #expect(await host.kvp.delete(pool: .external, key: "VirtualMachineName") == .noMoreItems)
        #expect(host.devices.allSatisfy { $0.violations.isEmpty })
    }
}
