import HVServiceKit

/// Checks the shape of a TOML document before the TOML parser (toml++ inside TOMLKit) sees it,
/// and reports what it cannot follow as a configuration error.
///
/// Found by fuzzing (docs/RELIABILITY.md): toml++ asserts, instead of reporting an error, on
/// inputs such as `[~` (a table header not starting with a key) or `a=[[ }]` (a value that is
/// not there). SwiftPM builds C++ without NDEBUG, so each assertion aborted hvguestd; with
/// NDEBUG it would be an optimiser assumption (undefined behaviour). This scanner walks the
/// document structure — headers, keys, values, arrays, inline tables, strings and comments —
/// and refuses anything where a key or value must start but does not, or a character that
/// TOML does not allow outside strings and comments (non-ASCII, control characters, lone CR).
/// Where the document goes wrong in a way the parser reports properly (an unclosed array, a
/// stray character after a value, `==`, …) the scan stops and hands over, so the parser's own
/// message (with its column) reaches the operator. It does not check values either.
struct TOMLPrecheck {
    private enum Stop: Error {
        /// The parser would abort here: report it ourselves.
        case unsafe(ConfigError)
        /// The parser reports this itself: stop scanning.
        case handOver
    }

    private let b: [UInt8]
    private var i = 0
    private var line = 1
    private let file: String

    static func check(file: String, text: String) throws(ConfigError) {
        var s = TOMLPrecheck(b: Array(text.utf8), file: file)
        do throws(Stop) { try s.document() } catch {
            if case .unsafe(let e) = error { throw e }
        }
    }

    private init(b: [UInt8], file: String) {
        self.b = b
        self.file = file
    }

    private func unsafe(_ what: String) -> Stop {
        .unsafe(ConfigError(location: ConfigLocation(file: file, line: line), key: "", message: "syntax error: \(what)"))
    }

    private var atEnd: Bool { i >= b.count }
    private var c: UInt8 { i < b.count ? b[i] : 0 }
    private func peek(_ n: Int) -> UInt8 { i + n < b.count ? b[i + n] : 0 }

    private static func isBareKey(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D
    }

    private mutating func blanks() {
        while !atEnd, c == 0x20 || c == 0x09 { i += 1 }
    }

    /// A line end (LF or CRLF) or the end of the text; false if something else is here.
    private mutating func lineEnd() throws(Stop) -> Bool {
        if atEnd { return true }
        if c == 0x0A { i += 1; line += 1; return true }
        if c == 0x0D {
            guard peek(1) == 0x0A else { throw .handOver }
            i += 2
            line += 1
            return true
        }
        return false
    }

    private mutating func comment() throws(Stop) {
        guard c == 0x23 else { return }
        while !atEnd, c != 0x0A, c != 0x0D {
            if c < 0x20 && c != 0x09 || c == 0x7F { throw .handOver }
            i += 1
        }
    }

    /// Blanks, comments and line ends (inside arrays).
    private mutating func spaceAndLines() throws(Stop) {
        while true {
            blanks()
            try comment()
            if atEnd { return }
            if !(try lineEnd()) { return }
        }
    }

    private mutating func endOfStatement() throws(Stop) {
        blanks()
        try comment()
        guard try lineEnd() else { throw .handOver }
    }

    private mutating func document() throws(Stop) {
        while !atEnd {
            blanks()
            try comment()
            if try lineEnd() { continue }
            if c == 0x5B {
                try header()
            } else {
                try keyValue()
            }
            try endOfStatement()
        }
    }

    private mutating func header() throws(Stop) {
        i += 1
        let array = c == 0x5B
        if array { i += 1 }
        blanks()
        try key()
        blanks()
        guard c == 0x5D else { throw .handOver }
        i += 1
        if array {
            guard c == 0x5D else { throw .handOver }
            i += 1
        }
    }

    /// A possibly dotted key: bare or quoted parts separated by dots.
    private mutating func key() throws(Stop) {
        while true {
            if c == 0x22 || c == 0x27 {
                try string(allowMultiline: false)
            } else if Self.isBareKey(c) {
                while !atEnd, Self.isBareKey(c) { i += 1 }
            } else {
                if atEnd { throw .handOver }
                throw unsafe(c == 0x0A ? "a key is missing" : "a key cannot start with '\(printable(c))'")
            }
            blanks()
            guard c == 0x2E else { return }
            i += 1
            blanks()
        }
    }

    private mutating func keyValue() throws(Stop) {
        try key()
        blanks()
        guard c == 0x3D else { throw .handOver }
        i += 1
        blanks()
        try value(depth: 0)
    }

    private mutating func value(depth: Int) throws(Stop) {
        guard depth < 32 else { throw unsafe("values nested too deeply") }
        switch c {
        case 0x22, 0x27: try string(allowMultiline: true)
        case 0x5B: try array(depth: depth + 1)
        case 0x7B: try inlineTable(depth: depth + 1)
        default:
            // A number, boolean or date: checked by the parser; here it only has to be there.
            // The parser assumes a value starts with something other than blank space, a line
            // end or a terminator (`,` `]` `}` `#`).
            if atEnd { throw .handOver }
            if c <= 0x20 || c >= 0x7F || c == 0x2C || c == 0x5D || c == 0x7D || c == 0x23 {
                throw unsafe(c == 0x0A || c == 0x0D ? "a value is missing" : "a value cannot start with '\(printable(c))'")
            }
            let start = i
            while !atEnd {
                let x = c
                if x == 0x20 {
                    // "1979-05-27 07:32:00": a space between a date and a time.
                    if i - start == 10, peek(1) >= 0x30, peek(1) <= 0x39 { i += 1; continue }
                    break
                }
                if x == 0x09 || x == 0x0A || x == 0x0D || x == 0x2C || x == 0x5D || x == 0x7D || x == 0x23 { break }
                // Non-ASCII or control bytes in a bare value: toml++ can assert here (found by
                // fuzzing: `V=2277-24-` then bytes A4 A1); TOML never allows them outside strings.
                guard x > 0x20, x < 0x7F else { throw unsafe("unexpected character '\(printable(x))' in a value") }
                i += 1
            }
            if i == start {
                if atEnd { throw .handOver }
                throw unsafe(c == 0x0A || c == 0x0D ? "a value is missing" : "a value cannot start with '\(printable(c))'")
            }
        }
    }

    private mutating func array(depth: Int) throws(Stop) {
        i += 1
        while true {
            try spaceAndLines()
            if c == 0x5D { i += 1; return }
            try value(depth: depth)
            try spaceAndLines()
            if c == 0x2C { i += 1; continue }
            if c == 0x5D { i += 1; return }
            throw .handOver
        }
    }

    private mutating func inlineTable(depth: Int) throws(Stop) {
        i += 1
        blanks()
        if c == 0x7D { i += 1; return }
        while true {
            blanks()
            try key()
            blanks()
            guard c == 0x3D else { throw .handOver }
            i += 1
            blanks()
            try value(depth: depth)
            blanks()
            if c == 0x2C { i += 1; continue }
            if c == 0x7D { i += 1; return }
            throw .handOver
        }
    }

    /// Basic ("…", with escapes) or literal ('…') string; triple-quoted ones may span lines.
    private mutating func string(allowMultiline: Bool) throws(Stop) {
        let quote = c
        if allowMultiline, peek(1) == quote, peek(2) == quote {
            i += 3
            while true {
                guard !atEnd else { throw .handOver }
                if c == quote, peek(1) == quote, peek(2) == quote {
                    i += 3
                    // Up to two more quotes belong to the string.
                    if c == quote { i += 1 }
                    if c == quote { i += 1 }
                    return
                }
                if quote == 0x22, c == 0x5C { i += 2; continue }
                if c == 0x0A { line += 1 }
                i += 1
            }
        }
        i += 1
        while true {
            guard !atEnd, c != 0x0A, c != 0x0D else { throw .handOver }
            if c == quote { i += 1; return }
            if quote == 0x22, c == 0x5C {
                i += 1
                if atEnd || c == 0x0A || c == 0x0D { throw .handOver }
            }
            i += 1
        }
    }

    private func printable(_ x: UInt8) -> String {
        x >= 0x20 && x < 0x7F ? String(UnicodeScalar(x)) : "\\u{\(String(x, radix: 16))}"
    }
}
