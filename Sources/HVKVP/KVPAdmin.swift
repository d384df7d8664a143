import Glibc
import HVSystem
import HVWire

/// `hvguestctl kvp …` as library functions. They use the same `KVPPoolStore` (same locks, same
/// crash-safe updates) as the daemon, so they work with or without the daemon running: the
/// daemon notices each change before its next answer.
public struct KVPAdmin: Sendable {
    public let stateDirectory: String
    public let options: KVPStoreOptions

    public init(stateDirectory: String = "/var/lib/hyperv", synchronousWrites: Bool = true) {
        self.stateDirectory = stateDirectory
        options = KVPStoreOptions(synchronousWrites: synchronousWrites)
    }

    /// One listed item.
    public struct Item: Sendable, Equatable {
        public var pool: KVPPool
        public var key: String
        public var value: String

        public init(pool: KVPPool, key: String, value: String) {
            self.pool = pool
            self.key = key
            self.value = value
        }
    }

    /// What `clean` removed.
    public struct CleanReport: Sendable, Equatable {
        public var recordsRemoved: [KVPPool: Int] = [:]
        public var filesRemoved: [String] = []
    }

    /// Items of one pool (or of all pools, in pool order), in file order. Pools whose file does
    /// not exist are empty. Needs only read access.
    public func list(pool: KVPPool? = nil) throws(KVPStoreError) -> [Item] {
        var out: [Item] = []
        for p in pool.map({ [$0] }) ?? KVPPool.allCases {
            guard let store = try openForReading(p) else { continue }
            out += try store.allRecords().map { Item(pool: p, key: $0.keyText, value: $0.valueText) }
        }
        return out
    }

    /// The value of `key` in `pool`, or (no pool given) in the first pool holding it.
    public func get(_ key: String, pool: KVPPool? = nil) throws(KVPStoreError) -> Item? {
        for p in pool.map({ [$0] }) ?? KVPPool.allCases {
            guard let store = try openForReading(p) else { continue }
            if let value = try store.value(forKey: Array(key.utf8)) {
                return Item(pool: p, key: key, value: String(decoding: value, as: UTF8.self))
            }
        }
        return nil
    }

    /// Publishes `key` = `value`; the guest pool (1) by default, which the host reads as
    /// GuestExchangeItems. Keys and values are limited to what the host can receive
    /// (254 / 1022 UTF-16 units, PROTOCOL.md §2.3), stricter than the file format.
    public func set(_ key: String, _ value: String, pool: KVPPool = .guest) throws(KVPStoreError) {
        guard key.utf16.count <= 254 else { throw .invalidKey("\(key.utf16.count) UTF-16 units; the host accepts at most 254") }
        guard value.utf16.count <= 1022 else {
            throw .invalidValue("\(value.utf16.count) UTF-16 units; the host accepts at most 1022")
        }
        try KVPPoolStore(directory: stateDirectory, pool: pool, options: options).setValue(value, forKey: key)
    }

    /// Removes `key` from `pool`; false when it was not there.
    @discardableResult
    public func delete(_ key: String, pool: KVPPool = .guest) throws(KVPStoreError) -> Bool {
        guard try openForReading(pool) != nil else { return false }
        return try KVPPoolStore(directory: stateDirectory, pool: pool, options: options).removeValue(forKey: key)
    }

    /// Prepares an image for generalisation: empties the host-written pools (0, 3, 4), the
    /// intrinsic pool file (2, stale data of older daemons) and, unless `keepGuestPool`, the
    /// guest pool (1: this instance's reports, e.g. provisioning results); removes the
    /// `ifcfg-*` / `*.nmconnection` files SET_IP_INFO of the reference daemon left in the state
    /// directory. Pool files are truncated in place (not removed) so programs holding them open
    /// keep working.
    public func clean(keepGuestPool: Bool = false) throws(KVPStoreError) -> CleanReport {
        var report = CleanReport()
        for pool in KVPPool.allCases where !(keepGuestPool && pool == .guest) {
            guard try openForReading(pool) != nil else { continue }
            let store = try KVPPoolStore(directory: stateDirectory, pool: pool, options: options)
            let n = try store.count()
            try store.removeAll()
            report.recordsRemoved[pool] = n
        }
        for name in directoryEntries(stateDirectory).sorted()
        where name.hasPrefix("ifcfg-") || name.hasSuffix(".nmconnection") {
            let path = stateDirectory + "/" + name
            guard fileKind(path) == .regular else { continue }
            do { try removeFileIfPresent(path) } catch { throw .system(error) }
            report.filesRemoved.append(name)
        }
        return report
    }

    /// A read-only store, or nil when the pool file does not exist.
    private func openForReading(_ pool: KVPPool) throws(KVPStoreError) -> KVPPoolStore? {
        do {
            return try KVPPoolStore(directory: stateDirectory, pool: pool, options: KVPStoreOptions(readOnly: true))
        } catch .system(let e) where e.errno == ENOENT || e.errno == ENOTDIR {
            return nil
        }
    }

    // MARK: Output

    /// `[{"pool":1,"key":"k","value":"v"},…]` (DESIGN.md: `hvguestctl kvp list --pool N --json`).
    public static func json(_ items: [Item]) -> String {
        "[" + items.map { "{\"pool\":\($0.pool.rawValue),\"key\":\(jsonString($0.key)),\"value\":\(jsonString($0.value))}" }
            .joined(separator: ",") + "]"
    }

    /// One line per item: `POOL<TAB>KEY<TAB>VALUE`, control characters escaped.
    public static func table(_ items: [Item]) -> String {
        items.map { "\($0.pool.rawValue)\t\(printable($0.key))\t\(printable($0.value))" }.joined(separator: "\n")
    }

    public static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    static func printable(_ s: String) -> String {
        var out = ""
        for u in s.unicodeScalars {
            switch u {
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\\": out += "\\\\"
            case _ where u.value < 0x20 || u.value == 0x7F: out += "\\x" + String(u.value, radix: 16)
            default: out.unicodeScalars.append(u)
            }
        }
        return out
    }
}
