import HVSystem

/// One logind inhibitor lock (`systemd-inhibit --list`).
public struct Inhibitor: Sendable, Equatable, CustomStringConvertible {
    public var who: String
    /// Colon-separated in the listing: shutdown, sleep, idle, handle-*.
    public var what: [String]
    public var why: String
    /// `block` or `delay`.
    public var mode: String

    public init(who: String, what: [String], why: String, mode: String) {
        self.who = who
        self.what = what
        self.why = why
        self.mode = mode
    }

    public var description: String { "\(who) (\(what.joined(separator: ":")), \(mode)): \(why)" }

    /// True when this lock blocks `action`: a `block` lock on shutdown (poweroff, reboot) or on
    /// sleep (hibernate). Delay locks only postpone and never refuse.
    public func blocks(_ action: PowerAction) -> Bool {
        guard mode == "block" else { return false }
        return what.contains(action == .hibernate ? "sleep" : "shutdown")
    }
}

/// Lists the inhibitor locks logind holds. Nil when they could not be listed.
public protocol InhibitorCheck: Sendable {
    func inhibitors() -> [Inhibitor]?
}

/// A fixed answer (tests; or "no inhibitors" where logind does not exist).
public struct FixedInhibitorCheck: InhibitorCheck {
    public var locks: [Inhibitor]?
    public init(_ locks: [Inhibitor]?) { self.locks = locks }
    public func inhibitors() -> [Inhibitor]? { locks }
}

/// Asks logind through `systemd-inhibit --list --no-pager --no-legend`.
public struct SystemdInhibitorCheck: InhibitorCheck {
    public var executable: String

    public init(executable: String? = nil) {
        self.executable =
            executable
            ?? (PathOps.isExecutableFile("/usr/bin/systemd-inhibit") ? "/usr/bin/systemd-inhibit" : "/bin/systemd-inhibit")
    }

    public func inhibitors() -> [Inhibitor]? {
        guard
            let r = try? Spawn.run(
                executable: executable, arguments: ["--list", "--no-pager", "--no-legend"],
                environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "SYSTEMD_COLORS=0"], timeoutMilliseconds: 5_000,
                outputLimit: 256 * 1024), r.succeeded
        else { return nil }
        return Self.parse(String(decoding: r.output, as: UTF8.self))
    }

    static let whatWords: Set<String> = [
        "shutdown", "sleep", "idle", "handle-power-key", "handle-suspend-key", "handle-hibernate-key",
        "handle-lid-switch", "handle-reboot-key",
    ]

    /// Parses the table: `WHO UID USER PID COMM WHAT WHY MODE`, columns padded with spaces.
    /// WHO and WHY may contain spaces, so the row is anchored on what cannot: MODE is the last
    /// word, WHAT is the colon list of known words after the numeric UID and PID.
    public static func parse(_ text: String) -> [Inhibitor] {
        var out: [Inhibitor] = []
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard words.count >= 7, let mode = words.last, mode == "block" || mode == "delay" else { continue }
            // The first numeric word followed by a user and a numeric PID is UID.
            var uidIndex: Int?
            for i in 1..<(words.count - 4) where words[i].allSatisfy(\.isNumber) && words[i + 2].allSatisfy(\.isNumber) {
                uidIndex = i
                break
            }
            guard let uid = uidIndex else { continue }
            let whatIndex = uid + 4
            guard whatIndex < words.count - 1 else { continue }
            let what = words[whatIndex].split(separator: ":").map(String.init)
            guard !what.isEmpty, what.allSatisfy(whatWords.contains) else { continue }
            out.append(
                Inhibitor(
                    who: words[0..<uid].joined(separator: " "), what: what,
                    why: words[(whatIndex + 1)..<(words.count - 1)].joined(separator: " "), mode: mode))
        }
        return out
    }
}
