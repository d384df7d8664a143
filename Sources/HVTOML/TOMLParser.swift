/// A TOML 1.0 parser over UTF-8 bytes, written from the specification (https://toml.io/en/v1.0.0).
///
/// It never traps on its input: every index is checked (`cur` reads 0 past the end, and a NUL
/// byte anywhere is refused up front, so 0 means "end"), numbers are accumulated with overflow
/// checks, and nesting (tables, arrays, dotted key parts) is limited to `maxDepth` levels, so
/// recursion is bounded.
struct TOMLParser {
    private let b: [UInt8]
    private let maxDepth: Int
    private var i = 0
    private var line = 1
    private var lineStart = 0
    private var lines: [[TOMLPathComponent]: Int] = [:]

    /// A position, kept to report an error where a construct started.
    struct Mark {
        let index: Int
        let line: Int
        let lineStart: Int
    }

    init(bytes: [UInt8], maxDepth: Int) {
        b = bytes
        self.maxDepth = max(1, maxDepth)
    }

    // MARK: Positions and errors

    private var mark: Mark { Mark(index: i, line: line, lineStart: lineStart) }
    private var atEnd: Bool { i >= b.count }
    /// The byte at the cursor, or 0 at the end (NUL cannot occur in an accepted document).
    private var cur: UInt8 { i < b.count ? b[i] : 0 }
    private func peek(_ n: Int) -> UInt8 { i + n < b.count && i + n >= 0 ? b[i + n] : 0 }

    private func error(_ message: String, at m: Mark? = nil) -> TOMLError {
        let m = m ?? mark
        // Columns count Unicode scalars: every byte that does not continue a UTF-8 sequence.
        var column = 1
        var k = m.lineStart
        while k < m.index && k < b.count {
            if b[k] & 0xC0 != 0x80 { column += 1 }
            k += 1
        }
        return TOMLError(line: m.line, column: column, message: message)
    }

    /// The character at the cursor, for messages.
    private var shownChar: String {
        if atEnd { return "the end of the file" }
        switch cur {
        case 0x0A: return "the end of the line"
        case 0x0D: return "a carriage return"
        case 0x09: return "a tab"
        case 0x20..<0x7F: return "'\(String(UnicodeScalar(cur)))'"
        case 0..<0x20, 0x7F: return "control character U+\(hex(UInt32(cur), width: 4))"
        default:
            // A whole UTF-8 sequence (the input is validated).
            var end = i + 1
            while end < b.count, b[end] & 0xC0 == 0x80 { end += 1 }
            let text = String(decoding: b[i..<end], as: UTF8.self)
            let value = text.unicodeScalars.first?.value ?? 0
            return "'\(text)' (U+\(hex(value, width: 4)))"
        }
    }

    // MARK: Document

    mutating func parseDocument() throws(TOMLError) -> (TOMLTable, [[TOMLPathComponent]: Int]) {
        try validateEncoding()
        // A UTF-8 byte order mark (some Windows editors write one) is not part of the document.
        if b.count >= 3, b[0] == 0xEF, b[1] == 0xBB, b[2] == 0xBF {
            i = 3
            lineStart = 3
        }
        let root = TableNode(.header)
        var current = root
        var currentPath: [TOMLPathComponent] = []
        while !atEnd {
            skipBlanks()
            try skipComment()
            if atEnd { break }
            if try newline() { continue }
            if cur == UInt8(ascii: "[") {
                (current, currentPath) = try header(root: root)
                try endOfLine(after: "the table header")
            } else {
                try keyValue(into: current, path: currentPath)
                try endOfLine(after: "the value")
            }
        }
        return (root.value(), lines)
    }

    /// Refuses invalid UTF-8 and NUL bytes anywhere, before anything else is looked at.
    private mutating func validateEncoding() throws(TOMLError) {
        var k = 0
        var ln = 1
        var ls = 0
        func bad(_ what: String, _ at: Int) -> TOMLError {
            var p = TOMLParser(bytes: b, maxDepth: 1)
            p.i = at
            p.line = ln
            p.lineStart = ls
            return p.error(what)
        }
        while k < b.count {
            let c = b[k]
            if c == 0 { throw bad("NUL byte (U+0000) is not allowed in TOML", k) }
            if c == 0x0A {
                ln += 1
                ls = k + 1
                k += 1
                continue
            }
            if c < 0x80 {
                k += 1
                continue
            }
            // Length and the allowed range of the second byte (no overlong forms, no
            // surrogates, nothing above U+10FFFF).
            var n = 0
            var lo: UInt8 = 0x80
            var hi: UInt8 = 0xBF
            switch c {
            case 0xC2...0xDF: n = 2
            case 0xE0: n = 3; lo = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: n = 3
            case 0xED: n = 3; hi = 0x9F
            case 0xF0: n = 4; lo = 0x90
            case 0xF1...0xF3: n = 4
            case 0xF4: n = 4; hi = 0x8F
            default: throw bad("invalid UTF-8 byte 0x\(hex(UInt32(c), width: 2))", k)
            }
            guard k + n <= b.count else { throw bad("truncated UTF-8 sequence", k) }
            let second = b[k + 1]
            guard second >= lo, second <= hi else { throw bad("invalid UTF-8 sequence", k) }
            var j = 2
            while j < n {
                guard b[k + j] & 0xC0 == 0x80 else { throw bad("invalid UTF-8 sequence", k) }
                j += 1
            }
            k += n
        }
    }

    // MARK: Blank space, comments, line ends

    private mutating func skipBlanks() {
        while cur == 0x20 || cur == 0x09 { i += 1 }
    }

    /// Consumes LF or CRLF; false if neither is here. A CR without LF is an error.
    private mutating func newline() throws(TOMLError) -> Bool {
        if cur == 0x0A {
            i += 1
        } else if cur == 0x0D {
            guard peek(1) == 0x0A else { throw error("a carriage return must be followed by a line feed") }
            i += 2
        } else {
            return false
        }
        line += 1
        lineStart = i
        return true
    }

    /// A `#` comment up to (not including) the line end.
    private mutating func skipComment() throws(TOMLError) {
        guard cur == UInt8(ascii: "#") else { return }
        i += 1
        while !atEnd {
            let c = cur
            if c == 0x0A { return }
            if c == 0x0D {
                if peek(1) == 0x0A { return }
                throw error("a carriage return must be followed by a line feed")
            }
            if (c < 0x20 && c != 0x09) || c == 0x7F {
                throw error("control character U+\(hex(UInt32(c), width: 4)) is not allowed in a comment")
            }
            i += 1
        }
    }

    /// After a header or key/value pair: blanks, an optional comment, then a line end.
    private mutating func endOfLine(after what: String) throws(TOMLError) {
        skipBlanks()
        try skipComment()
        if atEnd { return }
        if try newline() { return }
        throw error("expected the end of the line after \(what), found \(shownChar)")
    }

    /// Blanks, comments and line ends (between array elements).
    private mutating func skipSpaceCommentsAndLines() throws(TOMLError) {
        while true {
            skipBlanks()
            try skipComment()
            if !(try newline()) { return }
        }
    }

    // MARK: Headers and keys

    private mutating func header(root: TableNode) throws(TOMLError) -> (TableNode, [TOMLPathComponent]) {
        let start = mark
        i += 1
        let isArray = cur == UInt8(ascii: "[")
        if isArray { i += 1 }
        skipBlanks()
        let keys = try key()
        skipBlanks()
        guard cur == UInt8(ascii: "]") else {
            throw error("expected '\(isArray ? "]]" : "]")' to close the table header, found \(shownChar)")
        }
        i += 1
        if isArray {
            guard cur == UInt8(ascii: "]") else { throw error("expected ']]' to close the array-of-tables header, found \(shownChar)") }
            i += 1
        }
        guard keys.count <= maxDepth else { throw error("tables nested more than \(maxDepth) levels deep", at: start) }
        do {
            return try TableNode.openHeader(root: root, keys: keys, isArray: isArray, line: start.line, lines: &lines)
        } catch {
            throw self.error(error.message, at: start)
        }
    }

    /// A key: bare or quoted parts separated by dots (blanks allowed around the dots).
    private mutating func key() throws(TOMLError) -> [String] {
        var parts: [String] = []
        while true {
            let c = cur
            if c == UInt8(ascii: "\"") {
                parts.append(try basicString())
            } else if c == UInt8(ascii: "'") {
                parts.append(try literalString())
            } else if TOMLSyntax.isBareKeyByte(c) {
                let s = i
                while TOMLSyntax.isBareKeyByte(cur) { i += 1 }
                parts.append(String(decoding: b[s..<i], as: UTF8.self))
            } else {
                throw error(parts.isEmpty ? "expected a key, found \(shownChar)" : "expected a key after '.', found \(shownChar)")
            }
            skipBlanks()
            guard cur == UInt8(ascii: ".") else { return parts }
            i += 1
            skipBlanks()
        }
    }

    /// `key = value` into `table` (whose path is `path`).
    private mutating func keyValue(into table: TableNode, path: [TOMLPathComponent]) throws(TOMLError) {
        let start = mark
        let keys = try key()
        guard cur == UInt8(ascii: "=") else {
            throw error("expected '=' after the key '\(TOMLSyntax.displayPath(keys))', found \(shownChar)")
        }
        i += 1
        skipBlanks()
        if atEnd || cur == 0x0A || cur == 0x0D || cur == UInt8(ascii: "#") {
            throw error("expected a value after '='")
        }
        guard path.count + keys.count <= maxDepth else { throw error("keys nested more than \(maxDepth) levels deep", at: start) }
        let target: TableNode
        do {
            target = try table.resolveDotted(keys: keys, path: path, line: start.line, lines: &lines)
        } catch {
            throw self.error(error.message, at: start)
        }
        guard let last = keys.last else { throw error("expected a key", at: start) }
        var valuePath = path
        for k in keys { valuePath.append(.key(k)) }
        lines[valuePath] = start.line
        let v = try value(path: valuePath)
        target.add(last, .value(v))
    }

    // MARK: Values

    private mutating func value(path: [TOMLPathComponent]) throws(TOMLError) -> TOMLValue {
        guard path.count <= maxDepth else { throw error("values nested more than \(maxDepth) levels deep") }
        switch cur {
        case UInt8(ascii: "\""):
            if peek(1) == cur && peek(2) == cur { return .string(try multilineString(basic: true)) }
            return .string(try basicString())
        case UInt8(ascii: "'"):
            if peek(1) == cur && peek(2) == cur { return .string(try multilineString(basic: false)) }
            return .string(try literalString())
        case UInt8(ascii: "["):
            return try array(path: path)
        case UInt8(ascii: "{"):
            return try inlineTable(path: path)
        default:
            return try bareValue()
        }
    }

    private mutating func array(path: [TOMLPathComponent]) throws(TOMLError) -> TOMLValue {
        let open = mark
        i += 1
        var items: [TOMLValue] = []
        while true {
            try skipSpaceCommentsAndLines()
            if cur == UInt8(ascii: "]") {
                i += 1
                return .array(items)
            }
            if atEnd { throw error("the array is not closed (expected ']')", at: open) }
            if cur == UInt8(ascii: ",") { throw error("expected a value before ','") }
            let itemPath = path + [.index(items.count)]
            lines[itemPath] = line
            items.append(try value(path: itemPath))
            try skipSpaceCommentsAndLines()
            if cur == UInt8(ascii: ",") {
                i += 1
                continue
            }
            if cur == UInt8(ascii: "]") {
                i += 1
                return .array(items)
            }
            if atEnd { throw error("the array is not closed (expected ',' or ']')", at: open) }
            throw error("expected ',' or ']' after an array element, found \(shownChar)")
        }
    }

    private mutating func inlineTable(path: [TOMLPathComponent]) throws(TOMLError) -> TOMLValue {
        let open = mark
        i += 1
        let node = TableNode(.header)
        skipBlanks()
        if cur == UInt8(ascii: "}") {
            i += 1
            return .table(node.value())
        }
        while true {
            skipBlanks()
            if atEnd { throw error("the inline table is not closed (expected '}')", at: open) }
            if cur == 0x0A || cur == 0x0D { throw error("an inline table must be on one line (expected a key)") }
            if cur == UInt8(ascii: "}") { throw error("a trailing comma is not allowed in an inline table") }
            try keyValue(into: node, path: path)
            skipBlanks()
            if cur == UInt8(ascii: ",") {
                i += 1
                continue
            }
            if cur == UInt8(ascii: "}") {
                i += 1
                return .table(node.value())
            }
            if atEnd { throw error("the inline table is not closed (expected ',' or '}')", at: open) }
            if cur == 0x0A || cur == 0x0D { throw error("an inline table must be on one line (expected ',' or '}')") }
            throw error("expected ',' or '}' in the inline table, found \(shownChar)")
        }
    }

    /// Booleans, numbers, dates and times: a run of the characters they are made of.
    private mutating func bareValue() throws(TOMLError) -> TOMLValue {
        let start = mark
        func isTokenByte(_ c: UInt8) -> Bool {
            TOMLSyntax.isBareKeyByte(c) || c == UInt8(ascii: "+") || c == UInt8(ascii: ".") || c == UInt8(ascii: ":")
        }
        guard isTokenByte(cur) else { throw error("expected a value, found \(shownChar)") }
        while isTokenByte(cur) { i += 1 }
        // "1979-05-27 07:32:00": a date, one space, then a time.
        if i - start.index == 10, cur == 0x20, TOMLScalars.isDigit(peek(1)), TOMLScalars.isDigit(peek(2)), peek(3) == UInt8(ascii: ":"),
           TOMLScalars.isDate(b[start.index..<i]) {
            i += 1
            while isTokenByte(cur) { i += 1 }
        }
        let token = b[start.index..<i]
        do {
            return try TOMLScalars.value(token)
        } catch {
            throw self.error(error.message, at: start)
        }
    }

    // MARK: Strings

    /// A control character that must not appear raw in a string.
    private static func isForbiddenControl(_ c: UInt8) -> Bool { (c < 0x20 && c != 0x09) || c == 0x7F }

    private mutating func basicString() throws(TOMLError) -> String {
        let open = mark
        i += 1
        var out: [UInt8] = []
        while true {
            let c = cur
            if atEnd { throw error("the string is not closed (expected '\"')", at: open) }
            if c == UInt8(ascii: "\"") {
                i += 1
                return String(decoding: out, as: UTF8.self)
            }
            if c == 0x0A || c == 0x0D { throw error("the string is not closed before the end of the line (a string with line breaks needs \"\"\")") }
            if Self.isForbiddenControl(c) { throw error("control character U+\(hex(UInt32(c), width: 4)) must be escaped in a string") }
            if c == UInt8(ascii: "\\") {
                try escape(into: &out)
                continue
            }
            out.append(c)
            i += 1
        }
    }

    private mutating func literalString() throws(TOMLError) -> String {
        let open = mark
        i += 1
        let s = i
        while true {
            let c = cur
            if atEnd { throw error("the literal string is not closed (expected \"'\")", at: open) }
            if c == UInt8(ascii: "'") {
                let text = String(decoding: b[s..<i], as: UTF8.self)
                i += 1
                return text
            }
            if c == 0x0A || c == 0x0D { throw error("the literal string is not closed before the end of the line (a string with line breaks needs ''')") }
            if Self.isForbiddenControl(c) { throw error("control character U+\(hex(UInt32(c), width: 4)) is not allowed in a literal string") }
            i += 1
        }
    }

    /// `"""…"""` (escapes, line-ending backslash) or `'''…'''`. A line break right after the
    /// opening quotes is dropped; CRLF becomes LF.
    private mutating func multilineString(basic: Bool) throws(TOMLError) -> String {
        let open = mark
        let quote = cur
        i += 3
        _ = try newline()
        var out: [UInt8] = []
        while true {
            let c = cur
            if atEnd { throw error("the multi-line string is not closed (expected \(basic ? "\"\"\"" : "'''"))", at: open) }
            if c == quote {
                var n = 0
                while peek(n) == quote { n += 1 }
                if n < 3 {
                    out.append(contentsOf: repeatElement(quote, count: n))
                    i += n
                    continue
                }
                // Up to two quotes right before the closing three belong to the string.
                guard n <= 5 else { throw error("too many quotes in a row: at most five can end a multi-line string") }
                out.append(contentsOf: repeatElement(quote, count: n - 3))
                i += n
                return String(decoding: out, as: UTF8.self)
            }
            if c == 0x0A || c == 0x0D {
                _ = try newline()
                out.append(0x0A)
                continue
            }
            if Self.isForbiddenControl(c) {
                throw error("control character U+\(hex(UInt32(c), width: 4)) \(basic ? "must be escaped" : "is not allowed") in a multi-line string")
            }
            if basic && c == UInt8(ascii: "\\") {
                // Line-ending backslash: blanks up to a line end, then all blank space and line
                // ends up to the next other character, are dropped.
                var k = 1
                while peek(k) == 0x20 || peek(k) == 0x09 { k += 1 }
                if peek(k) == 0x0A || peek(k) == 0x0D {
                    i += k
                    while true {
                        skipBlanks()
                        if !(try newline()) { break }
                    }
                    continue
                }
                try escape(into: &out)
                continue
            }
            out.append(c)
            i += 1
        }
    }

    /// An escape sequence at the cursor (a backslash), appended as UTF-8.
    private mutating func escape(into out: inout [UInt8]) throws(TOMLError) {
        let start = mark
        i += 1
        let e = cur
        switch e {
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let count = e == UInt8(ascii: "u") ? 4 : 8
            var v: UInt32 = 0
            for k in 1...count {
                guard let d = TOMLScalars.hexDigit(peek(k)) else {
                    throw error("\\\(e == UInt8(ascii: "u") ? "u" : "U") needs exactly \(count) hexadecimal digits", at: start)
                }
                v = v << 4 | UInt32(d)
            }
            guard let scalar = Unicode.Scalar(v) else {
                throw error("\\\(e == UInt8(ascii: "u") ? "u" : "U")\(hex(v, width: count)) is not a Unicode scalar value", at: start)
            }
            out.append(contentsOf: scalar.utf8)
            i += count
        default:
            if atEnd { throw error("the string ends inside an escape sequence", at: start) }
            if e == 0x0A || e == 0x0D { throw error("a backslash before a line break is only allowed in a multi-line string (\"\"\")", at: start) }
            throw error("invalid escape sequence '\\\(shownChar.trimmingQuotes)' (valid: \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX)", at: start)
        }
        i += 1
    }
}

extension String {
    /// `'x'` → `x` (for a character shown inside other quotes).
    fileprivate var trimmingQuotes: String {
        if count >= 3, hasPrefix("'"), hasSuffix("'") { return String(dropFirst().dropLast()) }
        return self
    }
}

/// Upper-case hexadecimal, zero-padded to `width`.
func hex(_ v: UInt32, width: Int) -> String {
    let s = String(v, radix: 16, uppercase: true)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}
