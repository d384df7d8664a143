import Glibc
import HVServiceKit
import HVSystem
import Logging

/// The status socket `hvguestctl status` reads (docs/STATUS.md): a `SOCK_SEQPACKET` Unix socket
/// in the runtime directory, mode 0600. Each connection gets exactly one message — the whole
/// status as one JSON document — and is closed; the client sends nothing.
///
/// One OS thread polls the listener and an eventfd (for `stop`), so a slow or stuck client can
/// never touch the channel threads: the snapshot is built under the status board's lock and
/// sent without waiting (a client that does not read loses its answer, not our time).
public final class StatusServer: @unchecked Sendable {
    public let socketPath: String
    private let listener: Descriptor
    private let wake: EventFD
    private let document: @Sendable () -> JSONValue
    private var thread: OSThread?

    /// File name of the socket for a daemon running `services` (`status.sock` when it runs
    /// every service): one daemon per unit shares the runtime directory, so each names its own
    /// socket after its services (`status-kvp-fcopy.sock`), and `hvguestctl` reads them all.
    public static func socketName(for services: [ServiceName]) -> String {
        services.isEmpty ? "status.sock" : "status-" + services.map(\.rawValue).joined(separator: "-") + ".sock"
    }

    /// The services a socket name stands for (nil = not a status socket; [] = every service).
    public static func services(inSocketName name: String) -> [ServiceName]? {
        if name == "status.sock" { return [] }
        guard name.hasPrefix("status-"), name.hasSuffix(".sock") else { return nil }
        let middle = name.dropFirst("status-".count).dropLast(".sock".count)
        let names = middle.split(separator: "-").map { ServiceName(rawValue: String($0)) }
        guard !names.isEmpty, names.allSatisfy({ $0 != nil }) else { return nil }
        return names.compactMap { $0 }
    }

    /// Binds the socket (replacing a stale one a crashed run left) and starts answering.
    public init(socketPath: String, document: @escaping @Sendable () -> JSONValue) throws(SystemError) {
        self.socketPath = socketPath
        self.document = document
        // 0600 right after bind. Not by narrowing the umask around bind: the umask is
        // process-wide, and files other threads created meanwhile (pool files, copies, the
        // frozen record, test files) got mode 0600 / directories 0600 (found by a parallel test
        // run). Until the chmod the socket has the mode the umask gives (0750 under the units'
        // UMask=0027, 0755 with 022): connecting needs write permission, so only the owner can.
        listener = try SeqPacket.listen(socketPath, backlog: 16)
        try SocketFile.setMode(socketPath, 0o600)
        wake = try EventFD()
        let listener = self.listener
        let wake = self.wake
        thread = try OSThread(name: "hv-status") {
            Self.serve(listener: listener, wake: wake, document: document)
        }
    }

    private static func serve(listener: Descriptor, wake: EventFD, document: @Sendable () -> JSONValue) {
        while true {
            guard let ev = try? poll([(listener.fd, .readable), (wake.fd, .readable)], timeoutMilliseconds: -1) else { return }
            if !ev[1].isEmpty { return }
            guard ev[0].contains(.readable) else {
                if !ev[0].isEmpty { return }  // listener broken: nothing more to serve
                continue
            }
            guard let client = try? SeqPacket.accept(listener) else { continue }
            // A peer that vanished (EPIPE) or whose buffer is full simply misses its answer.
            try? client.send(Array(document().serialized().utf8))
            client.close()
        }
    }

    /// Stops the thread, closes the socket and removes its file.
    public func stop() {
        wake.signal()
        thread?.join()
        thread = nil
        listener.close()
        try? SocketFile.remove(socketPath)
    }
}

extension Daemon {
    /// Everything `hvguestctl status --json` shows for this daemon (docs/STATUS.md).
    public func statusDocument() -> JSONValue {
        var extra: [ServiceName: [String: String]] = [:]
        for (name, reporter) in statusReporters.withLock({ $0 }) { extra[name] = reporter.statusDetails() }
        let daemon: JSONValue = .object([
            ("pid", .integer(Int64(getpid()))),
            ("services_requested", .array(options.services.map { .string($0.rawValue) })),
            ("device_root", .string(options.deviceRoot)),
            ("emulated", .bool(options.deviceRoot != "/")),
            ("runtime_directory", .string(options.resolvedRuntimeDirectory)),
            ("state_directory", .string(options.resolvedStateDirectory)),
            ("started_at", .integer(Int64(startedAt))),
        ])
        let services = status.snapshot().map { $0.json(details: extra[$0.service] ?? [:]) }
        return .object([("daemon", daemon), ("services", .array(services))])
    }

    /// Starts the status socket; a daemon without one still does its job, so failure is logged.
    func startStatusServer() -> StatusServer? {
        let path = options.resolvedRuntimeDirectory + "/" + StatusServer.socketName(for: options.services)
        do {
            return try StatusServer(socketPath: path) { [self] in statusDocument() }
        } catch {
            logger.warning("status socket \(path) unavailable (hvguestctl status will not see this daemon): \(error), ignoring")
            return nil
        }
    }
}
