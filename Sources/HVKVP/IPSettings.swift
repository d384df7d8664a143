import HVSystem
import HVWire

/// A SET_IP_INFO request after strict validation: nothing from the host goes further than this
/// type, and every string in it has been parsed as what it claims to be.
public struct IPSettings: Sendable, Equatable {
    public struct Address: Sendable, Equatable {
        public var address: String
        public var prefixLength: Int
        public var family: InterfaceAddress.Family
        public var cidr: String { "\(address)/\(prefixLength)" }
    }

    /// The adapter's VMBus instance GUID, lower case with braces (sysfs `device_id` form).
    public var adapterGUID: String
    /// DHCP for IPv4 (the host's flag is documented as IPv4-only).
    public var dhcp: Bool
    public var addresses: [Address]
    public var gateways: [String]
    public var dnsServers: [String]

    public var ipv4: [Address] { addresses.filter { $0.family == .ipv4 } }
    public var ipv6: [Address] { addresses.filter { $0.family == .ipv6 } }
    public func gateways(_ family: InterfaceAddress.Family) -> [String] { gateways.filter { parseIPAddress($0) == family } }
    public func dnsServers(_ family: InterfaceAddress.Family) -> [String] { dnsServers.filter { parseIPAddress($0) == family } }

    /// Most entries accepted in one list (the host's fields hold far fewer real ones).
    public static let maxEntries = 64

    /// Why a request was refused; the host sees E_INVALIDARG.
    public struct Invalid: Error, Equatable, Sendable, CustomStringConvertible {
        public var field: String
        public var reason: String
        public var description: String { "\(field): \(reason)" }
    }

    /// Validates every field. Lists are `;`-separated; blanks around entries and empty entries
    /// are ignored; anything else that is not exactly an address (or a netmask / prefix for
    /// `sub_net`) refuses the whole request. Subnets pair with addresses by position.
    public static func parse(_ info: KVPIPInfo) throws(Invalid) -> IPSettings {
        let guid = try normalizedGUID(info.adapterID)
        let ips = try list(info.ipAddresses, field: "ip_addr")
        let subnets = try list(info.subnets, field: "sub_net")
        guard subnets.count == ips.count else {
            throw Invalid(field: "sub_net", reason: "\(subnets.count) entries for \(ips.count) addresses")
        }
        var addresses: [Address] = []
        for (ip, subnet) in zip(ips, subnets) {
            guard let family = address(ip) else { throw Invalid(field: "ip_addr", reason: "not an IP address: \(printable(ip))") }
            guard let prefix = prefixLength(subnet, family: family) else {
                throw Invalid(field: "sub_net", reason: "not a \(family == .ipv4 ? "netmask or prefix" : "prefix") for \(ip): \(printable(subnet))")
            }
            addresses.append(Address(address: ip, prefixLength: prefix, family: family))
        }
        var gateways: [String] = []
        for g in try list(info.gateways, field: "gate_way") {
            guard address(g) != nil else { throw Invalid(field: "gate_way", reason: "not an IP address: \(printable(g))") }
            gateways.append(g)
        }
        var dns: [String] = []
        for d in try list(info.dnsServers, field: "dns_addr") {
            guard address(d) != nil else { throw Invalid(field: "dns_addr", reason: "not an IP address: \(printable(d))") }
            dns.append(d)
        }
        if !info.dhcpEnabled && addresses.isEmpty {
            throw Invalid(field: "ip_addr", reason: "no address and DHCP disabled: the adapter would be left unconfigured")
        }
        return IPSettings(adapterGUID: guid, dhcp: info.dhcpEnabled, addresses: addresses, gateways: gateways, dnsServers: dns)
    }

    static func list(_ text: String, field: String) throws(Invalid) -> [String] {
        // Blanks around entries are tolerated (the reference strips them); line breaks are not.
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        let items = text.split(separator: ";").map { String($0.drop(while: isBlank).reversed().drop(while: isBlank).reversed()) }
            .filter { !$0.isEmpty }
        guard items.count <= maxEntries else { throw Invalid(field: field, reason: "more than \(maxEntries) entries") }
        return items
    }

    /// The family of an address written in canonical characters only (no scope ids, no spaces).
    static func address(_ text: String) -> InterfaceAddress.Family? {
        guard text.count <= 45, text.unicodeScalars.allSatisfy({ $0.properties.isASCIIHexDigit || $0 == "." || $0 == ":" })
        else { return nil }
        return parseIPAddress(text)
    }

    /// A dotted-quad contiguous netmask (IPv4), or a prefix length written `N` or `/N`.
    static func prefixLength(_ text: String, family: InterfaceAddress.Family) -> Int? {
        let bare = text.hasPrefix("/") ? String(text.dropFirst()) : text
        if !bare.isEmpty, bare.count <= 3, bare.allSatisfy(\.isASCIIDigit), let n = Int(bare) {
            return n <= (family == .ipv4 ? 32 : 128) ? n : nil
        }
        guard family == .ipv4, !text.hasPrefix("/"), address(text) == .ipv4 else { return nil }
        let parts = text.split(separator: ".").compactMap { UInt32($0) }
        guard parts.count == 4 else { return nil }
        let mask = parts.reduce(UInt32(0)) { $0 << 8 | $1 }
        let ones = mask.leadingZeroBitCount == 0 ? (~mask).leadingZeroBitCount : 0
        // Contiguous: the ones are all at the top.
        guard mask == (ones == 0 ? 0 : ~UInt32(0) << UInt32(32 - ones)) else { return nil }
        return ones
    }

    static func normalizedGUID(_ text: String) throws(Invalid) -> String {
        var s = text.trimmingWhitespace().lowercased()
        if s.hasPrefix("{") && s.hasSuffix("}") { s = String(s.dropFirst().dropLast()) }
        let groups = s.split(separator: "-", omittingEmptySubsequences: false)
        guard groups.map(\.count) == [8, 4, 4, 4, 12], groups.allSatisfy({ $0.allSatisfy(\.isHexDigit) }) else {
            throw Invalid(field: "adapter_id", reason: "not a GUID: \(printable(text))")
        }
        return "{\(s)}"
    }

    static func printable(_ s: String) -> String {
        "\"" + String(s.unicodeScalars.prefix(64).map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) }) + "\""
    }
}

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
