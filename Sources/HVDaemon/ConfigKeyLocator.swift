/// Finds the line on which each key of a TOML document is written.
///
/// TOMLKit reports positions only for syntax errors, yet every configuration error should name
/// the line, so the text is scanned separately. The scan is forgiving: it understands table
/// headers, bare/quoted/dotted keys, comments and multi-line strings, and simply misses what it
/// does not understand (the line is then unknown, never wrong by design). Run it only on text
/// that TOMLKit has already accepted.
enum ConfigKeyLocator {
    /// Maps each key path (table header components followed by the key's components) to the
    /// 1-based line where it first appears. Table headers are recorded too.
    static func keyLines(in text: String) -> [[String]: Int] {
        var found: [[String]: Int] = [:]
        var table: [String] = []
        var openMultiline: [UInt8]? = nil
        var lineNumber = 0
        for rawLine in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = Array(rawLine)
            if let delimiter = openMultiline {
                // Inside a multi-line string: nothing here is a key until it closes.
                guard let end = find(delimiter, in: line, from: 0) else { continue }
                openMultiline = unclosedMultiline(in: line, from: end + delimiter.count)
                continue
            }
            var i = skipSpaces(line, 0)
            guard i < line.count else { continue }
            if line[i] == UInt8(ascii: "[") {
                let isArrayTable = i + 1 < line.count && line[i + 1] == UInt8(ascii: "[")
                i += isArrayTable ? 2 : 1
                guard let (key, _) = parseKey(line, i) else { continue }
                table = key
                if found[key] == nil { found[key] = lineNumber }
                continue
            }
            guard let (key, next) = parseKey(line, i) else { continue }
            guard next < line.count, line[next] == UInt8(ascii: "=") else { continue }
            let path = table + key
            if found[path] == nil { found[path] = lineNumber }
            openMultiline = unclosedMultiline(in: line, from: next + 1)
        }
        return found
    }

    private static func skipSpaces(_ line: [UInt8], _ from: Int) -> Int {
        var i = from
        while i < line.count, line[i] == UInt8(ascii: " ") || line[i] == UInt8(ascii: "\t") || line[i] == UInt8(ascii: "\r") {
            i += 1
        }
        return i
    }

    private static func isBareKeyByte(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
            || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
    }

    /// Parses a (dotted) key starting at `from`; returns its components and the index of the
    /// first byte after it and any following spaces.
    private static func parseKey(_ line: [UInt8], _ from: Int) -> ([String], Int)? {
        var parts: [String] = []
        var i = skipSpaces(line, from)
        while true {
            guard i < line.count else { return nil }
            let b = line[i]
            if b == UInt8(ascii: "\"") || b == UInt8(ascii: "'") {
                guard let (part, next) = parseQuoted(line, i) else { return nil }
                parts.append(part)
                i = next
            } else if isBareKeyByte(b) {
                let start = i
                while i < line.count, isBareKeyByte(line[i]) { i += 1 }
                parts.append(String(decoding: line[start..<i], as: UTF8.self))
            } else {
                return nil
            }
            i = skipSpaces(line, i)
            if i < line.count, line[i] == UInt8(ascii: ".") {
                i = skipSpaces(line, i + 1)
                continue
            }
            return (parts, i)
        }
    }

    /// A quoted key: basic (`"…"`, with the common escapes) or literal (`'…'`).
    private static func parseQuoted(_ line: [UInt8], _ from: Int) -> (String, Int)? {
        let quote = line[from]
        var out: [UInt8] = []
        var i = from + 1
        while i < line.count {
            let b = line[i]
            if b == quote { return (String(decoding: out, as: UTF8.self), i + 1) }
            if quote == UInt8(ascii: "\"") && b == UInt8(ascii: "\\") && i + 1 < line.count {
                let e = line[i + 1]
                switch e {
                case UInt8(ascii: "n"): out.append(10)
                case UInt8(ascii: "t"): out.append(9)
                default: out.append(e)
                }
                i += 2
                continue
            }
            out.append(b)
            i += 1
        }
        return nil
    }

    private static func find(_ needle: [UInt8], in line: [UInt8], from: Int) -> Int? {
        guard needle.count <= line.count else { return nil }
        var i = from
        while i + needle.count <= line.count {
            if Array(line[i..<(i + needle.count)]) == needle { return i }
            i += 1
        }
        return nil
    }

    /// Scans a value for a multi-line string that does not close on this line; returns its
    /// closing delimiter. Single-line strings and comments are skipped.
    private static func unclosedMultiline(in line: [UInt8], from: Int) -> [UInt8]? {
        let basic3: [UInt8] = Array("\"\"\"".utf8)
        let literal3: [UInt8] = Array("'''".utf8)
        var i = from
        while i < line.count {
            let b = line[i]
            if b == UInt8(ascii: "#") { return nil }
            if b == UInt8(ascii: "\"") || b == UInt8(ascii: "'") {
                let triple = b == UInt8(ascii: "\"") ? basic3 : literal3
                if i + 3 <= line.count, Array(line[i..<(i + 3)]) == triple {
                    guard let end = find(triple, in: line, from: i + 3) else { return triple }
                    i = end + 3
                    continue
                }
                // A single-line string: skip to its closing quote.
                var j = i + 1
                while j < line.count, line[j] != b {
                    if b == UInt8(ascii: "\"") && line[j] == UInt8(ascii: "\\") { j += 1 }
                    j += 1
                }
                i = j + 1
                continue
            }
            i += 1
        }
        return nil
    }
}
