import HVSystem
import HVWire

/// Answers GET_IP_INFO from the running system (PROTOCOL.md §2.8, done right):
/// - the adapter is matched by exact MAC (case-insensitive; the reference upper-cases and uses
///   `strcmp`), not by a name prefix (§6.3 K8); an interface sharing the MAC but holding no
///   address (an SR-IOV VF under the synthetic NIC) is skipped, as in the reference;
/// - addresses and prefixes from `getifaddrs`; default gateways of *that* interface from
///   `/proc/net/route` and `/proc/net/ipv6_route`; DNS servers from per-link networkd/resolved
///   state, else resolv.conf (skipping the resolved stub for the real upstream list);
/// - the DHCP flag from the network manager's own state (see `dhcpEnabled`);
/// - no shell, no helper scripts. Every file is read below `root`, so tests use a fake tree.
public struct NetworkState: Sendable {
    public let root: String
    public let facts: any SystemFacts
    public let configuration: KVPConfiguration

    public init(root: String = "/", facts: any SystemFacts, configuration: KVPConfiguration) {
        self.root = root
        self.facts = facts
        self.configuration = configuration
    }

    /// Field limits of `hv_kvp_ipaddr_value` in characters, NUL excluded (ASCII text).
    static let addressLimit = 1023
    static let gatewayLimit = 511

    func path(_ p: String) -> String { root == "/" ? p : (root.hasSuffix("/") ? String(root.dropLast()) : root) + p }

    /// Interfaces whose MAC is `mac`, in name order.
    public func interfaces(withMAC mac: String) -> [String] {
        let wanted = normalizedMAC(mac)
        guard !wanted.isEmpty else { return [] }
        return directoryEntries(path("/sys/class/net")).sorted().filter { name in
            guard let text = textFile(path("/sys/class/net/\(name)/address")) else { return false }
            return normalizedMAC(text) == wanted
        }
    }

    /// The answer for the adapter with MAC `mac`, nil when no reported interface has it
    /// (the host then gets HV_E_FAIL, as from the reference).
    public func ipInfo(forAdapter mac: String) -> KVPIPInfo? {
        let candidates = interfaces(withMAC: mac).filter { configuration.reports(interface: $0) }
        guard !candidates.isEmpty else { return nil }
        let all = facts.interfaceAddresses()
        for name in candidates {
            let addresses = all.filter { a in
                a.interface == name && !a.isLoopback && (configuration.reportLinkLocal || !a.isLinkLocal)
            }
            if addresses.isEmpty && candidates.count > 1 { continue }
            return describe(interface: name, addresses: addresses, mac: mac)
        }
        // Every candidate shares the MAC and none has an address: report the first, empty.
        return describe(interface: candidates[0], addresses: [], mac: mac)
    }

    func describe(interface name: String, addresses: [InterfaceAddress], mac: String) -> KVPIPInfo {
        var ips: [String] = []
        var subnets: [String] = []
        var family: UInt8 = 0
        var seen: Set<String> = []
        for a in addresses where seen.insert(a.address).inserted {
            ips.append(a.address)
            switch a.family {
            case .ipv4:
                subnets.append(ipv4Netmask(prefixLength: a.prefixLength))
                family |= KVPIPInfo.familyIPv4
            case .ipv6:
                subnets.append("/\(a.prefixLength)")
                family |= KVPIPInfo.familyIPv6
            }
        }
        let index = interfaceIndex(name)
        return KVPIPInfo(
            adapterID: mac,
            addressFamily: family,
            dhcpEnabled: dhcpEnabled(interface: name, index: index),
            ipAddresses: joinedList(ips, limit: Self.addressLimit),
            subnets: joinedList(subnets, limit: Self.addressLimit),
            gateways: joinedList(gateways(interface: name), limit: Self.gatewayLimit),
            dnsServers: joinedList(dnsServers(interface: name, index: index), limit: Self.addressLimit))
    }

    /// `/sys/class/net/IF/ifindex` (0 when unknown).
    public func interfaceIndex(_ name: String) -> Int {
        guard let text = textFile(path("/sys/class/net/\(name)/ifindex")) else { return 0 }
        return Int(text.trimmingWhitespace()) ?? 0
    }

    /// Default gateways through `interface`, IPv4 first.
    public func gateways(interface: String) -> [String] {
        let v4 = textFile(path("/proc/net/route")).map(parseIPv4DefaultRoutes) ?? []
        let v6 = textFile(path("/proc/net/ipv6_route")).map(parseIPv6DefaultRoutes) ?? []
        var out: [String] = []
        for route in v4 + v6 where route.interface == interface && !out.contains(route.gateway) {
            out.append(route.gateway)
        }
        return out
    }

    /// DNS servers for `interface`: its own (networkd / resolved per-link state) when known,
    /// otherwise the system's (resolv.conf, or resolved's upstream list behind the stub).
    public func dnsServers(interface: String, index: Int) -> [String] {
        if index > 0 {
            if let text = textFile(path("/run/systemd/resolve/netif/\(index)")),
                let servers = keyValueLine(text, "SERVERS"), !servers.isEmpty
            {
                return servers.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init).map(stripServerDecoration)
            }
            if let text = textFile(path("/run/systemd/netif/links/\(index)")),
                let servers = keyValueLine(text, "DNS"), !servers.isEmpty
            {
                return servers.split(separator: " ").map(String.init).map(stripServerDecoration)
            }
        }
        for file in ["/etc/resolv.conf", "/run/systemd/resolve/resolv.conf", "/run/NetworkManager/no-stub-resolv.conf"] {
            guard let text = textFile(path(file)) else { continue }
            let servers = parseResolvConf(text).filter { !isStubResolver($0) }
            if !servers.isEmpty { return servers }
        }
        return []
    }

    /// Whether `interface` got its IPv4 configuration from DHCP, judged from the state each
    /// network manager leaves behind (first hit wins):
    /// systemd-networkd lease `/run/systemd/netif/leases/IFINDEX`; NetworkManager lease files
    /// `/var/lib/NetworkManager/*-IF.lease` or a `[dhcp4]` section in
    /// `/run/NetworkManager/devices/IFINDEX`; dhclient leases naming the interface in
    /// `/var/lib/dhcp/`; dhcpcd `/var/lib/dhcpcd/IF.lease`; ifupdown `iface IF inet dhcp` in
    /// `/etc/network/interfaces`; ifcfg `BOOTPROTO=dhcp`.
    public func dhcpEnabled(interface: String, index: Int) -> Bool {
        if index > 0 {
            if fileKind(path("/run/systemd/netif/leases/\(index)")) == .regular { return true }
            if let nm = textFile(path("/run/NetworkManager/devices/\(index)")), nm.containsText("[dhcp4]") { return true }
        }
        let nmLeaseSuffix = "-\(interface).lease"
        if directoryEntries(path("/var/lib/NetworkManager")).contains(where: { $0.hasSuffix(nmLeaseSuffix) }) { return true }
        for name in ["dhclient.\(interface).leases", "dhclient-\(interface).leases"]
        where fileKind(path("/var/lib/dhcp/\(name)")) == .regular {
            return true
        }
        if let leases = textFile(path("/var/lib/dhcp/dhclient.leases"), limit: 4 << 20),
            leases.containsText("interface \"\(interface)\"")
        {
            return true
        }
        for name in ["\(interface).lease", "dhcpcd-\(interface).lease"] where fileKind(path("/var/lib/dhcpcd/\(name)")) == .regular {
            return true
        }
        if let text = textFile(path("/etc/network/interfaces")), ifupdownUsesDHCP(text, interface: interface) { return true }
        if let text = textFile(path("/etc/sysconfig/network-scripts/ifcfg-\(interface)")),
            let proto = keyValueLine(text, "BOOTPROTO"), proto.trimmingQuotes().lowercased() == "dhcp"
        {
            return true
        }
        return false
    }
}

// MARK: Pure helpers (parsers of kernel and resolver files)

/// Lower-case, colon-separated form of a MAC written with `:` or `-`.
func normalizedMAC(_ text: String) -> String {
    String(text.trimmingWhitespace().lowercased().map { $0 == "-" ? ":" : $0 })
}

/// `255.255.255.0` for 24.
public func ipv4Netmask(prefixLength: Int) -> String {
    let p = max(0, min(32, prefixLength))
    let mask: UInt32 = p == 0 ? 0 : ~UInt32(0) << UInt32(32 - p)
    return "\(mask >> 24 & 0xFF).\(mask >> 16 & 0xFF).\(mask >> 8 & 0xFF).\(mask & 0xFF)"
}

/// A default route: the interface and the gateway's text form.
public struct DefaultRoute: Sendable, Equatable {
    public var interface: String
    public var gateway: String
}

/// Default routes with a gateway from `/proc/net/route` (hex, host byte order = little-endian).
public func parseIPv4DefaultRoutes(_ text: String) -> [DefaultRoute] {
    var out: [DefaultRoute] = []
    for line in text.split(separator: "\n").dropFirst() {
        let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard f.count >= 8, let dest = UInt32(f[1], radix: 16), let gw = UInt32(f[2], radix: 16),
            let flags = UInt32(f[3], radix: 16), let mask = UInt32(f[7], radix: 16)
        else { continue }
        // RTF_UP (1) and RTF_GATEWAY (2); destination and mask 0 = default.
        guard dest == 0, mask == 0, flags & 0x3 == 0x3, gw != 0 else { continue }
        let bytes = [UInt8(gw & 0xFF), UInt8(gw >> 8 & 0xFF), UInt8(gw >> 16 & 0xFF), UInt8(gw >> 24 & 0xFF)]
        if let g = ipAddressText(bytes) { out.append(DefaultRoute(interface: String(f[0]), gateway: g)) }
    }
    return out
}

/// Default routes with a next hop from `/proc/net/ipv6_route`
/// (dest, dest_plen, src, src_plen, next_hop, metric, refcnt, use, flags, interface).
public func parseIPv6DefaultRoutes(_ text: String) -> [DefaultRoute] {
    var out: [DefaultRoute] = []
    for line in text.split(separator: "\n") {
        let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard f.count >= 10, f[0].count == 32, f[4].count == 32, f[1] == "00",
            f[0].allSatisfy({ $0 == "0" }), !f[4].allSatisfy({ $0 == "0" }),
            let nextHop = hexBytes(f[4]), let g = ipAddressText(nextHop)
        else { continue }
        out.append(DefaultRoute(interface: String(f[9]), gateway: g))
    }
    return out
}

func hexBytes(_ s: Substring) -> [UInt8]? {
    guard s.count % 2 == 0 else { return nil }
    var out: [UInt8] = []
    var i = s.startIndex
    while i < s.endIndex {
        let j = s.index(i, offsetBy: 2)
        guard let b = UInt8(s[i..<j], radix: 16) else { return nil }
        out.append(b)
        i = j
    }
    return out
}

/// `nameserver` addresses of a resolv.conf, in order (invalid ones skipped).
public func parseResolvConf(_ text: String) -> [String] {
    var out: [String] = []
    for line in text.split(separator: "\n") {
        let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard f.count >= 2, f[0] == "nameserver" else { continue }
        let server = String(f[1].split(separator: "%").first ?? f[1])
        if parseIPAddress(server) != nil && !out.contains(server) { out.append(server) }
    }
    return out
}

/// systemd-resolved's local stubs (127.0.0.53, 127.0.0.54) stand for the real servers.
func isStubResolver(_ server: String) -> Bool { server == "127.0.0.53" || server == "127.0.0.54" }

/// resolved writes `addr#name` or `addr:port`-free forms; keep the address only.
func stripServerDecoration(_ s: String) -> String { String(s.split(separator: "#").first ?? Substring(s)) }

/// The value of `KEY=value` in a key-value state file.
func keyValueLine(_ text: String, _ key: String) -> String? {
    for line in text.split(separator: "\n") where line.hasPrefix(key + "=") {
        return String(line.dropFirst(key.count + 1)).trimmingWhitespace()
    }
    return nil
}

/// `iface IF inet dhcp` in an ifupdown interfaces file.
func ifupdownUsesDHCP(_ text: String, interface: String) -> Bool {
    for line in text.split(separator: "\n") {
        let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        if f.count >= 4, f[0] == "iface", f[1] == interface, f[2] == "inet", f[3] == "dhcp" { return true }
    }
    return false
}

/// `a;b;c`, stopping before an item that would pass `limit` characters.
func joinedList(_ items: [String], limit: Int) -> String {
    var out = ""
    for item in items {
        let next = out.isEmpty ? item : out + ";" + item
        if next.utf8.count > limit { break }
        out = next
    }
    return out
}

extension String {
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }

    func trimmingQuotes() -> String {
        var s = self
        if s.count >= 2, let f = s.first, f == "\"" || f == "'", s.last == f { s = String(s.dropFirst().dropLast()) }
        return s
    }
}
