/// Booleans, integers, floats, dates and times: checked against TOML 1.0's grammar.
enum TOMLScalars {
    static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    static func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }

    /// The value of a bare token (`true`, `0x1F`, `-1.5e3`, `1979-05-27T07:32:00Z`, …).
    static func value(_ token: ArraySlice<UInt8>) throws(RuleError) -> TOMLValue {
        let t = Array(token)
        let text = String(decoding: t, as: UTF8.self)
        if text == "true" { return .bool(true) }
        if text == "false" { return .bool(false) }
        // A date starts with four digits and '-', a time with two digits and ':'.
        if t.count >= 5, t[0..<4].allSatisfy(isDigit), t[4] == UInt8(ascii: "-") { return try dateTime(t, text) }
        if t.count >= 3, t[0..<2].allSatisfy(isDigit), t[2] == UInt8(ascii: ":") { return try dateTime(t, text) }
        if let first = t.first, isDigit(first) || first == UInt8(ascii: "+") || first == UInt8(ascii: "-") || text == "inf" || text == "nan" {
            return try number(t, text)
        }
        throw RuleError(message: "'\(text)' is not a value (strings need quotes; booleans are true and false)")
    }

    // MARK: Numbers

    private static func number(_ t: [UInt8], _ text: String) throws(RuleError) -> TOMLValue {
        var k = 0
        var negative = false
        if t.first == UInt8(ascii: "+") || t.first == UInt8(ascii: "-") {
            negative = t.first == UInt8(ascii: "-")
            k = 1
        }
        let rest = Array(t[k...])
        if rest == Array("inf".utf8) { return .float(negative ? -.infinity : .infinity) }
        if rest == Array("nan".utf8) { return .float(negative ? -.nan : .nan) }
        if rest.count >= 2, rest[0] == UInt8(ascii: "0"), let radix = radix(of: rest[1]) {
            guard k == 0 else { throw RuleError(message: "'\(text)': hexadecimal, octal and binary integers cannot have a sign") }
            return .integer(try radixInteger(Array(rest[2...]), radix: radix, text))
        }
        // Decimal: an integer part, then an optional fraction and an optional exponent.
        guard let intEnd = digitRun(rest, from: 0) else { throw invalidNumber(text) }
        if intEnd - 0 > 1, rest[0] == UInt8(ascii: "0") {
            throw RuleError(message: "'\(text)': leading zeros are not allowed")
        }
        var p = intEnd
        var isFloat = false
        if p < rest.count, rest[p] == UInt8(ascii: ".") {
            guard let fracEnd = digitRun(rest, from: p + 1) else {
                throw RuleError(message: "'\(text)': a decimal point needs digits on both sides")
            }
            p = fracEnd
            isFloat = true
        }
        if p < rest.count, rest[p] == UInt8(ascii: "e") || rest[p] == UInt8(ascii: "E") {
            var q = p + 1
            if q < rest.count, rest[q] == UInt8(ascii: "+") || rest[q] == UInt8(ascii: "-") { q += 1 }
            guard let expEnd = digitRun(rest, from: q) else { throw RuleError(message: "'\(text)': the exponent needs digits") }
            p = expEnd
            isFloat = true
        }
        guard p == rest.count else { throw invalidNumber(text) }
        let digits = t.filter { $0 != UInt8(ascii: "_") }
        if isFloat {
            guard let d = Double(String(decoding: digits, as: UTF8.self)) else { throw invalidNumber(text) }
            guard d.isFinite else { throw RuleError(message: "'\(text)' is too large for a 64-bit float") }
            return .float(d)
        }
        // Accumulate towards the sign so that Int64.min is reachable.
        var v: Int64 = 0
        for c in rest where c != UInt8(ascii: "_") {
            let d = Int64(c - 0x30)
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = negative ? m.subtractingReportingOverflow(d) : m.addingReportingOverflow(d)
            guard !o1, !o2 else { throw RuleError(message: "'\(text)' does not fit in a 64-bit integer") }
            v = s
        }
        return .integer(v)
    }

    private static func invalidNumber(_ text: String) -> RuleError {
        RuleError(message: "'\(text)' is not a valid number")
    }

    private static func radix(of c: UInt8) -> Int64? {
        switch c {
        case UInt8(ascii: "x"): 16
        case UInt8(ascii: "o"): 8
        case UInt8(ascii: "b"): 2
        default: nil
        }
    }

    /// Digits of `radix` with single underscores between digits.
    private static func radixInteger(_ d: [UInt8], radix: Int64, _ text: String) throws(RuleError) -> Int64 {
        guard let first = d.first, first != UInt8(ascii: "_"), d.last != UInt8(ascii: "_") else {
            throw RuleError(message: "'\(text)': digits must follow the prefix, with underscores only between digits")
        }
        var v: Int64 = 0
        var previousUnderscore = false
        for c in d {
            if c == UInt8(ascii: "_") {
                guard !previousUnderscore else { throw RuleError(message: "'\(text)': underscores must be between digits") }
                previousUnderscore = true
                continue
            }
            previousUnderscore = false
            guard let digit = hexDigit(c), Int64(digit) < radix else {
                throw RuleError(message: "'\(text)': '\(String(UnicodeScalar(c)))' is not a base-\(radix) digit")
            }
            let (m, o1) = v.multipliedReportingOverflow(by: radix)
            let (s, o2) = m.addingReportingOverflow(Int64(digit))
            guard !o1, !o2 else { throw RuleError(message: "'\(text)' does not fit in a 64-bit integer") }
            v = s
        }
        return v
    }

    /// End of a run of decimal digits starting at `from`, with single underscores between
    /// digits; nil when there is no digit at `from` or an underscore is misplaced.
    private static func digitRun(_ t: [UInt8], from: Int) -> Int? {
        var p = from
        guard p < t.count, isDigit(t[p]) else { return nil }
        p += 1
        while p < t.count {
            if isDigit(t[p]) {
                p += 1
            } else if t[p] == UInt8(ascii: "_") {
                guard p + 1 < t.count, isDigit(t[p + 1]) else { return nil }
                p += 2
            } else {
                break
            }
        }
        return p
    }

    // MARK: Dates and times (RFC 3339 as TOML 1.0 uses it)

    static func isDate(_ t: ArraySlice<UInt8>) -> Bool {
        (try? date(Array(t), at: 0)) != nil
    }

    private static func dateTime(_ t: [UInt8], _ text: String) throws(RuleError) -> TOMLValue {
        let bad = RuleError(message: "'\(text)' is not a valid date or time (expected e.g. 1979-05-27, 07:32:00 or 1979-05-27T07:32:00Z)")
        if t.count >= 3, t[2] == UInt8(ascii: ":") {
            guard let end = try time(t, at: 0, text), end == t.count else { throw bad }
            return .localTime(text)
        }
        guard let dateEnd = try date(t, at: 0, text) else { throw bad }
        if dateEnd == t.count { return .localDate(text) }
        let sep = t[dateEnd]
        guard sep == UInt8(ascii: "T") || sep == UInt8(ascii: "t") || sep == 0x20 else { throw bad }
        guard let timeEnd = try time(t, at: dateEnd + 1, text) else { throw bad }
        if timeEnd == t.count { return .localDateTime(text) }
        let z = t[timeEnd]
        if z == UInt8(ascii: "Z") || z == UInt8(ascii: "z") {
            guard timeEnd + 1 == t.count else { throw bad }
            return .offsetDateTime(text)
        }
        guard z == UInt8(ascii: "+") || z == UInt8(ascii: "-"), timeEnd + 6 == t.count,
              let h = twoDigits(t, timeEnd + 1), t[timeEnd + 3] == UInt8(ascii: ":"), let m = twoDigits(t, timeEnd + 4)
        else { throw bad }
        guard h <= 23, m <= 59 else { throw RuleError(message: "'\(text)': the time zone offset is out of range") }
        return .offsetDateTime(text)
    }

    private static func twoDigits(_ t: [UInt8], _ p: Int) -> Int? {
        guard p + 1 < t.count, isDigit(t[p]), isDigit(t[p + 1]) else { return nil }
        return Int(t[p] - 0x30) * 10 + Int(t[p + 1] - 0x30)
    }

    /// YYYY-MM-DD at `p`: the index after it, nil if it is not shaped like a date, an error if
    /// the month or day does not exist.
    private static func date(_ t: [UInt8], at p: Int, _ text: String = "") throws(RuleError) -> Int? {
        guard p + 10 <= t.count, let y1 = twoDigits(t, p), let y2 = twoDigits(t, p + 2), t[p + 4] == UInt8(ascii: "-"),
              let month = twoDigits(t, p + 5), t[p + 7] == UInt8(ascii: "-"), let day = twoDigits(t, p + 8)
        else { return nil }
        let year = y1 * 100 + y2
        guard (1...12).contains(month) else { throw RuleError(message: "'\(text)': month \(month) does not exist") }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard (1...days).contains(day) else { throw RuleError(message: "'\(text)': day \(day) does not exist in that month") }
        return p + 10
    }

    /// HH:MM:SS[.fraction] at `p`: the index after it, nil if not shaped like a time.
    private static func time(_ t: [UInt8], at p: Int, _ text: String) throws(RuleError) -> Int? {
        guard p + 8 <= t.count, let h = twoDigits(t, p), t[p + 2] == UInt8(ascii: ":"), let m = twoDigits(t, p + 3),
              t[p + 5] == UInt8(ascii: ":"), let s = twoDigits(t, p + 6)
        else { return nil }
        // Second 60 is a leap second (RFC 3339).
        guard h <= 23, m <= 59, s <= 60 else { throw RuleError(message: "'\(text)': the time is out of range") }
        var q = p + 8
        if q < t.count, t[q] == UInt8(ascii: ".") {
            q += 1
            guard q < t.count, isDigit(t[q]) else { return nil }
            while q < t.count, isDigit(t[q]) { q += 1 }
        }
        return q
    }
}
