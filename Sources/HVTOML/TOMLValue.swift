/// A TOML value (TOML 1.0, https://toml.io/en/v1.0.0).
///
/// Dates and times are validated but kept as the text written in the document: hvguest has no
/// use for them beyond saying what they are.
public enum TOMLValue: Equatable, Sendable {
    case string(String)
    case integer(Int64)
    case float(Double)
    case bool(Bool)
    /// `1979-05-27T07:32:00Z`, `1979-05-27 00:32:00.999-07:00`
    case offsetDateTime(String)
    /// `1979-05-27T07:32:00`
    case localDateTime(String)
    /// `1979-05-27`
    case localDate(String)
    /// `07:32:00.5`
    case localTime(String)
    case array([TOMLValue])
    case table(TOMLTable)

    /// The TOML type name, for messages.
    public var typeName: String {
        switch self {
        case .string: "string"
        case .integer: "integer"
        case .float: "float"
        case .bool: "boolean"
        case .offsetDateTime: "offset date-time"
        case .localDateTime: "local date-time"
        case .localDate: "local date"
        case .localTime: "local time"
        case .array: "array"
        case .table: "table"
        }
    }
}

/// A TOML table: keys in the order the document defined them, each with its value.
/// Two tables are equal when they hold the same keys with equal values, in any order.
public struct TOMLTable: Equatable, Sendable, ExpressibleByDictionaryLiteral {
    /// The keys in definition order.
    public private(set) var keys: [String] = []
    private var storage: [String: TOMLValue] = [:]

    public init() {}

    public init(dictionaryLiteral elements: (String, TOMLValue)...) {
        for (k, v) in elements { self[k] = v }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    /// The value of `key`; setting a new key appends it to `keys`, setting nil removes it.
    public subscript(key: String) -> TOMLValue? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    /// Key and value pairs in definition order.
    public var entries: [(key: String, value: TOMLValue)] {
        keys.compactMap { k in storage[k].map { (k, $0) } }
    }

    public static func == (lhs: TOMLTable, rhs: TOMLTable) -> Bool { lhs.storage == rhs.storage }
}

/// One step of a path into a document: a key of a table or an index into an array.
public enum TOMLPathComponent: Hashable, Sendable, CustomStringConvertible {
    case key(String)
    case index(Int)

    public var description: String {
        switch self {
        case .key(let k): TOMLSyntax.displayKey(k)
        case .index(let i): "[\(i)]"
        }
    }
}

/// A syntax or structure error, with the 1-based line and column (in Unicode scalars) where it
/// was found.
public struct TOMLError: Error, Equatable, Sendable, CustomStringConvertible {
    public let line: Int
    public let column: Int
    public let message: String

    public init(line: Int, column: Int, message: String) {
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "line \(line), column \(column): \(message)" }
}

/// A parsed document: its root table, and the line where each value was defined.
public struct TOMLDocument: Sendable {
    /// The nesting limit of `init(parsing:)`: tables, arrays and dotted key parts together.
    public static let defaultMaxDepth = 128

    public let root: TOMLTable
    /// The 1-based line of every path in the document: a key's line for a key/value pair (also
    /// inside inline tables), the header's line for a table or an element of an array of tables
    /// (the first `[[…]]` header for the array itself), the line of the key that first created
    /// a table by a dotted key, and the line where each element of an inline array starts.
    public let lines: [[TOMLPathComponent]: Int]

    /// Parses UTF-8 TOML text. Never traps: every problem is a `TOMLError`.
    public init(parsing bytes: [UInt8], maxDepth: Int = defaultMaxDepth) throws(TOMLError) {
        var parser = TOMLParser(bytes: bytes, maxDepth: maxDepth)
        (root, lines) = try parser.parseDocument()
    }

    public init(parsing text: String, maxDepth: Int = defaultMaxDepth) throws(TOMLError) {
        try self.init(parsing: Array(text.utf8), maxDepth: maxDepth)
    }

    /// The line of a path made of keys only (`["vss", "hooks", "freeze"]`).
    public func line(of keys: [String]) -> Int? {
        lines[keys.map { .key($0) }]
    }
}

enum TOMLSyntax {
    static func isBareKeyByte(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x5F || c == 0x2D
    }

    /// A key as it could be written: bare when it can be, else as a basic string.
    static func displayKey(_ key: String) -> String {
        if !key.isEmpty, key.utf8.allSatisfy(isBareKeyByte) { return key }
        var out = "\""
        for s in key.unicodeScalars {
            switch s {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if s.value < 0x20 || s.value == 0x7F {
                    let hex = String(s.value, radix: 16, uppercase: true)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(s)
                }
            }
        }
        return out + "\""
    }

    static func displayPath(_ keys: [String]) -> String {
        keys.map(displayKey).joined(separator: ".")
    }
}
