import HVSystem

/// Text of the native configuration files SET_IP_INFO writes. Pure: every value comes from a
/// validated `IPSettings` and a kernel interface name, never raw host text.
public enum IPConfigRenderer {
    static let banner = "# Written by hvguestd for a Hyper-V SET_IP_INFO request; it is rewritten on the next one."

    /// systemd-networkd `.network`.
    public static func networkd(_ s: IPSettings, interface: String) -> String {
        var lines = [banner, "[Match]", "Name=\(interface)", "", "[Network]", "DHCP=\(s.dhcp ? "ipv4" : "no")"]
        if !s.ipv6.isEmpty { lines.append("IPv6AcceptRA=no") }
        for a in s.addresses where !(s.dhcp && a.family == .ipv4) { lines.append("Address=\(a.cidr)") }
        for g in s.gateways where !(s.dhcp && parseIPAddress(g) == .ipv4) { lines.append("Gateway=\(g)") }
        for d in s.dnsServers { lines.append("DNS=\(d)") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// NetworkManager keyfile (`.nmconnection`, must be mode 0600). The connection's UUID is the
    /// adapter's VMBus GUID, stable across requests for the same NIC.
    public static func networkManager(_ s: IPSettings, interface: String, mac: String?) -> String {
        var lines = [
            banner, "[connection]", "id=hvguest-\(interface)", "uuid=\(s.adapterGUID.dropFirst().dropLast())", "type=ethernet",
            "interface-name=\(interface)", "autoconnect=true", "", "[ethernet]",
        ]
        if let mac { lines.append("mac-address=\(mac.uppercased())") }
        lines += ["", "[ipv4]"]
        if s.dhcp {
            lines.append("method=auto")
        } else if s.ipv4.isEmpty {
            lines.append("method=disabled")
        } else {
            lines.append("method=manual")
            for (i, a) in s.ipv4.enumerated() { lines.append("address\(i + 1)=\(a.cidr)") }
            if let g = s.gateways(.ipv4).first { lines.append("gateway=\(g)") }
        }
        let dns4 = s.dnsServers(.ipv4)
        if !dns4.isEmpty { lines.append("dns=\(dns4.joined(separator: ";"));") }
        lines += ["", "[ipv6]"]
        if s.ipv6.isEmpty {
            lines.append("method=auto")
        } else {
            lines.append("method=manual")
            for (i, a) in s.ipv6.enumerated() { lines.append("address\(i + 1)=\(a.cidr)") }
            if let g = s.gateways(.ipv6).first { lines.append("gateway=\(g)") }
        }
        let dns6 = s.dnsServers(.ipv6)
        if !dns6.isEmpty { lines.append("dns=\(dns6.joined(separator: ";"));") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// ifupdown stanzas (`/etc/network/interfaces.d/`), one per address as Debian's ifupdown
    /// accepts for several addresses of one interface.
    public static func ifupdown(_ s: IPSettings, interface: String) -> String {
        var lines = [banner, "auto \(interface)"]
        if s.dhcp {
            lines.append("iface \(interface) inet dhcp")
        }
        for (i, a) in (s.dhcp ? [] : s.ipv4).enumerated() {
            lines += ["iface \(interface) inet static", "    address \(a.cidr)"]
            if i == 0 {
                if let g = s.gateways(.ipv4).first { lines.append("    gateway \(g)") }
                if !s.dnsServers.isEmpty { lines.append("    dns-nameservers \(s.dnsServers.joined(separator: " "))") }
            }
        }
        for (i, a) in s.ipv6.enumerated() {
            lines += ["iface \(interface) inet6 static", "    address \(a.cidr)"]
            if i == 0, let g = s.gateways(.ipv6).first { lines.append("    gateway \(g)") }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The reference daemon's ifcfg file (PROTOCOL.md §2.9), for the `script` backend's
    /// `hv_set_ifconfig` contract. Unlike the reference, subnets are always re-rendered from
    /// validated prefixes (§6.3 K4: no host text reaches a file that scripts source).
    public static func ifcfg(_ s: IPSettings, interface: String, mac: String?) -> String {
        var lines: [String] = []
        if let mac { lines.append("HWADDR=\(mac.uppercased())") }
        lines += ["DEVICE=\(interface)", "BOOTPROTO=\(s.dhcp ? "dhcp" : "none")"]
        for (i, a) in s.ipv4.enumerated() {
            lines.append("IPADDR\(i)=\(a.address)")
            lines.append("NETMASK\(i)=\(ipv4Netmask(prefixLength: a.prefixLength))")
        }
        for (i, a) in s.ipv6.enumerated() {
            let suffix = i == 0 ? "" : "_\(i)"
            lines.append("IPV6ADDR\(suffix)=\(a.address)")
            lines.append("IPV6NETMASK\(suffix)=\(a.prefixLength)")
        }
        for (i, g) in s.gateways(.ipv4).enumerated() { lines.append("GATEWAY\(i == 0 ? "" : String(i))=\(g)") }
        for (i, g) in s.gateways(.ipv6).enumerated() { lines.append("IPV6_DEFAULTGW\(i == 0 ? "" : "_\(i)")=\(g)") }
        for (i, d) in s.dnsServers.enumerated() { lines.append("DNS\(i + 1)=\(d)") }
        return lines.joined(separator: "\n") + "\n"
    }
}
