import Glibc
import HVSystem
import HVWire
import Testing

@testable import HVKVP

let adapterGUID = "{f8615163-df3e-46c5-913f-f2d2f965ed0e}"

func staticRequest(
    ips: String = "10.0.0.5;2001:db8::5", subnets: String = "255.255.255.0;64", gateways: String = "10.0.0.1;2001:db8::1",
    dns: String = "10.0.0.53;2001:db8::53", dhcp: Bool = false, adapter: String = adapterGUID.uppercased()
) -> KVPIPInfo {
    KVPIPInfo(
        adapterID: adapter, addressFamily: 3, dhcpEnabled: dhcp, ipAddresses: ips, subnets: subnets, gateways: gateways,
        dnsServers: dns)
}

/// A fake machine with eth0 = the adapter above.
func fakeSetIPRoot() -> TemporaryDirectory {
    let root = TemporaryDirectory("setip")
    root.write("sys/class/net/eth0/address", "00:15:5d:0a:1b:2c\n")
    root.write("sys/class/net/eth0/ifindex", "2\n")
    root.write("sys/class/net/eth0/device/device_id", adapterGUID + "\n")
    root.write("sys/class/net/eth1/address", "00:15:5d:0a:1b:2d\n")
    root.write("sys/class/net/eth1/device/device_id", "{00000000-0000-0000-0000-000000000001}\n")
    return root
}

@Suite struct IPSettingsTests {
    @Test func parsesAValidRequest() throws {
        let s = try IPSettings.parse(staticRequest(ips: " 10.0.0.5 ; 2001:db8::5;;", subnets: "255.255.255.0;/64"))
        #expect(s.adapterGUID == adapterGUID)
        #expect(s.addresses.map(\.cidr) == ["10.0.0.5/24", "2001:db8::5/64"])
        #expect(s.gateways == ["10.0.0.1", "2001:db8::1"])
        #expect(s.dnsServers(.ipv6) == ["2001:db8::53"])
        #expect(!s.dhcp)
    }

    @Test(arguments: [
        staticRequest(ips: "10.0.0.5; rm -rf /", subnets: "24;24"),  // not an address
        staticRequest(ips: "10.0.0.5;2001:db8::5", subnets: "255.255.255.0;$(reboot)"),  // §6.3 K4
        staticRequest(subnets: "255.0.255.0;64"),  // non-contiguous netmask
        staticRequest(subnets: "24;129"),  // IPv6 prefix too long
        staticRequest(subnets: "24"),  // fewer subnets than addresses
        staticRequest(ips: String(repeating: "1", count: 2000), subnets: "24"),  // §6.3 K2 (stack overflow in the reference)
        staticRequest(ips: "fe80::1%eth0", subnets: "64"),  // scope ids are not addresses
        staticRequest(gateways: "10.0.0.1\n"),
        staticRequest(dns: "resolver.example"),
        staticRequest(adapter: "eth0"),
        staticRequest(adapter: "{f8615163-df3e-46c5-913f-f2d2f965ed0}"),
        staticRequest(ips: "", subnets: "", dhcp: false),  // nothing to configure
    ])
    func refusesAnythingThatIsNotExactlyValid(_ info: KVPIPInfo) {
        #expect(throws: IPSettings.Invalid.self) { try IPSettings.parse(info) }
    }

    @Test func dhcpWithoutAddressesIsFine() throws {
        let s = try IPSettings.parse(staticRequest(ips: "", subnets: "", gateways: "", dns: "", dhcp: true))
        #expect(s.dhcp)
        #expect(s.addresses.isEmpty)
    }
}

@Suite struct IPConfigRendererTests {
    let settings = try! IPSettings.parse(staticRequest())

    @Test func networkdFile() {
        #expect(
            IPConfigRenderer.networkd(settings, interface: "eth0") == """
                \(IPConfigRenderer.banner)
                [Match]
                Name=eth0

                [Network]
                DHCP=no
                IPv6AcceptRA=no
                Address=10.0.0.5/24
                Address=2001:db8::5/64
                Gateway=10.0.0.1
                Gateway=2001:db8::1
                DNS=10.0.0.53
                DNS=2001:db8::53

                """)
    }

    @Test func networkManagerKeyfile() {
        let text = IPConfigRenderer.networkManager(settings, interface: "eth0", mac: "00:15:5d:0a:1b:2c")
        #expect(text.contains("uuid=f8615163-df3e-46c5-913f-f2d2f965ed0e\n"))
        #expect(text.contains("mac-address=00:15:5D:0A:1B:2C\n"))
        #expect(text.contains("[ipv4]\nmethod=manual\naddress1=10.0.0.5/24\ngateway=10.0.0.1\ndns=10.0.0.53;\n"))
        #expect(text.contains("[ipv6]\nmethod=manual\naddress1=2001:db8::5/64\ngateway=2001:db8::1\ndns=2001:db8::53;\n"))
    }

    @Test func ifupdownAndIfcfg() {
        #expect(
            IPConfigRenderer.ifupdown(settings, interface: "eth0") == """
                \(IPConfigRenderer.banner)
                auto eth0
                iface eth0 inet static
                    address 10.0.0.5/24
                    gateway 10.0.0.1
                    dns-nameservers 10.0.0.53 2001:db8::53
                iface eth0 inet6 static
                    address 2001:db8::5/64
                    gateway 2001:db8::1

                """)
        #expect(
            IPConfigRenderer.ifcfg(settings, interface: "eth0", mac: "00:15:5d:0a:1b:2c") == """
                HWADDR=00:15:5D:0A:1B:2C
                DEVICE=eth0
                BOOTPROTO=none
                IPADDR0=10.0.0.5
                NETMASK0=255.255.255.0
                IPV6ADDR=2001:db8::5
                IPV6NETMASK=64
                GATEWAY=10.0.0.1
                IPV6_DEFAULTGW=2001:db8::1
                DNS1=10.0.0.53
                DNS2=2001:db8::53

                """)
    }
}

@Suite struct IPConfiguratorTests {
    @Test func networkdBackendWritesTheFileAndReloads() throws {
        let root = fakeSetIPRoot()
        let runner = RecordingProgramRunner()
        let c = NativeIPConfigurator(backend: .networkd, root: root.path, stateDirectory: root.file("state"), scriptPath: "/x", runner: runner)
        let (status, _) = c.apply(staticRequest())
        #expect(status == .ok)
        let file = root.file("etc/systemd/network/10-hvguest-eth0.network")
        #expect(String(decoding: root.bytes("etc/systemd/network/10-hvguest-eth0.network"), as: UTF8.self).contains("Address=10.0.0.5/24"))
        #expect(fileMode(file) == 0o644)
        #expect(runner.recorded == [["networkctl", "reload"], ["networkctl", "reconfigure", "eth0"]])
    }

    @Test func networkManagerKeyfileIsPrivate() throws {
        let root = fakeSetIPRoot()
        let runner = RecordingProgramRunner()
        let c = NativeIPConfigurator(backend: .networkmanager, root: root.path, stateDirectory: root.file("state"), scriptPath: "/x", runner: runner)
        #expect(c.apply(staticRequest()).status == .ok)
        let file = root.file("etc/NetworkManager/system-connections/hvguest-eth0.nmconnection")
        #expect(fileMode(file) == 0o600)
        #expect(runner.recorded.first == ["nmcli", "connection", "load", file])
    }

    @Test func scriptBackendKeepsTheReferenceContractWithoutAShell() throws {
        let root = fakeSetIPRoot()
        let runner = RecordingProgramRunner(result: { _ in "exited with status 1" })
        let c = NativeIPConfigurator(
            backend: .script, root: root.path, stateDirectory: root.file("state"), scriptPath: "/usr/libexec/hypervkvpd/hv_set_ifconfig",
            runner: runner)
        #expect(c.apply(staticRequest()).status == .fail)  // the script's failure reaches the host
        #expect(runner.recorded == [[
            "/usr/libexec/hypervkvpd/hv_set_ifconfig", root.file("state/ifcfg-eth0"), root.file("state/eth0.nmconnection"),
        ]])
        #expect(String(decoding: root.bytes("state/ifcfg-eth0"), as: UTF8.self).hasPrefix("HWADDR=00:15:5D:0A:1B:2C\nDEVICE=eth0\n"))
    }

    @Test func dryRunChangesNothingAndUnknownAdaptersAreReported() throws {
        let root = fakeSetIPRoot()
        let runner = RecordingProgramRunner()
        let c = NativeIPConfigurator(backend: .dryRun, root: root.path, stateDirectory: root.file("state"), scriptPath: "/x", runner: runner)
        let (status, detail) = c.apply(staticRequest())
        #expect(status == .ok)
        #expect(detail.contains("eth0") && detail.contains("10.0.0.5/24"))
        #expect(runner.recorded.isEmpty)
        #expect(fileKind(root.file("etc")) == .missing)
        #expect(c.apply(staticRequest(adapter: "{00000000-0000-0000-0000-0000000000ff}")).status == .guidNotFound)
        #expect(c.apply(staticRequest(ips: "10.0.0.5;`id`", subnets: "24;24")).status == .invalidArgument)
    }

    @Test func autoPicksTheManagerThatRuns() throws {
        let root = fakeSetIPRoot()
        let c = NativeIPConfigurator(backend: .auto, root: root.path, stateDirectory: root.file("state"), scriptPath: "/nonexistent", runner: RecordingProgramRunner())
        #expect(c.detectBackend(interface: "eth0") == nil)
        #expect(c.apply(staticRequest()).status == .fail)
        root.write("etc/network/interfaces", "source /etc/network/interfaces.d/*\n")
        #expect(c.detectBackend(interface: "eth0") == .ifupdown)
        root.write("run/NetworkManager/NetworkManager.pid", "1\n")
        #expect(c.detectBackend(interface: "eth0") == .networkmanager)
        root.write("run/systemd/netif/links/2", "ADMIN_STATE=unmanaged\n")
        #expect(c.detectBackend(interface: "eth0") == .networkmanager)
        root.write("run/systemd/netif/links/2", "ADMIN_STATE=configured\n")
        #expect(c.detectBackend(interface: "eth0") == .networkd)
    }

    @Test func serviceAnswersSetIPInfoThroughTheConfigurator() throws {
        let root = fakeSetIPRoot()
        let dir = TemporaryDirectory("svc")
        let c = NativeIPConfigurator(backend: .dryRun, root: root.path, stateDirectory: dir.path, scriptPath: "/x", runner: RecordingProgramRunner())
        let service = try KVPService(stateDirectory: dir.path, ipConfigurator: c, startResolverThread: false)
        let reply = service.handle(request: KVPRequest.setIPInfo(pool: 0, staticRequest()).encode())
        #expect(reply.status == .ok)
        #expect(reply.bytes.count == 7432)
        let bad = service.handle(request: KVPRequest.setIPInfo(pool: 0, staticRequest(gateways: "x")).encode())
        #expect(bad.status == .invalidArgument)
        #expect(try KVPReply.decode(bad.bytes, for: .setIPInfo).status == .invalidArgument)
    }

    @Test func liveRunnerRunsProgramsWithoutAShellAndTimesOut() {
        #expect(LiveProgramRunner().run("/bin/true", []) == nil)
        #expect(LiveProgramRunner().run("/bin/false", [])?.contains("status 1") == true)
        #expect(LiveProgramRunner().run("no-such-program-hvguest", []) != nil)
        // A shell metacharacter is just an argument: `test` sees the literal string.
        #expect(LiveProgramRunner().run("/usr/bin/test", ["$(false)", "=", "$(false)"]) == nil)
        let start = monotonicNow()
        #expect(LiveProgramRunner(timeoutMilliseconds: 200).run("/bin/sleep", ["5"])?.contains("did not finish") == true)
        #expect(monotonicNow() - start < 3)
    }
}
