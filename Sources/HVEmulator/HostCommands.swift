import HVSystem
import HVWire

/// The host operations as text commands: what `hvguest-emulator <verb>` sends to a running
/// `hvguest-emulator serve` over its control socket, and what `demo` runs directly.
public enum HostCommands {
    public struct Output: Sendable {
        public var ok: Bool
        public var text: String
        public init(ok: Bool, text: String) {
            self.ok = ok
            self.text = text
        }
    }

    public static let usage = """
        status
        kvp-set POOL KEY VALUE          add or modify an item (host pools: 0 external, 3 auto-external)
        kvp-delete POOL KEY
        kvp-get POOL KEY
        kvp-list POOL                   enumerate a pool as the host does (1 = guest items, 2 = intrinsic)
        kvp-get-ip MAC
        vss-freeze | vss-thaw | vss-hot-backup
        vss-backup [HOLD_MS]            freeze, hold, thaw
        copy-file SRC DEST [--overwrite] [--create-full-path]
        shutdown [--force] [--reboot] [--hibernate] [--reason N] [--message TEXT]
        time-sample --offset-ms X [--sync] [--age-seconds S]
        heartbeat [COUNT]
        """

    /// Runs one command against `host`.
    public static func run(_ args: [String], host: EmulatedHost) async -> Output {
        guard let verb = args.first else { return Output(ok: false, text: "no command; commands:\n\(usage)") }
        let rest = Array(args.dropFirst())
        func pool(_ s: String) -> KVPPool? { UInt8(s).flatMap(KVPPool.init(rawValue:)) }
        func result(_ h: HResult) -> Output { Output(ok: h.isSuccess, text: h.description) }
        switch (verb, rest.count) {
        case ("status", 0):
            let lines = host.devices.map { d in
                "\(d.kind): \(d.isRegistered ? "registered" : d.isConnected ? "connected, not registered" : "no daemon") (registrations: \(d.registrationCount))"
            }
            var uioLines: [String] = []
            if let c = host.fcopy.uio?.channel {
                let state: String
                if let v = c.negotiatedVersions {
                    state = "negotiated \(v.framework)/\(v.message)"
                } else {
                    state = c.isGuestConnected ? "connected, not negotiated" : "no daemon"
                }
                uioLines.append("fcopy (uio \(c.devicePath)): \(state) (connections: \(c.connectionCount))")
            }
            uioLines += host.icHosts.map { ic in "\(ic.kind): \(ic.componentStatus)" }
            return Output(ok: true, text: (lines + uioLines).joined(separator: "\n"))
        case ("shutdown", _), ("time-sample", _), ("heartbeat", _):
            return await runIC(verb, rest, host: host)
        case ("kvp-set", 3):
            guard let p = pool(rest[0]) else { return badPool(rest[0]) }
            return result(await host.kvp.set(pool: p, key: rest[1], value: rest[2]))
        case ("kvp-delete", 2):
            guard let p = pool(rest[0]) else { return badPool(rest[0]) }
            return result(await host.kvp.delete(pool: p, key: rest[1]))
        case ("kvp-get", 2):
            guard let p = pool(rest[0]) else { return badPool(rest[0]) }
            let (st, v) = await host.kvp.get(pool: p, key: rest[1])
            return Output(ok: st.isSuccess, text: v ?? st.description)
        case ("kvp-list", 1):
            guard let p = pool(rest[0]) else { return badPool(rest[0]) }
            let (items, end) = await host.kvp.enumerate(pool: p)
            var lines = items.map(\.description)
            lines.append("(\(items.count) items; enumeration ended with \(end))")
            return Output(ok: end == .noMoreItems, text: lines.joined(separator: "\n"))
        case ("kvp-get-ip", 1):
            let (st, info) = await host.kvp.getIPInfo(mac: rest[0])
            guard st.isSuccess, let info else { return result(st) }
            return Output(ok: true, text: """
                adapter \(info.adapterID) family \(info.addressFamily) dhcp \(info.dhcpEnabled)
                addresses \(info.ipAddresses)
                subnets \(info.subnets)
                gateways \(info.gateways)
                dns \(info.dnsServers)
                """)
        case ("vss-freeze", 0): return result(await host.vss.freeze())
        case ("vss-thaw", 0): return result(await host.vss.thaw())
        case ("vss-hot-backup", 0): return result(await host.vss.request(.hotBackup))
        case ("vss-backup", 0), ("vss-backup", 1):
            let hold = rest.first.flatMap { Int($0) } ?? 100
            let r = await host.vss.backup(hold: .milliseconds(hold))
            return Output(ok: r.succeeded, text: r.description)
        case ("copy-file", 2...4):
            let flags = Set(rest.dropFirst(2))
            guard flags.isSubset(of: ["--overwrite", "--create-full-path"]) else {
                return Output(ok: false, text: "unknown option in \(flags.sorted()); use --overwrite, --create-full-path")
            }
            let dest = rest[1]
            guard let slash = dest.lastIndex(of: "/"), dest.index(after: slash) < dest.endIndex else {
                return Output(ok: false, text: "DEST must be a full path with a file name, e.g. /tmp/dir/file")
            }
            let data: [UInt8]
            do { data = try readFile(rest[0], limit: 1 << 34) } catch { return Output(ok: false, text: "\(error)") }
            let dir = slash == dest.startIndex ? "/" : String(dest[..<slash])
            let r = await host.fcopy.copy(data, toDirectory: dir, name: String(dest[dest.index(after: slash)...]),
                                          overwrite: flags.contains("--overwrite"), createFullPath: flags.contains("--create-full-path"))
            return Output(ok: r.state == .completed, text: r.description)
        default:
            return Output(ok: false, text: "unknown command or wrong arguments: \(args.joined(separator: " "))\ncommands:\n\(usage)")
        }
    }

    /// The util IC verbs. Their host calls block (one request in flight, answered or timed
    /// out), so they run on their own thread, never on the cooperative pool.
    private static func runIC(_ verb: String, _ args: [String], host: EmulatedHost) async -> Output {
        await withCheckedContinuation { (done: CheckedContinuation<Output, Never>) in
            do {
                _ = try OSThread(name: "emu-ic") { done.resume(returning: runICBlocking(verb, args, host: host)) }
            } catch {
                done.resume(returning: Output(ok: false, text: "\(error)"))
            }
        }
    }

    static func runICBlocking(_ verb: String, _ args: [String], host: EmulatedHost) -> Output {
        var options: [String: String] = [:]
        var switches: Set<String> = []
        var positional: [String] = []
        var i = 0
        while i < args.count {
            let a = args[i]
            if ["--reason", "--message", "--offset-ms", "--age-seconds"].contains(a), i + 1 < args.count {
                options[a] = args[i + 1]
                i += 2
            } else if a.hasPrefix("--") {
                switches.insert(a)
                i += 1
            } else {
                positional.append(a)
                i += 1
            }
        }
        func outcome(_ o: ICRequestOutcome) -> Output { Output(ok: o.status?.isSuccess ?? false, text: o.description) }
        switch verb {
        case "shutdown":
            guard let shutdown = host.shutdown else {
                return Output(ok: false, text: "this emulator serves no shutdown IC (serve --ics)")
            }
            guard switches.isSubset(of: ["--force", "--reboot", "--hibernate"]), positional.isEmpty else {
                return Output(ok: false, text: "usage: shutdown [--force] [--reboot] [--hibernate] [--reason N] [--message TEXT]")
            }
            guard let reason = UInt32(options["--reason"] ?? "0") else { return Output(ok: false, text: "--reason must be a number") }
            return outcome(shutdown.initiateShutdown(
                force: switches.contains("--force"), reboot: switches.contains("--reboot"),
                hibernate: switches.contains("--hibernate"), reason: reason, message: options["--message"] ?? ""))
        case "time-sample":
            guard let timeSync = host.timeSync else {
                return Output(ok: false, text: "this emulator serves no time-sync IC (serve --ics)")
            }
            guard switches.isSubset(of: ["--sync"]), positional.isEmpty,
                let offset = Double(options["--offset-ms"] ?? "0"), let age = Double(options["--age-seconds"] ?? "0")
            else { return Output(ok: false, text: "usage: time-sample --offset-ms X [--sync] [--age-seconds S]") }
            return outcome(timeSync.sendSample(offsetMilliseconds: offset, sync: switches.contains("--sync"), ageSeconds: age))
        default:
            guard let heartbeat = host.heartbeat else {
                return Output(ok: false, text: "this emulator serves no heartbeat IC (serve --ics)")
            }
            let count = positional.first.flatMap { Int($0) } ?? 1
            var lines: [String] = []
            for _ in 0..<max(1, min(count, 1000)) {
                let r = heartbeat.beat()
                lines.append("heartbeat \(r.sent) → \(r.echoed.map(String.init) ?? "-") (\(r.outcome))")
                if r.outcome.status?.isSuccess != true {
                    return Output(ok: false, text: (lines + ["component status: \(heartbeat.componentStatus)"]).joined(separator: "\n"))
                }
            }
            return Output(ok: true, text: (lines + ["component status: \(heartbeat.componentStatus)"]).joined(separator: "\n"))
        }
    }

    private static func badPool(_ s: String) -> Output {
        Output(ok: false, text: "pool must be 0…4, got \(s)")
    }
}

/// The control socket of `hvguest-emulator serve` (`ROOT/emulator.sock`): one seqpacket message
/// per command (arguments separated by NUL bytes), one message back (`OK\n…` or `ERR\n…`).
public final class EmulatorControl: @unchecked Sendable {
    public static func socketPath(root: String) -> String { (root.hasSuffix("/") ? root : root + "/") + "emulator.sock" }

    private let host: EmulatedHost
    private let listener: Descriptor
    private let wake: EventFD
    private var thread: OSThread?
    private let path: String

    public init(host: EmulatedHost) throws(SystemError) {
        self.host = host
        path = Self.socketPath(root: host.root)
        listener = try SeqPacket.listen(path)
        wake = try EventFD()
    }

    public func start() throws(SystemError) {
        thread = try OSThread(name: "emu-control") { [self] in serve() }
    }

    public func stop() {
        wake.signal()
        thread?.join()
        listener.close()
        removeTree(path)
    }

    private func serve() {
        while true {
            guard let ev = try? poll([(listener.fd, .readable), (wake.fd, .readable)], timeoutMilliseconds: -1) else { return }
            if !ev[1].isEmpty { return }
            guard ev[0].contains(.readable), let conn = try? SeqPacket.accept(listener) else { continue }
            guard case .message(let m)? = try? conn.receive(capacity: 65536) else { continue }
            let args = m.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            let host = self.host
            Task {
                let out = await HostCommands.run(args, host: host)
                try? conn.send(Array(((out.ok ? "OK\n" : "ERR\n") + out.text).utf8))
                conn.close()
            }
        }
    }

    /// Client side: sends one command to a serving emulator and returns its answer.
    public static func send(_ args: [String], root: String, timeoutMilliseconds: Int32 = 3_600_000) throws(SystemError) -> HostCommands.Output {
        let c = try SeqPacket.connect(socketPath(root: root))
        var msg: [UInt8] = []
        for (i, a) in args.enumerated() {
            if i > 0 { msg.append(0) }
            msg += Array(a.utf8)
        }
        try c.send(msg)
        let ev = try poll([(c.fd, .readable)], timeoutMilliseconds: timeoutMilliseconds)
        guard ev[0].contains(.readable) else { throw SystemError("no answer from the emulator", errno: 110) }
        guard case .message(let reply) = try c.receive(capacity: 1 << 22) else {
            throw SystemError("the emulator closed the control connection", errno: 104)
        }
        let text = String(decoding: reply, as: UTF8.self)
        let ok = text.hasPrefix("OK\n")
        return HostCommands.Output(ok: ok, text: String(text.dropFirst(ok ? 3 : 4)))
    }
}
