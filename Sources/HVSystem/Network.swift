import CHVLinux
import Glibc

/// One address of one interface, as `getifaddrs(3)` reports it.
public struct InterfaceAddress: Sendable, Equatable {
    public enum Family: Sendable, Equatable { case ipv4, ipv6 }
    public var interface: String
    public var family: Family
    /// Text form (`inet_ntop`): `192.0.2.10`, `fe80::215:5dff:fe00:1`.
    public var address: String
    /// Prefix length derived from the netmask (0 when the kernel gave none).
    public var prefixLength: Int
    public var isLoopback: Bool
    public var isUp: Bool

    public init(interface: String, family: Family, address: String, prefixLength: Int, isLoopback: Bool = false, isUp: Bool = true) {
        self.interface = interface
        self.family = family
        self.address = address
        self.prefixLength = prefixLength
        self.isLoopback = isLoopback
        self.isUp = isUp
    }

    /// IPv6 link-local (fe80::/10) or IPv4 link-local (169.254/16).
    public var isLinkLocal: Bool {
        switch family {
        case .ipv4: return address.hasPrefix("169.254.")
        case .ipv6:
            let head = address.lowercased()
            return head.hasPrefix("fe8") || head.hasPrefix("fe9") || head.hasPrefix("fea") || head.hasPrefix("feb")
        }
    }
}

/// Every IPv4/IPv6 address of every interface, in `getifaddrs` order.
public func interfaceAddresses() throws(SystemError) -> [InterfaceAddress] {
    var head: UnsafeMutablePointer<ifaddrs>?
    if getifaddrs(&head) != 0 { throw SystemError.last("getifaddrs") }
    defer { freeifaddrs(head) }
    var out: [InterfaceAddress] = []
    var cursor = head
    while let entry = cursor {
        defer { cursor = entry.pointee.ifa_next }
        guard let sa = entry.pointee.ifa_addr, let namePtr = entry.pointee.ifa_name else { continue }
        let flags = entry.pointee.ifa_flags
        let family = Int32(sa.pointee.sa_family)
        let name = String(cString: namePtr)
        let loopback = flags & UInt32(IFF_LOOPBACK) != 0
        let up = flags & UInt32(IFF_UP) != 0
        if family == AF_INET {
            let text = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { p -> String? in
                var a = p.pointee.sin_addr
                return addressText(AF_INET, &a, Int(INET_ADDRSTRLEN))
            }
            let prefix = entry.pointee.ifa_netmask.map { m in
                m.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr).nonzeroBitCount }
            } ?? 0
            if let text {
                out.append(InterfaceAddress(interface: name, family: .ipv4, address: text, prefixLength: prefix, isLoopback: loopback, isUp: up))
            }
        } else if family == AF_INET6 {
            let text = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p -> String? in
                var a = p.pointee.sin6_addr
                return addressText(AF_INET6, &a, Int(INET6_ADDRSTRLEN))
            }
            let prefix = entry.pointee.ifa_netmask.map { m in
                m.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p -> Int in
                    withUnsafeBytes(of: p.pointee.sin6_addr) { $0.reduce(0) { $0 + $1.nonzeroBitCount } }
                }
            } ?? 0
            if let text {
                out.append(InterfaceAddress(interface: name, family: .ipv6, address: text, prefixLength: prefix, isLoopback: loopback, isUp: up))
            }
        }
    }
    return out
}

private func addressText(_ family: Int32, _ address: UnsafeRawPointer, _ capacity: Int) -> String? {
    var buffer = [CChar](repeating: 0, count: capacity + 1)
    guard inet_ntop(family, address, &buffer, socklen_t(capacity)) != nil else { return nil }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// True when `text` is a valid IPv4 (`inet_pton(AF_INET)`) or IPv6 address.
public func parseIPAddress(_ text: String) -> InterfaceAddress.Family? {
    var v4 = in_addr()
    if inet_pton(AF_INET, text, &v4) == 1 { return .ipv4 }
    var v6 = in6_addr()
    if inet_pton(AF_INET6, text, &v6) == 1 { return .ipv6 }
    return nil
}

/// The fields of `uname(2)`.
public struct KernelIdentity: Sendable, Equatable {
    public var systemName: String
    public var nodeName: String
    public var release: String
    public var version: String
    public var machine: String

    public init(systemName: String, nodeName: String, release: String, version: String, machine: String) {
        self.systemName = systemName
        self.nodeName = nodeName
        self.release = release
        self.version = version
        self.machine = machine
    }
}

public func kernelIdentity() -> KernelIdentity {
    var u = utsname()
    _ = uname(&u)
    func field<T>(_ value: T) -> String {
        withUnsafeBytes(of: value) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
    return KernelIdentity(
        systemName: field(u.sysname), nodeName: field(u.nodename), release: field(u.release),
        version: field(u.version), machine: field(u.machine))
}

/// `gethostname(2)`.
public func hostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// The canonical name of `host` from `getaddrinfo(AF_INET, AI_CANONNAME)`. May block on DNS for
/// as long as the resolver's timeouts allow: never call it where a request is waiting.
public func canonicalHostName(_ host: String) -> Result<String, SystemError> {
    var hints = addrinfo()
    hints.ai_family = AF_INET
    hints.ai_flags = AI_CANONNAME
    var result: UnsafeMutablePointer<addrinfo>?
    let r = getaddrinfo(host, nil, &hints, &result)
    if r != 0 {
        let message = String(cString: gai_strerror(r))
        return .failure(SystemError("getaddrinfo \(host): \(message)", errno: 0))
    }
    defer { freeaddrinfo(result) }
    guard let first = result, let canon = first.pointee.ai_canonname else { return .success(host) }
    return .success(String(cString: canon))
}

/// The interface index of `name` (0 when there is none).
public func interfaceIndex(_ name: String) -> Int {
    Int(if_nametoindex(name))
}

/// Names in a directory (without `.` and `..`), unsorted; empty when it does not exist.
public func directoryEntries(_ path: String) -> [String] {
    (try? directoryEntryNames(path)) ?? []
}

/// Text form of a raw IPv4 (4 bytes) or IPv6 (16 bytes) address in network order.
public func ipAddressText(_ bytes: [UInt8]) -> String? {
    switch bytes.count {
    case 4:
        return bytes.withUnsafeBytes { addressText(AF_INET, $0.baseAddress!, Int(INET_ADDRSTRLEN)) }
    case 16:
        return bytes.withUnsafeBytes { addressText(AF_INET6, $0.baseAddress!, Int(INET6_ADDRSTRLEN)) }
    default:
        return nil
    }
}
