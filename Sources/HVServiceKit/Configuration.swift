/// A value from a configuration file, independent of the parser that produced it.
public enum ConfigValue: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case integer(Int64)
    case float(Double)
    case bool(Bool)
    case array([ConfigValue])
    case table([String: ConfigValue])

    public var typeName: String {
        switch self {
        case .string: return "a string"
        case .integer: return "an integer"
        case .float: return "a number"
        case .bool: return "a boolean"
        case .array: return "an array"
        case .table: return "a table"
        }
    }

    public var description: String {
        switch self {
        case .string(let s): return "\"\(s)\""
        case .integer(let i): return String(i)
        case .float(let d): return String(d)
        case .bool(let b): return String(b)
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .table(let t): return "{" + t.keys.sorted().joined(separator: ", ") + "}"
        }
    }
}

/// Where a key was set: file and, when known, line.
public struct ConfigLocation: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public init(file: String, line: Int? = nil) {
        self.file = file
        self.line = line
    }
    public var description: String { line.map { "\(file):\($0)" } ?? file }
}

/// A configuration problem, naming the file, the line and the key, and saying what is expected.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var location: ConfigLocation
    /// Dotted key, e.g. `vss.thaw_deadline_seconds`; empty for syntax errors.
    public var key: String
    public var message: String

    public init(location: ConfigLocation, key: String, message: String) {
        self.location = location
        self.key = key
        self.message = message
    }

    public var description: String {
        key.isEmpty ? "\(location): \(message)" : "\(location): \(key): \(message)"
    }
}

/// One `[section]` of the merged configuration, with typed, validating accessors.
///
/// Services declare their own configuration structs built from a section, so they never see
/// the file format. Every accessor throws a `ConfigError` that names the file, line and key.
public struct ConfigSection: Sendable {
    public let name: String
    public let values: [String: ConfigValue]
    private let locate: @Sendable (String) -> ConfigLocation

    /// - Parameter locate: maps a key of this section to where it was (last) set.
    public init(name: String, values: [String: ConfigValue], locate: @escaping @Sendable (String) -> ConfigLocation) {
        self.name = name
        self.values = values
        self.locate = locate
    }

    /// An empty section: every accessor returns its default.
    public static func empty(_ name: String) -> ConfigSection {
        ConfigSection(name: name, values: [:], locate: { _ in ConfigLocation(file: "<defaults>") })
    }

    public func location(of key: String) -> ConfigLocation { locate(key) }

    public func error(_ key: String, _ message: String) -> ConfigError {
        ConfigError(location: locate(key), key: "\(name).\(key)", message: message)
    }

    private func mismatch(_ key: String, _ expected: String, _ got: ConfigValue) -> ConfigError {
        error(key, "expected \(expected), got \(got.typeName) \(got)")
    }

    /// Rejects keys the section does not define (catches typos like `thaw_deadline_second`).
    public func checkKnownKeys(_ known: Set<String>) throws(ConfigError) {
        for key in values.keys.sorted() where !known.contains(key) {
            throw error(key, "unknown key (known keys: \(known.sorted().joined(separator: ", ")))")
        }
    }

    public func string(_ key: String, default def: String) throws(ConfigError) -> String {
        guard let v = values[key] else { return def }
        guard case .string(let s) = v else { throw mismatch(key, "a string", v) }
        return s
    }

    public func optionalString(_ key: String) throws(ConfigError) -> String? {
        guard let v = values[key] else { return nil }
        guard case .string(let s) = v else { throw mismatch(key, "a string", v) }
        return s
    }

    /// A string that must be one of `allowed`.
    public func choice(_ key: String, allowed: [String], default def: String) throws(ConfigError) -> String {
        let s = try string(key, default: def)
        guard allowed.contains(s) else {
            throw error(key, "must be one of \(allowed.map { "\"\($0)\"" }.joined(separator: ", ")), got \"\(s)\"")
        }
        return s
    }

    public func integer(_ key: String, default def: Int64, range: ClosedRange<Int64>) throws(ConfigError) -> Int64 {
        guard let v = values[key] else { return def }
        guard case .integer(let i) = v else { throw mismatch(key, "an integer", v) }
        guard range.contains(i) else {
            throw error(key, "must be between \(range.lowerBound) and \(range.upperBound), got \(i)")
        }
        return i
    }

    /// A duration in seconds; integers and decimals are both accepted.
    public func seconds(_ key: String, default def: Double, range: ClosedRange<Double>) throws(ConfigError) -> Double {
        guard let v = values[key] else { return def }
        let d: Double
        switch v {
        case .integer(let i): d = Double(i)
        case .float(let f): d = f
        default: throw mismatch(key, "a number of seconds", v)
        }
        guard range.contains(d), d.isFinite else {
            throw error(key, "must be between \(range.lowerBound) and \(range.upperBound) seconds, got \(d)")
        }
        return d
    }

    public func bool(_ key: String, default def: Bool) throws(ConfigError) -> Bool {
        guard let v = values[key] else { return def }
        guard case .bool(let b) = v else { throw mismatch(key, "true or false", v) }
        return b
    }

    public func stringArray(_ key: String, default def: [String]) throws(ConfigError) -> [String] {
        guard let v = values[key] else { return def }
        guard case .array(let items) = v else { throw mismatch(key, "an array of strings", v) }
        var out: [String] = []
        for item in items {
            guard case .string(let s) = item else { throw mismatch(key, "an array of strings", v) }
            out.append(s)
        }
        return out
    }

    /// An array of absolute paths (each must start with `/`; trailing slashes are removed).
    public func absolutePaths(_ key: String, default def: [String]) throws(ConfigError) -> [String] {
        var out: [String] = []
        for p in try stringArray(key, default: def) {
            guard p.hasPrefix("/") else { throw error(key, "\"\(p)\" is not an absolute path") }
            var q = p
            while q.count > 1 && q.hasSuffix("/") { q.removeLast() }
            out.append(q)
        }
        return out
    }
}
