/// The mutable tables the parser builds, and the TOML rules about defining them.
///
/// A table is created in one of four ways, and that decides what may happen to it later:
/// - `implicit`: as a parent named in a header (`[a.b]` creates `a`); a later `[a]` defines it;
/// - `header`: by its own `[header]`; it can never be defined again, nor extended with dotted
///   keys from another table;
/// - `dotted`: by a dotted key (`a.b = 1` creates `a`); no header may define it afterwards, but
///   headers may name tables below it (`[a.c]`);
/// - inline tables and arrays written as values are finished values: nothing may be added to
///   them (they are stored as `.value`).
final class TableNode {
    enum Origin { case implicit, header, dotted }
    enum Entry {
        case table(TableNode)
        case tables(TableArray)
        case value(TOMLValue)
    }

    var origin: Origin
    private(set) var order: [String] = []
    private(set) var entries: [String: Entry] = [:]

    init(_ origin: Origin) { self.origin = origin }

    subscript(key: String) -> Entry? { entries[key] }

    func add(_ key: String, _ entry: Entry) {
        if entries.updateValue(entry, forKey: key) == nil { order.append(key) }
    }

    /// The finished value. Depth is bounded by the parser's nesting limit.
    func value() -> TOMLTable {
        var out = TOMLTable()
        for key in order {
            switch entries[key] {
            case .table(let t)?: out[key] = .table(t.value())
            case .tables(let a)?: out[key] = .array(a.elements.map { .table($0.value()) })
            case .value(let v)?: out[key] = v
            case nil: break
            }
        }
        return out
    }
}

/// The elements of an array of tables (`[[name]]`).
final class TableArray {
    var elements: [TableNode] = []
}

/// A broken rule (of the tree or of a value); the parser adds the position.
struct RuleError: Error {
    let message: String
}

extension TableNode {
    /// Finds or creates the table named by a `[header]` or `[[header]]` below `root`, applying
    /// TOML's rules; returns it with its path.
    static func openHeader(
        root: TableNode, keys: [String], isArray: Bool, line: Int, lines: inout [[TOMLPathComponent]: Int]
    ) throws(RuleError) -> (TableNode, [TOMLPathComponent]) {
        var path: [TOMLPathComponent] = []
        var names: [String] = []
        let node = try root.walk(keys.dropLast(), path: &path, names: &names, byDottedKey: false, line: line, lines: &lines)
        guard let key = keys.last else { throw RuleError(message: "expected a key in the table header") }
        names.append(key)
        path.append(.key(key))
        let shown = TOMLSyntax.displayPath(names)
        if isArray {
            let array: TableArray
            switch node[key] {
            case nil:
                array = TableArray()
                node.add(key, .tables(array))
                lines[path] = line
            case .tables(let a)?:
                array = a
            case .table?:
                throw RuleError(message: "cannot define array of tables [[\(shown)]]: '\(shown)' is already a table")
            case .value(let v)?:
                throw RuleError(message: "cannot define array of tables [[\(shown)]]: '\(shown)' is already defined as \(article(v))")
            }
            let t = TableNode(.header)
            array.elements.append(t)
            path.append(.index(array.elements.count - 1))
            lines[path] = line
            return (t, path)
        }
        switch node[key] {
        case nil:
            let t = TableNode(.header)
            node.add(key, .table(t))
            lines[path] = line
            return (t, path)
        case .table(let t)?:
            switch t.origin {
            case .implicit:
                t.origin = .header
                lines[path] = line
                return (t, path)
            case .header:
                throw RuleError(message: "table [\(shown)] is defined more than once")
            case .dotted:
                throw RuleError(message: "table [\(shown)] was already defined by dotted keys")
            }
        case .tables?:
            throw RuleError(message: "'\(shown)' is an array of tables; [[\(shown)]] adds an element to it")
        case .value(let v)?:
            throw RuleError(message: "'\(shown)' is already defined as \(article(v))")
        }
    }

    /// For `a.b.c = …` in this table: finds or creates the tables `a` and `a.b` (dotted-key
    /// rules) and checks that `c` is not yet defined. Returns the table that receives `c`.
    func resolveDotted(
        keys: [String], path: [TOMLPathComponent], line: Int, lines: inout [[TOMLPathComponent]: Int]
    ) throws(RuleError) -> TableNode {
        var path = path
        var names: [String] = []
        let node = try walk(keys.dropLast(), path: &path, names: &names, byDottedKey: true, line: line, lines: &lines)
        if let key = keys.last, node[key] != nil {
            throw RuleError(message: "duplicate key '\(TOMLSyntax.displayPath(names + [key]))'")
        }
        return node
    }
}

extension TableNode {
    /// Walks down the tables named by `keys` (the parents in `[a.b.c]` or `a.b.c = …`),
    /// creating missing ones, extending `path` and `names`. A header may pass through any table
    /// and into the last element of an array of tables; a dotted key only through tables not
    /// defined by their own header, which it then counts as defined by dotted keys.
    fileprivate func walk(
        _ keys: ArraySlice<String>, path: inout [TOMLPathComponent], names: inout [String], byDottedKey: Bool, line: Int,
        lines: inout [[TOMLPathComponent]: Int]
    ) throws(RuleError) -> TableNode {
        var node = self
        for key in keys {
            names.append(key)
            path.append(.key(key))
            let shown = TOMLSyntax.displayPath(names)
            switch node[key] {
            case nil:
                let t = TableNode(byDottedKey ? .dotted : .implicit)
                node.add(key, .table(t))
                lines[path] = line
                node = t
            case .table(let t)?:
                if byDottedKey {
                    guard t.origin != .header else {
                        throw RuleError(message: "cannot add to table '\(shown)' with dotted keys: it is defined by its own [header]")
                    }
                    t.origin = .dotted
                }
                node = t
            case .tables(let a)?:
                guard !byDottedKey else { throw RuleError(message: "cannot add to '\(shown)' with dotted keys: it is an array of tables") }
                // A header below an array of tables belongs to its last element.
                guard let last = a.elements.last else { throw RuleError(message: "array of tables '\(shown)' is empty") }
                path.append(.index(a.elements.count - 1))
                node = last
            case .value(let v)?:
                let what = byDottedKey ? "it cannot hold more keys" : "it cannot hold a table"
                throw RuleError(message: "'\(shown)' is already defined as \(article(v)); \(what)")
            }
        }
        return node
    }
}

/// "an integer", "an inline table", … for messages.
func article(_ v: TOMLValue) -> String {
    switch v {
    case .table: "an inline table"
    case .array: "an array"
    case .integer, .offsetDateTime: "an \(v.typeName)"
    default: "a \(v.typeName)"
    }
}
