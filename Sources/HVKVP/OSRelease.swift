/// `/etc/os-release` (os-release(5)): shell-style `KEY=value` assignments.
///
/// Values may be unquoted, "double quoted" (backslash escapes `\"`, `\\`, `` \` ``, `\$` and
/// line continuation) or 'single quoted' (taken literally). Comments and blank lines are
/// skipped; a malformed line is ignored rather than failing the whole file.
public func parseOSRelease(_ text: String) -> [String: String] {
    var out: [String: String] = [:]
    for rawLine in text.split(separator: "\n", omittingEmptySubsequences: true) {
        let line = rawLine.drop { $0 == " " || $0 == "\t" }
        if line.isEmpty || line.first == "#" { continue }
        guard let eq = line.firstIndex(of: "=") else { continue }
        let key = String(line[line.startIndex..<eq])
        guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { continue }
        guard let value = unquoteShellWord(line[line.index(after: eq)...]) else { continue }
        out[key] = value
    }
    return out
}

/// One shell word: concatenated unquoted, double-quoted and single-quoted parts, up to the
/// first unquoted blank (a trailing comment is dropped). Nil when a quote is not closed.
func unquoteShellWord(_ input: Substring) -> String? {
    var out = ""
    var i = input.startIndex
    while i < input.endIndex {
        let c = input[i]
        switch c {
        case "\"":
            i = input.index(after: i)
            var closed = false
            while i < input.endIndex {
                let d = input[i]
                if d == "\"" {
                    closed = true
                    i = input.index(after: i)
                    break
                }
                if d == "\\" {
                    let next = input.index(after: i)
                    if next < input.endIndex, "\"\\`$".contains(input[next]) {
                        out.append(input[next])
                        i = input.index(after: next)
                        continue
                    }
                }
                out.append(d)
                i = input.index(after: i)
            }
            if !closed { return nil }
        case "'":
            i = input.index(after: i)
            guard let close = input[i...].firstIndex(of: "'") else { return nil }
            out += input[i..<close]
            i = input.index(after: close)
        case "\\":
            let next = input.index(after: i)
            if next < input.endIndex { out.append(input[next]); i = input.index(after: next) } else { i = next }
        case " ", "\t", "\r":
            return out
        default:
            out.append(c)
            i = input.index(after: i)
        }
    }
    return out
}

/// What the intrinsic items say about the operating system (PROTOCOL.md §2.7, indices 5–7).
public struct OSDescription: Sendable, Equatable {
    public var name: String
    public var majorVersion: String
    public var minorVersion: String

    public init(name: String, majorVersion: String, minorVersion: String) {
        self.name = name
        self.majorVersion = majorVersion
        self.minorVersion = minorVersion
    }

    /// As the reference does: os-release `NAME` and `VERSION_ID` (minor empty); otherwise the
    /// first three lines of a legacy release file (`/etc/SuSE-release`, `/etc/redhat-release`);
    /// otherwise the kernel's name and empty versions.
    public static func derive(osRelease: String?, legacyRelease: String?, kernelName: String) -> OSDescription {
        if let osRelease {
            let fields = parseOSRelease(osRelease)
            if let name = fields["NAME"] {
                return OSDescription(name: name, majorVersion: fields["VERSION_ID"] ?? "", minorVersion: "")
            }
        }
        if let legacyRelease {
            let lines = legacyRelease.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if let first = lines.first, !first.isEmpty {
                return OSDescription(
                    name: first, majorVersion: lines.count > 1 ? lines[1] : "", minorVersion: lines.count > 2 ? lines[2] : "")
            }
        }
        return OSDescription(name: kernelName, majorVersion: "", minorVersion: "")
    }
}
