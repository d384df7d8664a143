import HVServiceKit

/// The `[kvp]` section of hvguest.toml. The state directory is not here: it comes from
/// `ServiceEnvironment.stateDirectory` (`--state-dir`, default `/var/lib/hyperv`).
public struct KVPConfiguration: Sendable, Equatable {
    /// How SET_IP_INFO applies the host's settings.
    public enum IPConfigBackend: String, Sendable, CaseIterable {
        /// Pick from what runs on the machine (networkd, NetworkManager, ifupdown).
        case auto
        case networkd
        case networkmanager
        case ifupdown
        /// Run an `hv_set_ifconfig`-style script (`set_ip_script`) with the reference file contract.
        case script
        /// Only log the change that would be made.
        case dryRun = "dry-run"
    }

    /// Default record cap per pool: 20,000 records = 51 MB of file and at most ~11 MB of keys in
    /// memory in the worst case (511-byte keys), far above what hosts and agents use (azure-init
    /// caps itself at 1,024). The host can fill pools 0 and 3, so this bounds what it can make
    /// us store.
    public static let defaultMaxRecordsPerPool = 20_000
    public static let defaultExcludedInterfaces = ["lo", "docker*", "veth*", "virbr*", "br-*"]

    /// `fsync`: sync every change before acknowledging it (survives power loss). Default false,
    /// like the reference daemon (a process crash never loses an acknowledged write either way).
    public var synchronousWrites: Bool
    /// `max_records_per_pool`: inserts beyond it fail (the host sees HV_S_CONT, as for any failed SET).
    public var maxRecordsPerPool: Int
    /// `include_interfaces`: glob patterns; when non-empty only matching interfaces are reported.
    public var includeInterfaces: [String]
    /// `exclude_interfaces`: glob patterns never reported (loopback is always excluded).
    public var excludeInterfaces: [String]
    /// `report_link_local`: include fe80::/10 and 169.254/16 addresses (default false).
    public var reportLinkLocal: Bool
    /// `ip_config_backend`.
    public var ipConfigBackend: IPConfigBackend
    /// `set_ip_script`: the script run by the `script` backend.
    public var setIPScript: String
    /// `fqdn_refresh_seconds`: how often the background thread re-resolves the FQDN.
    public var fqdnRefreshSeconds: Double

    public init(
        synchronousWrites: Bool = false,
        maxRecordsPerPool: Int = KVPConfiguration.defaultMaxRecordsPerPool,
        includeInterfaces: [String] = [],
        excludeInterfaces: [String] = KVPConfiguration.defaultExcludedInterfaces,
        reportLinkLocal: Bool = false,
        ipConfigBackend: IPConfigBackend = .auto,
        setIPScript: String = "/usr/libexec/hypervkvpd/hv_set_ifconfig",
        fqdnRefreshSeconds: Double = 300
    ) {
        self.synchronousWrites = synchronousWrites
        self.maxRecordsPerPool = maxRecordsPerPool
        self.includeInterfaces = includeInterfaces
        self.excludeInterfaces = excludeInterfaces
        self.reportLinkLocal = reportLinkLocal
        self.ipConfigBackend = ipConfigBackend
        self.setIPScript = setIPScript
        self.fqdnRefreshSeconds = fqdnRefreshSeconds
    }

    public static let knownKeys: Set<String> = [
        "fsync", "max_records_per_pool", "include_interfaces", "exclude_interfaces", "report_link_local",
        "ip_config_backend", "set_ip_script", "fqdn_refresh_seconds",
    ]

    /// Reads and validates the section; every error names the file, line and key.
    public init(section: ConfigSection) throws(ConfigError) {
        try section.checkKnownKeys(Self.knownKeys)
        let defaults = KVPConfiguration()
        synchronousWrites = try section.bool("fsync", default: defaults.synchronousWrites)
        maxRecordsPerPool = Int(
            try section.integer("max_records_per_pool", default: Int64(defaults.maxRecordsPerPool), range: 1...1_000_000))
        includeInterfaces = try section.stringArray("include_interfaces", default: defaults.includeInterfaces)
        excludeInterfaces = try section.stringArray("exclude_interfaces", default: defaults.excludeInterfaces)
        reportLinkLocal = try section.bool("report_link_local", default: defaults.reportLinkLocal)
        let backend = try section.choice(
            "ip_config_backend", allowed: IPConfigBackend.allCases.map(\.rawValue), default: defaults.ipConfigBackend.rawValue)
        ipConfigBackend = IPConfigBackend(rawValue: backend) ?? .auto
        let script = try section.string("set_ip_script", default: defaults.setIPScript)
        guard script.hasPrefix("/") else { throw section.error("set_ip_script", "must be an absolute path, got \"\(script)\"") }
        setIPScript = script
        fqdnRefreshSeconds = try section.seconds("fqdn_refresh_seconds", default: defaults.fqdnRefreshSeconds, range: 5...86_400)
    }

    /// Store options derived from this configuration.
    public var storeOptions: KVPStoreOptions {
        KVPStoreOptions(synchronousWrites: synchronousWrites, maxRecords: maxRecordsPerPool)
    }

    /// Whether addresses of `interface` are reported (intrinsic lists and GET_IP_INFO).
    public func reports(interface: String) -> Bool {
        if interface == "lo" { return false }
        if !includeInterfaces.isEmpty && !includeInterfaces.contains(where: { globMatch($0, interface) }) { return false }
        return !excludeInterfaces.contains(where: { globMatch($0, interface) })
    }
}

/// Shell-style glob match of `name` against `pattern` (`*`, `?`, `[abc]`, `[a-z]`, `[!x]`).
public func globMatch(_ pattern: String, _ name: String) -> Bool {
    let p = Array(pattern.unicodeScalars)
    let n = Array(name.unicodeScalars)
    func match(_ pi: Int, _ ni: Int) -> Bool {
        var pi = pi
        var ni = ni
        while pi < p.count {
            switch p[pi] {
            case "*":
                while pi < p.count && p[pi] == "*" { pi += 1 }
                if pi == p.count { return true }
                var k = ni
                while k <= n.count {
                    if match(pi, k) { return true }
                    k += 1
                }
                return false
            case "?":
                guard ni < n.count else { return false }
                pi += 1
                ni += 1
            case "[":
                guard ni < n.count, let close = p[(pi + 1)...].firstIndex(of: "]"), close > pi + 1 else {
                    guard ni < n.count, p[pi] == n[ni] else { return false }
                    pi += 1
                    ni += 1
                    continue
                }
                var set = Array(p[(pi + 1)..<close])
                let negate = set.first == "!" || set.first == "^"
                if negate { set.removeFirst() }
                var hit = false
                var i = 0
                while i < set.count {
                    if i + 2 < set.count && set[i + 1] == "-" {
                        if set[i].value <= n[ni].value && n[ni].value <= set[i + 2].value { hit = true }
                        i += 3
                    } else {
                        if set[i] == n[ni] { hit = true }
                        i += 1
                    }
                }
                guard hit != negate else { return false }
                pi = close + 1
                ni += 1
            default:
                guard ni < n.count, p[pi] == n[ni] else { return false }
                pi += 1
                ni += 1
            }
        }
        return ni == n.count
    }
    return match(0, 0)
}
