import Glibc
import HVServiceKit
import HVSystem
import HVTOML

/// The merged configuration: a main file plus its drop-ins, as neutral `ConfigValue`s.
///
/// Files are read in order — `hvguest.toml`, then `hvguest.toml.d/*.toml` sorted by name — and
/// a later file overrides an earlier one key by key (tables merge recursively; arrays and other
/// values are replaced whole). Each top-level table is a section; services get theirs with
/// `section(_:)` and never see TOML.
public struct ConfigDocument: Sendable {
    /// The main file on a real system.
    public static let defaultPath = "/etc/hvguest/hvguest.toml"

    /// The files that were read, in the order they were applied.
    public let files: [String]
    private let sections: [String: [String: ConfigValue]]
    /// Where each section key was last set.
    private let origins: [String: [String: ConfigLocation]]

    /// An empty document: every section is empty, every setting has its default.
    public init() {
        files = []
        sections = [:]
        origins = [:]
    }

    /// Reads `path` (default `/etc/hvguest/hvguest.toml`) and its `<path>.d/*.toml` drop-ins.
    ///
    /// - Parameters:
    ///   - path: the file given with `--config`, or nil for the default. A missing default file
    ///     means "all defaults"; a missing explicitly given file is an error.
    ///   - knownSections: section names the caller's services understand. `daemon` and `log`
    ///     (`DaemonSettings`) are always known. Any other section is rejected as a typo.
    public static func load(path: String? = nil, knownSections: Set<String>) throws(ConfigError) -> ConfigDocument {
        try load(mainFile: path ?? defaultPath, mustExist: path != nil, knownSections: knownSections)
    }

    /// Reads `mainFile` (nothing when it is missing, unless `mustExist`) and the drop-ins in
    /// `<mainFile>.d/`. See `load(path:knownSections:)`.
    public static func load(mainFile main: String, mustExist: Bool, knownSections: Set<String>) throws(ConfigError) -> ConfigDocument {
        var sources: [(file: String, text: String)] = []
        if let text = try readText(main, missingIsError: mustExist) {
            sources.append((main, text))
        }
        let dropInDirectory = main + ".d"
        var names: [String]
        do {
            names = try directoryEntryNames(dropInDirectory)
        } catch {
            // No drop-in directory is the normal case; anything else (EACCES, ENOTDIR) is reported.
            if error.errno != ENOENT {
                throw ConfigError(location: ConfigLocation(file: dropInDirectory), key: "", message: "cannot list drop-ins: \(error)")
            }
            names = []
        }
        // Byte order, like systemd's drop-ins; hidden files (editor leftovers) are skipped.
        names = names.filter { $0.hasSuffix(".toml") && !$0.hasPrefix(".") }.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        for name in names {
            let file = dropInDirectory + "/" + name
            guard fileKind(file) == .regular else { continue }
            if let text = try readText(file, missingIsError: false) { sources.append((file, text)) }
        }
        return try parse(sources, knownSections: knownSections)
    }

    /// Builds a document from file contents already in memory, applied in the given order
    /// (the pure part of `load`; tests use it directly).
    public static func parse(_ sources: [(file: String, text: String)], knownSections: Set<String>) throws(ConfigError) -> ConfigDocument {
        let known = knownSections.union(DaemonSettings.sectionNames)
        var sections: [String: [String: ConfigValue]] = [:]
        var origins: [String: [String: ConfigLocation]] = [:]
        for (file, text) in sources {
            let document = try parseTOML(file: file, text: text)
            let root = document.root
            func location(_ path: [String]) -> ConfigLocation {
                ConfigLocation(file: file, line: document.line(of: path))
            }

            var unknown: [String] = []
            for name in root.keys.sorted() {
                guard let tomlValue = root[name] else { continue }
                let value = convert(tomlValue)
                guard case .table(let table) = value else {
                    throw ConfigError(
                        location: location([name]), key: name,
                        message: "expected a table (a [\(name)] section), got \(value.typeName) \(value)")
                }
                guard known.contains(name) else {
                    unknown.append(name)
                    continue
                }
                var merged = sections[name] ?? [:]
                var keyOrigins = origins[name] ?? [:]
                for (key, v) in table {
                    merged[key] = mergeValue(merged[key], v)
                    keyOrigins[key] = location([name, key])
                }
                sections[name] = merged
                origins[name] = keyOrigins
            }
            if let first = unknown.first {
                let list = unknown.map { "[\($0)]" }.joined(separator: ", ")
                throw ConfigError(
                    location: location([first]), key: first,
                    message: "unknown section\(unknown.count > 1 ? "s" : "") \(list) (known sections: \(known.sorted().joined(separator: ", ")))")
            }
        }
        return ConfigDocument(files: sources.map(\.file), sections: sections, origins: origins)
    }

    private init(files: [String], sections: [String: [String: ConfigValue]], origins: [String: [String: ConfigLocation]]) {
        self.files = files
        self.sections = sections
        self.origins = origins
    }

    /// The names of the sections present in any file.
    public var sectionNames: [String] { sections.keys.sorted() }

    /// Section `name` with its merged values; empty (all defaults) when no file has it.
    public func section(_ name: String) -> ConfigSection {
        let values = sections[name] ?? [:]
        let keyOrigins = origins[name] ?? [:]
        let fallback = ConfigLocation(file: files.last ?? "<defaults>")
        return ConfigSection(name: name, values: values, locate: { key in keyOrigins[key] ?? fallback })
    }

    // MARK: Parsing

    /// The file's text, or nil when it does not exist and that is allowed.
    private static func readText(_ file: String, missingIsError: Bool) throws(ConfigError) -> String? {
        let bytes: [UInt8]
        do {
            bytes = try readFile(file, limit: 1 << 20)
        } catch {
            if error.errno == ENOENT && !missingIsError { return nil }
            throw ConfigError(location: ConfigLocation(file: file), key: "", message: "cannot read configuration: \(error.message)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigError(location: ConfigLocation(file: file), key: "", message: "not valid UTF-8")
        }
        return text
    }

    /// Parses one file. The parser (HVTOML, ours) reports every problem with a line and
    /// column, NUL bytes and too deep nesting included, and never traps.
    private static func parseTOML(file: String, text: String) throws(ConfigError) -> TOMLDocument {
        do {
            return try TOMLDocument(parsing: text)
        } catch {
            throw ConfigError(
                location: ConfigLocation(file: file, line: error.line), key: "",
                message: "syntax error at column \(error.column): \(error.message)")
        }
    }

    private static func convert(_ value: TOMLValue) -> ConfigValue {
        switch value {
        case .string(let s): .string(s)
        case .integer(let i): .integer(i)
        case .float(let d): .float(d)
        case .bool(let b): .bool(b)
        // Dates and times have no use in hvguest's settings: keep their text so that a setting
        // that receives one reports "expected …, got a string".
        case .offsetDateTime(let t), .localDateTime(let t), .localDate(let t), .localTime(let t): .string(t)
        case .array(let items): .array(items.map(convert))
        case .table(let t): .table(Dictionary(t.entries.map { ($0.key, convert($0.value)) }, uniquingKeysWith: { _, new in new }))
        }
    }

    /// A later file's value replaces an earlier one, except that tables merge key by key.
    private static func mergeValue(_ old: ConfigValue?, _ new: ConfigValue) -> ConfigValue {
        guard case .table(var merged)? = old, case .table(let newTable) = new else { return new }
        for (k, v) in newTable { merged[k] = mergeValue(merged[k], v) }
        return .table(merged)
    }
}
