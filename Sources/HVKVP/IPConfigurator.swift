import Glibc
import HVSystem
import HVWire

/// Runs the few programs SET_IP_INFO needs (`networkctl`, `nmcli`, `ifup`, the compatibility
/// script). Arguments are an argv array: nothing is ever interpreted by a shell.
public protocol ProgramRunner: Sendable {
    /// Runs `program` (a bare name searched in the system directories, or an absolute path);
    /// returns nil on exit status 0, else what went wrong.
    func run(_ program: String, _ arguments: [String]) -> String?
}

/// Runs programs for real, each with a timeout well inside the kernel's 30 s.
public struct LiveProgramRunner: ProgramRunner {
    public var timeoutMilliseconds: Int
    public init(timeoutMilliseconds: Int = 20_000) { self.timeoutMilliseconds = timeoutMilliseconds }

    public func run(_ program: String, _ arguments: [String]) -> String? {
        let candidates = program.hasPrefix("/") ? [program] : ["/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"].map { $0 + program }
        guard let path = candidates.first(where: { fileKind($0) == .regular && access($0, X_OK) == 0 }) else {
            return "\(program): not found"
        }
        do {
            switch try spawnProgramAndWait(path, arguments: arguments, timeoutMilliseconds: timeoutMilliseconds) {
            case .exited(0): return nil
            case .exited(let code): return "\(path) exited with status \(code)"
            case .signalled(let s): return "\(path) killed by signal \(s)"
            case .timedOut: return "\(path) did not finish within \(timeoutMilliseconds) ms"
            }
        } catch {
            return error.description
        }
    }
}

/// Records the programs it is asked to run (tests); answers from `result`.
public final class RecordingProgramRunner: ProgramRunner {
    private let calls = Locked<[[String]]>([])
    private let result: @Sendable ([String]) -> String?

    public init(result: @escaping @Sendable ([String]) -> String? = { _ in nil }) { self.result = result }

    public var recorded: [[String]] { calls.current }

    public func run(_ program: String, _ arguments: [String]) -> String? {
        let argv = [program] + arguments
        calls.withLock { $0.append(argv) }
        return result(argv)
    }
}

/// SET_IP_INFO (PROTOCOL.md §2.9), done with native configuration:
/// 1. validate every field (`IPSettings.parse`; refused → E_INVALIDARG);
/// 2. find the interface whose `/sys/class/net/IF/device/device_id` is the adapter GUID
///    (none → WBEM_E_NOT_FOUND, as the reference);
/// 3. write the backend's file atomically and ask the network manager to apply it:
///    - `networkd`: `/etc/systemd/network/10-hvguest-IF.network`; `networkctl reload`, `networkctl reconfigure IF`;
///    - `networkmanager`: `/etc/NetworkManager/system-connections/hvguest-IF.nmconnection` (0600);
///      `nmcli connection load FILE`, `nmcli connection up id hvguest-IF`;
///    - `ifupdown`: `/etc/network/interfaces.d/hvguest-IF` (needs the stock `source` line);
///      `ifdown --force IF`, `ifup IF`;
///    - `script`: the reference contract — `STATE/ifcfg-IF` and `STATE/IF.nmconnection`, then
///      `set_ip_script IFCFG NMCONNECTION` (argv, no shell; non-zero exit → E_FAIL);
///    - `dry-run`: nothing is written; the reply's detail says what would have been;
///    - `auto`: networkd if it manages IF (its link state is not `unmanaged`), else
///      NetworkManager if it runs, else ifupdown if `/etc/network/interfaces` exists, else the
///      script if it is installed.
/// All paths are below `root` (`/` on a real system).
public struct NativeIPConfigurator: IPConfigurator {
    public let backend: KVPConfiguration.IPConfigBackend
    public let root: String
    public let stateDirectory: String
    public let scriptPath: String
    public let runner: any ProgramRunner

    public init(
        backend: KVPConfiguration.IPConfigBackend, root: String = "/", stateDirectory: String, scriptPath: String,
        runner: any ProgramRunner = LiveProgramRunner()
    ) {
        self.backend = backend
        self.root = root
        self.stateDirectory = stateDirectory
        self.scriptPath = scriptPath
        self.runner = runner
    }

    func path(_ p: String) -> String { root == "/" ? p : (root.hasSuffix("/") ? String(root.dropLast()) : root) + p }

    public func apply(_ info: KVPIPInfo) -> (status: HResult, detail: String) {
        let settings: IPSettings
        do { settings = try IPSettings.parse(info) } catch { return (.invalidArgument, "refused: \(error)") }
        guard let interface = interface(forGUID: settings.adapterGUID) else {
            return (.guidNotFound, "no interface has VMBus device id \(settings.adapterGUID)")
        }
        let mac = textFile(path("/sys/class/net/\(interface)/address"))?.trimmingWhitespace()
        let summary =
            "\(interface): dhcp=\(settings.dhcp) addresses=\(settings.addresses.map(\.cidr).joined(separator: ",")) "
            + "gateways=\(settings.gateways.joined(separator: ",")) dns=\(settings.dnsServers.joined(separator: ","))"
        let chosen = backend == .auto ? detectBackend(interface: interface) : backend
        guard let chosen else {
            return (.fail, "no supported network configuration system found for \(summary)")
        }
        do {
            switch chosen {
            case .dryRun, .auto:
                return (.ok, "dry-run, nothing changed: \(summary)")
            case .networkd:
                let file = path("/etc/systemd/network/10-hvguest-\(interface).network")
                try write(file, IPConfigRenderer.networkd(settings, interface: interface), mode: 0o644)
                if let e = runner.run("networkctl", ["reload"]) ?? runner.run("networkctl", ["reconfigure", interface]) {
                    return (.fail, "wrote \(file), applying failed: \(e)")
                }
                return (.ok, "networkd: \(summary)")
            case .networkmanager:
                let file = path("/etc/NetworkManager/system-connections/hvguest-\(interface).nmconnection")
                try write(file, IPConfigRenderer.networkManager(settings, interface: interface, mac: mac), mode: 0o600)
                if let e = runner.run("nmcli", ["connection", "load", file])
                    ?? runner.run("nmcli", ["connection", "up", "id", "hvguest-\(interface)"])
                {
                    return (.fail, "wrote \(file), applying failed: \(e)")
                }
                return (.ok, "NetworkManager: \(summary)")
            case .ifupdown:
                let file = path("/etc/network/interfaces.d/hvguest-\(interface)")
                try write(file, IPConfigRenderer.ifupdown(settings, interface: interface), mode: 0o644)
                _ = runner.run("ifdown", ["--force", interface])  // may legitimately fail: not up yet
                if let e = runner.run("ifup", [interface]) { return (.fail, "wrote \(file), applying failed: \(e)") }
                return (.ok, "ifupdown: \(summary)")
            case .script:
                let dir = stateDirectory.hasSuffix("/") ? String(stateDirectory.dropLast()) : stateDirectory
                let ifcfg = "\(dir)/ifcfg-\(interface)"
                let keyfile = "\(dir)/\(interface).nmconnection"
                try write(ifcfg, IPConfigRenderer.ifcfg(settings, interface: interface, mac: mac), mode: 0o644)
                try write(keyfile, IPConfigRenderer.networkManager(settings, interface: interface, mac: mac), mode: 0o600)
                if let e = runner.run(scriptPath, [ifcfg, keyfile]) { return (.fail, "\(e) (\(summary))") }
                return (.ok, "script \(scriptPath): \(summary)")
            }
        } catch {
            return (.fail, "\(error) (\(summary))")
        }
    }

    private func write(_ file: String, _ text: String, mode: mode_t) throws(SystemError) {
        if let slash = file.lastIndex(of: "/") { try makeDirectories(String(file[..<slash]), mode: 0o755) }
        try writeFileAtomically(file, Array(text.utf8), mode: mode)
    }

    /// The interface whose VMBus device id is `guid` (lower case, braces).
    public func interface(forGUID guid: String) -> String? {
        for name in directoryEntries(path("/sys/class/net")).sorted() where isSafeInterfaceName(name) {
            guard let id = textFile(path("/sys/class/net/\(name)/device/device_id")) else { continue }
            if id.trimmingWhitespace().lowercased() == guid { return name }
        }
        return nil
    }

    func detectBackend(interface: String) -> KVPConfiguration.IPConfigBackend? {
        let index = textFile(path("/sys/class/net/\(interface)/ifindex")).flatMap { Int($0.trimmingWhitespace()) } ?? 0
        if let link = textFile(path("/run/systemd/netif/links/\(index)")), let state = keyValueLine(link, "ADMIN_STATE"),
            state != "unmanaged"
        {
            return .networkd
        }
        if fileKind(path("/run/NetworkManager")) == .directory { return .networkmanager }
        if fileKind(path("/etc/network/interfaces")) == .regular { return .ifupdown }
        if fileKind(scriptPath) == .regular { return .script }
        return nil
    }
}

/// Kernel interface names: 1–15 bytes, no `/`, no whitespace or control characters. Names
/// go into file names and configuration lines, so anything else is not used.
func isSafeInterfaceName(_ name: String) -> Bool {
    guard !name.isEmpty, name.utf8.count <= 15, name != ".", name != ".." else { return false }
    return name.unicodeScalars.allSatisfy { s in
        (s.properties.isASCIIHexDigit || ("g"..."z").contains(s) || ("G"..."Z").contains(s) || "_-.@:".unicodeScalars.contains(s))
    }
}
