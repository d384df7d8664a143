import HVSystem

/// The intrinsic (auto pool) items, in the index order fixed by the host (PROTOCOL.md §2.7):
/// the host ENUMERATEs pool 2 with index 0, 1, … and expects exactly these keys.
public enum IntrinsicItem: UInt32, CaseIterable, Sendable {
    case fullyQualifiedDomainName = 0
    case integrationServicesVersion = 1
    case networkAddressIPv4 = 2
    case networkAddressIPv6 = 3
    case osBuildNumber = 4
    case osName = 5
    case osMajorVersion = 6
    case osMinorVersion = 7
    case osVersion = 8
    case processorArchitecture = 9

    public var key: String {
        switch self {
        case .fullyQualifiedDomainName: return "FullyQualifiedDomainName"
        case .integrationServicesVersion: return "IntegrationServicesVersion"
        case .networkAddressIPv4: return "NetworkAddressIPv4"
        case .networkAddressIPv6: return "NetworkAddressIPv6"
        case .osBuildNumber: return "OSBuildNumber"
        case .osName: return "OSName"
        case .osMajorVersion: return "OSMajorVersion"
        case .osMinorVersion: return "OSMinorVersion"
        case .osVersion: return "OSVersion"
        case .processorArchitecture: return "ProcessorArchitecture"
        }
    }
}

/// Computes intrinsic values. OS and kernel facts are read once (they do not change while we
/// run); addresses are read at each request (cheap: one `getifaddrs`); the FQDN comes from a
/// `HostNameResolver`, never from a DNS lookup on the request path.
public struct IntrinsicItems: Sendable {
    /// The kernel converts guest strings to at most 1022 UTF-16 units (PROTOCOL.md §2.3); longer
    /// address lists are cut at an address boundary instead of mid-address.
    public static let maxValueUnits = 1022
    /// What the reference reports when registration gave no version.
    public static let unknownVersion = "Unknown version"

    public let facts: any SystemFacts
    public let configuration: KVPConfiguration
    public let os: OSDescription
    public let kernel: KernelIdentity

    public init(facts: any SystemFacts, configuration: KVPConfiguration) {
        self.facts = facts
        self.configuration = configuration
        kernel = facts.kernel()
        os = OSDescription.derive(osRelease: facts.osRelease(), legacyRelease: facts.legacyRelease(), kernelName: kernel.systemName)
    }

    /// The record at ENUMERATE index `index`, nil (HV_S_CONT) from index 10 on.
    public func record(at index: UInt32, fqdn: String, integrationServicesVersion: String?) -> KVPRecord? {
        guard let item = IntrinsicItem(rawValue: index) else { return nil }
        return KVPRecord(key: item.key, value: value(item, fqdn: fqdn, integrationServicesVersion: integrationServicesVersion))
    }

    public func value(_ item: IntrinsicItem, fqdn: String, integrationServicesVersion: String?) -> String {
        switch item {
        case .fullyQualifiedDomainName: return fqdn
        case .integrationServicesVersion:
            guard let v = integrationServicesVersion, !v.isEmpty else { return Self.unknownVersion }
            return v
        case .networkAddressIPv4: return addressList(.ipv4)
        case .networkAddressIPv6: return addressList(.ipv6)
        case .osBuildNumber: return kernel.release
        case .osName: return os.name
        case .osMajorVersion: return os.majorVersion
        case .osMinorVersion: return os.minorVersion
        case .osVersion: return String(kernel.release.prefix { $0 != "-" })
        case .processorArchitecture: return kernel.machine
        }
    }

    /// Addresses of every reported interface, `;`-separated, no trailing `;`.
    public func addressList(_ family: InterfaceAddress.Family) -> String {
        var seen: Set<String> = []
        var out = ""
        for a in facts.interfaceAddresses() where a.family == family && !a.isLoopback {
            guard configuration.reports(interface: a.interface) else { continue }
            if a.isLinkLocal && !configuration.reportLinkLocal { continue }
            guard seen.insert(a.address).inserted else { continue }
            let next = out.isEmpty ? a.address : out + ";" + a.address
            if next.utf16.count > Self.maxValueUnits { break }
            out = next
        }
        return out
    }
}

/// Keeps the fully qualified host name fresh on its own thread, so requests only read a cached
/// string. The reference resolves once at start and blocks startup on DNS (§6.3 K6); we start
/// with the plain host name, resolve in the background, re-resolve every `refreshSeconds`, and
/// at once when the host name changes (checked every few seconds).
public final class HostNameResolver: Sendable {
    private let facts: any SystemFacts
    private let refreshMilliseconds: Int32
    private let checkMilliseconds: Int32
    private let state: Locked<State>
    private let wake: EventFD?

    private struct State {
        var fqdn: String
        var resolvedFor: String?
        var thread: OSThread?
        var stopping = false
    }

    public init(facts: any SystemFacts, refreshSeconds: Double = 300, hostNameCheckSeconds: Double = 5) {
        self.facts = facts
        refreshMilliseconds = Int32(max(1, min(refreshSeconds, 86_400)) * 1000)
        checkMilliseconds = Int32(max(0.01, min(hostNameCheckSeconds, 3600)) * 1000)
        state = Locked(State(fqdn: facts.hostName()))
        wake = try? EventFD()
    }

    /// The latest answer: the canonical name, or the host name until (or unless) one resolves.
    public var current: String { state.withLock { $0.fqdn } }

    /// Resolves now on the calling thread (startup in tests; never on a request path).
    public func refreshNow() {
        let host = facts.hostName()
        let name = facts.canonicalName(of: host) ?? host
        state.withLock {
            $0.fqdn = name.isEmpty ? host : name
            $0.resolvedFor = host
        }
    }

    /// Starts the background thread (idempotent).
    public func start() throws(SystemError) {
        let running = state.withLock { $0.thread != nil }
        if running { return }
        let thread = try OSThread(name: "kvp-fqdn") { [self] in run() }
        state.withLock { $0.thread = thread }
    }

    /// Asks the thread to stop and waits for it (a lookup in progress finishes first).
    public func stop() {
        let thread = state.withLock { s -> OSThread? in
            s.stopping = true
            let t = s.thread
            s.thread = nil
            return t
        }
        wake?.signal()
        thread?.join()
    }

    private func run() {
        var sinceRefresh: Int32 = 0
        refreshNow()
        while true {
            if state.withLock({ $0.stopping }) { return }
            if let wake {
                let events = (try? poll([(wake.fd, .readable)], timeoutMilliseconds: checkMilliseconds)) ?? []
                if events.first?.contains(.readable) == true { wake.drain() }
            } else {
                sleepMilliseconds(Int(checkMilliseconds))
            }
            if state.withLock({ $0.stopping }) { return }
            sinceRefresh &+= checkMilliseconds
            let host = facts.hostName()
            let changed = state.withLock { $0.resolvedFor != host }
            if changed || sinceRefresh >= refreshMilliseconds {
                sinceRefresh = 0
                refreshNow()
            }
        }
    }
}
