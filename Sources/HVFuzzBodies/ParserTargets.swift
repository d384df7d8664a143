import HVDaemon
import HVVSS

// Text parsers fed by files the daemon reads: /proc/self/mountinfo (escaped names of whatever
// anyone mounted) and the TOML configuration with its drop-ins.

extension FuzzTargets {
    static let parserTargets: [FuzzTarget] = [
        FuzzTarget(name: "mountinfo", summary: "MountTable.parse over arbitrary mountinfo text (octal escapes, short lines)",
                   seeds: mountinfoSeeds, body: mountinfoBody),
        FuzzTarget(name: "config", summary: "ConfigDocument.parse (TOML + drop-in) and DaemonConfiguration validation",
                   seeds: configSeeds, body: configBody),
    ]
}

private func mountinfoSeeds() -> [[UInt8]] {
    [
        Array("""
        22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
        30 22 7:0 / /mnt/with\\040space rw - xfs /dev/loop0 rw
        31 22 0:5 / /tmp rw master:2 propagate_from:1 - tmpfs none rw,size=4m

        """.utf8),
        Array("1 2 3:4 / /x rw - ext4\n".utf8),
    ]
}

private func mountinfoBody(_ data: [UInt8]) -> String? {
    let text = String(decoding: data, as: UTF8.self)
    let table = MountTable.parse(text)
    // Lines end at "\n" bytes, as for the kernel and the parser. (Not `split` on Characters:
    // "\r\n" is one Character, so that undercounted lines ending in "\r" — a false alarm — and
    // grapheme breaking took about a fifth of the body's time.)
    let lines = text.utf8.reduce(1) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
    if table.entries.count + table.rejected.count > lines { return "more entries than lines" }
    for e in table.entries where e.mountPoint.isEmpty { return "empty mountpoint accepted" }
    return nil
}

private func configSeeds() -> [[UInt8]] {
    [
        Array("""
        [log]
        target = "stderr"
        level = "debug"
        [daemon]
        reconnect_max_seconds = 30
        [vss]
        thaw_deadline_seconds = 2
        mountpoints = ["/srv/a", "/srv/b"]
        [fcopy]
        allowed_roots = ["/srv/in"]
        file_mode = "0644"
        directory_mode = 0o755
        fsync = false
        \u{0}
        [vss]
        thaw_deadline_seconds = 5
        """.utf8),
        Array("[fcopy]\nowner = 0\ngroup = \"root\"\n".utf8),
    ]
}

/// The input is one or two files: a NUL byte separates the main file from a drop-in.
private func configBody(_ data: [UInt8]) -> String? {
    let parts = data.split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false)
    var sources: [(file: String, text: String)] = []
    for (i, p) in parts.enumerated() {
        sources.append((file: i == 0 ? "hvguest.toml" : "hvguest.toml.d/10-fuzz.toml", text: String(decoding: p, as: UTF8.self)))
    }
    do {
        let doc = try ConfigDocument.parse(sources, knownSections: DaemonConfiguration.knownSections)
        _ = try DaemonConfiguration(document: doc, configDirectory: "/nonexistent-hvguest-fuzz")
    } catch {
        // Every refusal names the file it came from (operators must be able to find it).
        if !error.location.file.hasPrefix("hvguest.toml") && error.location.file != "<defaults>" {
            return "error without its file: \(error)"
        }
        _ = error.description
    }
    return nil
}
