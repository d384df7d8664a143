import HVSystem
import HVWire
import Testing

@testable import HVKVP

/// A fake machine: sysfs, procfs, resolver and network-manager state below a temporary root.
func fakeNetworkRoot() -> TemporaryDirectory {
    let root = TemporaryDirectory("net")
    root.write("sys/class/net/eth0/address", "00:15:5d:0a:1b:2c\n")
    root.write("sys/class/net/eth0/ifindex", "2\n")
    root.write("sys/class/net/eth1/address", "00:15:5d:0a:1b:2d\n")
    root.write("sys/class/net/eth1/ifindex", "3\n")
    root.write("sys/class/net/eth10/address", "00:15:5d:0a:1b:3e\n")
    root.write("sys/class/net/eth10/ifindex", "12\n")
    // An SR-IOV VF sharing eth0's MAC, without addresses.
    root.write("sys/class/net/enP1s1/address", "00:15:5d:0a:1b:2c\n")
    root.write("sys/class/net/enP1s1/ifindex", "4\n")
    root.write("sys/class/net/lo/address", "00:00:00:00:00:00\n")
    root.write(
        "proc/net/route",
        """
        Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
        eth0\t00000000\t0102000A\t0003\t0\t0\t100\t00000000\t0\t0\t0
        eth0\t0002000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
        eth1\t00000000\t01AA10AC\t0003\t0\t0\t200\t00000000\t0\t0\t0

        """)
    root.write(
        "proc/net/ipv6_route",
        """
        00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0
        20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0

        """)
    root.write("etc/resolv.conf", "# stub\nnameserver 127.0.0.53\noptions edns0\n")
    root.write("run/systemd/resolve/resolv.conf", "nameserver 10.0.2.53\nnameserver 2001:db8::53\nsearch example.net\n")
    root.write("run/systemd/netif/leases/2", "ADDRESS=10.0.2.15\n")
    root.write("run/systemd/netif/links/3", "ADMIN_STATE=configured\nDNS=172.16.0.53 172.16.0.54\n")
    return root
}

let fakeAddresses = [
    InterfaceAddress(interface: "lo", family: .ipv4, address: "127.0.0.1", prefixLength: 8, isLoopback: true),
    InterfaceAddress(interface: "eth0", family: .ipv4, address: "10.0.2.15", prefixLength: 24),
    InterfaceAddress(interface: "eth0", family: .ipv6, address: "2001:db8::15", prefixLength: 64),
    InterfaceAddress(interface: "eth0", family: .ipv6, address: "fe80::215:5dff:fe0a:1b2c", prefixLength: 64),
    InterfaceAddress(interface: "eth1", family: .ipv4, address: "172.16.170.20", prefixLength: 20),
    InterfaceAddress(interface: "eth10", family: .ipv4, address: "192.168.10.10", prefixLength: 24),
]

@Suite struct IPInfoTests {
    @Test func answersForTheAdapterWithExactlyThatMAC() throws {
        let root = fakeNetworkRoot()
        let h = try KVPHarness(facts: FixedSystemFacts(addresses: fakeAddresses), networkRoot: root.path)
        let r = try h.send(.getIPInfo(pool: 0, KVPIPInfo(adapterID: "00:15:5D:0A:1B:2C")))
        #expect(r.status == .ok)
        let info = try #require(r.ipInfo)
        #expect(info.adapterID == "00:15:5D:0A:1B:2C")
        #expect(info.ipAddresses == "10.0.2.15;2001:db8::15")
        #expect(info.subnets == "255.255.255.0;/64")
        #expect(info.addressFamily == 3)
        #expect(info.gateways == "10.0.2.1;fe80::1")
        #expect(info.dnsServers == "10.0.2.53;2001:db8::53")
        #expect(info.dhcpEnabled)
    }

    @Test func eth1DoesNotCollectEth10sAddresses() throws {
        let root = fakeNetworkRoot()
        let h = try KVPHarness(facts: FixedSystemFacts(addresses: fakeAddresses), networkRoot: root.path)
        let info = try #require(try h.send(.getIPInfo(pool: 0, KVPIPInfo(adapterID: "00:15:5D:0A:1B:2D"))).ipInfo)
        #expect(info.ipAddresses == "172.16.170.20")
        #expect(info.subnets == "255.255.240.0")
        #expect(info.addressFamily == 1)
        #expect(info.gateways == "172.16.170.1")
        #expect(info.dnsServers == "172.16.0.53;172.16.0.54")
        #expect(!info.dhcpEnabled)
    }

    @Test func unknownAdapterFails() throws {
        let root = fakeNetworkRoot()
        let h = try KVPHarness(facts: FixedSystemFacts(addresses: fakeAddresses), networkRoot: root.path)
        #expect(try h.send(.getIPInfo(pool: 0, KVPIPInfo(adapterID: "00:15:5D:FF:FF:FF"))).status == .fail)
        #expect(try h.send(.getIPInfo(pool: 0, KVPIPInfo(adapterID: ""))).status == .fail)
        #expect(try h.send(.getIPInfo(pool: 0, KVPIPInfo(adapterID: "00:00:00:00:00:00"))).status == .fail)  // lo
    }

    @Test func dhcpDetectionPerNetworkManager() {
        let root = TemporaryDirectory("dhcp")
        let state = NetworkState(root: root.path, facts: FixedSystemFacts(), configuration: KVPConfiguration())
        #expect(!state.dhcpEnabled(interface: "eth0", index: 2))
        root.write("var/lib/NetworkManager/internal-1234-eth0.lease", "ADDRESS=1\n")
        #expect(state.dhcpEnabled(interface: "eth0", index: 2))
        #expect(!state.dhcpEnabled(interface: "eth1", index: 3))
        root.write("var/lib/dhcp/dhclient.leases", "lease {\n  interface \"eth1\";\n}\n")
        #expect(state.dhcpEnabled(interface: "eth1", index: 3))
        root.write("etc/network/interfaces", "auto eth2\niface eth2 inet dhcp\n")
        #expect(state.dhcpEnabled(interface: "eth2", index: 4))
        root.write("etc/sysconfig/network-scripts/ifcfg-eth3", "DEVICE=eth3\nBOOTPROTO=\"dhcp\"\n")
        #expect(state.dhcpEnabled(interface: "eth3", index: 5))
        #expect(!state.dhcpEnabled(interface: "eth4", index: 6))
    }

    @Test func routeAndResolverParsers() {
        #expect(ipv4Netmask(prefixLength: 0) == "0.0.0.0")
        #expect(ipv4Netmask(prefixLength: 20) == "255.255.240.0")
        #expect(ipv4Netmask(prefixLength: 32) == "255.255.255.255")
        #expect(parseResolvConf("nameserver 1.1.1.1\nnameserver bogus\nnameserver fe80::1%eth0\n#nameserver 9.9.9.9\n") == [
            "1.1.1.1", "fe80::1",
        ])
        // A route without RTF_GATEWAY or with a non-zero mask is not a default gateway.
        let routes = parseIPv4DefaultRoutes(
            "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\nx\t00000000\t01020304\t0001\t0\t0\t0\t00000000\n")
        #expect(routes.isEmpty)
        #expect(parseIPv6DefaultRoutes("garbage\n").isEmpty)
    }
}
