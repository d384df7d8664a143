import HVSystem

/// What the KVP service asks of the machine it runs on. The live implementation reads the
/// system; tests use `FixedSystemFacts`.
public protocol SystemFacts: Sendable {
    func kernel() -> KernelIdentity
    func hostName() -> String
    /// The canonical (fully qualified) name of `host`; may block on DNS. Nil when unresolvable.
    func canonicalName(of host: String) -> String?
    /// `/etc/os-release` (or `/usr/lib/os-release`), if present.
    func osRelease() -> String?
    /// `/etc/SuSE-release` or `/etc/redhat-release`, if present.
    func legacyRelease() -> String?
    func interfaceAddresses() -> [InterfaceAddress]
}

/// The running system. Files are read below `root` (`/` normally, a fake tree in tests).
public struct LiveSystemFacts: SystemFacts {
    public let root: String

    public init(root: String = "/") { self.root = root }

    func path(_ p: String) -> String { root == "/" ? p : root + p }

    public func kernel() -> KernelIdentity { HVSystem.kernelIdentity() }
    public func hostName() -> String { HVSystem.hostName() }

    public func canonicalName(of host: String) -> String? {
        switch HVSystem.canonicalHostName(host) {
        case .success(let name): return name
        case .failure: return nil
        }
    }

    public func osRelease() -> String? {
        textFile(path("/etc/os-release")) ?? textFile(path("/usr/lib/os-release"))
    }

    public func legacyRelease() -> String? {
        textFile(path("/etc/SuSE-release")) ?? textFile(path("/etc/redhat-release"))
    }

    public func interfaceAddresses() -> [InterfaceAddress] {
        (try? HVSystem.interfaceAddresses()) ?? []
    }
}

/// Fixed answers, for tests and the emulator.
public struct FixedSystemFacts: SystemFacts {
    public var kernelIdentity: KernelIdentity
    public var host: String
    public var canonicalNames: [String: String]
    public var osReleaseText: String?
    public var legacyReleaseText: String?
    public var addresses: [InterfaceAddress]

    public init(
        kernelIdentity: KernelIdentity = KernelIdentity(
            systemName: "Linux", nodeName: "vm1", release: "6.8.0-45-generic", version: "#45", machine: "x86_64"),
        host: String = "vm1",
        canonicalNames: [String: String] = [:],
        osReleaseText: String? = nil,
        legacyReleaseText: String? = nil,
        addresses: [InterfaceAddress] = []
    ) {
        self.kernelIdentity = kernelIdentity
        self.host = host
        self.canonicalNames = canonicalNames
        self.osReleaseText = osReleaseText
        self.legacyReleaseText = legacyReleaseText
        self.addresses = addresses
    }

    public func kernel() -> KernelIdentity { kernelIdentity }
    public func hostName() -> String { host }
    public func canonicalName(of host: String) -> String? { canonicalNames[host] }
    public func osRelease() -> String? { osReleaseText }
    public func legacyRelease() -> String? { legacyReleaseText }
    public func interfaceAddresses() -> [InterfaceAddress] { addresses }
}

/// A small text file as a string (nil when missing or unreadable).
func textFile(_ path: String, limit: Int = 1 << 20) -> String? {
    guard let bytes = try? readFile(path, limit: limit) else { return nil }
    return String(decoding: bytes, as: UTF8.self)
}
