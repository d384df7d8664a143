import Glibc
import HVServiceKit
import HVSystem

/// What `hvguestctl status` gathers: every status socket in the runtime directory (one per
/// running hvguestd: one per unit on a packaged system), merged into one report.
public struct StatusCollection: Sendable {
    /// One daemon's answer, or why there was none.
    public struct DaemonReply: Sendable {
        public var socketPath: String
        /// The services the socket's name says the daemon runs ([] = all).
        public var namedServices: [ServiceName]
        public var document: JSONValue?
        public var error: String?
    }

    public var runtimeDirectory: String
    public var daemons: [DaemonReply]

    /// `hvguestctl status` exit codes.
    public enum Health: Int32, Sendable {
        case healthy = 0
        /// A service is in error or stopped, or one of several daemons does not answer.
        case unhealthy = 1
        /// No daemon answered at all.
        case unreachable = 2
    }

    /// Asks every `status*.sock` in `runtimeDirectory` (each answer bounded by `timeoutMilliseconds`).
    public static func gather(runtimeDirectory: String, timeoutMilliseconds: Int32 = 2000) -> StatusCollection {
        let names = ((try? directoryEntryNames(runtimeDirectory)) ?? []).filter { StatusServer.services(inSocketName: $0) != nil }.sorted()
        let daemons = names.map { name -> DaemonReply in
            let path = runtimeDirectory + "/" + name
            let named = StatusServer.services(inSocketName: name) ?? []
            do {
                return DaemonReply(socketPath: path, namedServices: named,
                                   document: try query(socketPath: path, timeoutMilliseconds: timeoutMilliseconds))
            } catch {
                return DaemonReply(socketPath: path, namedServices: named, error: "\(error)")
            }
        }
        return StatusCollection(runtimeDirectory: runtimeDirectory, daemons: daemons)
    }

    /// Reads one daemon's status document.
    public static func query(socketPath: String, timeoutMilliseconds: Int32) throws -> JSONValue {
        let socket = try SeqPacket.connect(socketPath)
        defer { socket.close() }
        let ev = try poll([(socket.fd, .readable)], timeoutMilliseconds: timeoutMilliseconds)
        guard !ev[0].isEmpty else { throw StatusClientError("no answer within \(timeoutMilliseconds) ms") }
        switch try socket.receive(capacity: 4 << 20) {
        case .message(let bytes):
            guard let text = String(validating: bytes, as: UTF8.self) else { throw StatusClientError("answer is not UTF-8") }
            return try JSONValue.parse(text)
        case .truncated(let n): throw StatusClientError("answer too large (\(n) bytes)")
        case .closed: throw StatusClientError("closed without an answer")
        }
    }

    /// Every service object, in service order; a daemon that did not answer contributes one
    /// entry per service its socket names, in state `daemon_unreachable`.
    public var services: [JSONValue] {
        var out: [(ServiceName?, JSONValue)] = []
        for d in daemons {
            if let doc = d.document {
                for s in doc["services"]?.arrayValue ?? [] {
                    out.append((s["service"]?.stringValue.flatMap(ServiceName.init(rawValue:)), s))
                }
            } else {
                for name in d.namedServices {
                    out.append((name, .object([
                        ("service", .string(name.rawValue)), ("state", .string("daemon_unreachable")),
                        ("healthy", .bool(false)), ("state_detail", .string("\(d.socketPath): \(d.error ?? "?")")),
                    ])))
                }
            }
        }
        return out.enumerated().sorted { a, b in
            switch (a.element.0, b.element.0) {
            case let (x?, y?) where x != y: return x < y
            default: return a.offset < b.offset
            }
        }.map(\.element.1)
    }

    public var health: Health {
        let reachable = daemons.filter { $0.document != nil }
        if reachable.isEmpty { return .unreachable }
        if reachable.count != daemons.count { return .unhealthy }
        return services.allSatisfy({ $0["healthy"]?.boolValue == true }) ? .healthy : .unhealthy
    }

    /// `hvguestctl status --json`.
    public var json: JSONValue {
        .object([
            ("healthy", .bool(health == .healthy)),
            ("services", .array(services)),
            ("daemons", .array(daemons.map { d in
                var m: [(String, JSONValue)] = [("socket", .string(d.socketPath)), ("reachable", .bool(d.document != nil))]
                if let e = d.error { m.append(("error", .string(e))) }
                if let info = d.document?["daemon"] { m.append(("daemon", info)) }
                return .object(m)
            })),
        ])
    }

    /// `hvguestctl status`: an aligned table, then each service's details.
    public func table(now: Int = time(nil)) -> String {
        if daemons.isEmpty { return "no hvguestd status socket in \(runtimeDirectory) (is hvguestd running?)\n" }
        var rows: [[String]] = [["SERVICE", "STATE", "VERSION/DETAIL", "REQUESTS", "FAILURES", "LAST REQUEST"]]
        let all = services
        for s in all {
            var last = "-"
            if let r = s["last_request"], r != .null {
                let op = r["operation"]?.stringValue ?? "?"
                let st = r["status"]?.stringValue ?? "?"
                let usec = r["duration_usec"]?.integerValue ?? 0
                let ago = r["answered_at"]?.integerValue.map { Self.age(seconds: Int64(now) - $0) } ?? "?"
                last = "\(op) \(st) in \(Self.milliseconds(usec)) ms, \(ago) ago"
            }
            rows.append([
                s["service"]?.stringValue ?? "?",
                (s["state"]?.stringValue ?? "?").replacingUnderscores(),
                s["state_detail"]?.stringValue ?? "-",
                s["requests"]?.integerValue.map(String.init) ?? "-",
                s["failures"]?.integerValue.map(String.init) ?? "-",
                last,
            ])
        }
        var out = Self.align(rows)
        for s in all {
            guard let details = s["details"]?.objectValue, !details.isEmpty else { continue }
            out += "\n\(s["service"]?.stringValue ?? "?"):\n"
            let width = details.map(\.0.count).max() ?? 0
            for (k, v) in details {
                out += "  " + k + String(repeating: " ", count: width - k.count) + "  " + (v.stringValue ?? v.serialized()) + "\n"
            }
        }
        for d in daemons where d.document == nil {
            out += "\nnot answering: \(d.socketPath): \(d.error ?? "?")\n"
        }
        return out
    }

    static func align(_ rows: [[String]]) -> String {
        let columns = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        var out = ""
        for r in rows {
            var line = ""
            for (i, c) in r.enumerated() {
                line += c
                if i < r.count - 1 { line += String(repeating: " ", count: widths[i] - c.count + 2) }
            }
            out += line + "\n"
        }
        return out
    }

    static func milliseconds(_ usec: Int64) -> String {
        let tenths = (usec + 50) / 100
        return "\(tenths / 10).\(tenths % 10)"
    }

    static func age(seconds: Int64) -> String {
        let s = max(0, seconds)
        if s < 120 { return "\(s) s" }
        if s < 7200 { return "\(s / 60) min" }
        if s < 172_800 { return "\(s / 3600) h" }
        return "\(s / 86400) d"
    }
}

public struct StatusClientError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

extension String {
    fileprivate func replacingUnderscores() -> String { String(map { $0 == "_" ? " " : $0 }) }
}
