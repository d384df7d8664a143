import Glibc
import HVSystem
import HVWire

/// Why a pool operation failed.
public enum KVPStoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A system call failed (open, lock, read, write, truncate, sync).
    case system(SystemError)
    /// The key is empty (an all-zero key field is how an interrupted delete marks a hole).
    case emptyKey
    /// The key is longer than 511 bytes or contains a NUL.
    case invalidKey(String)
    /// The value is longer than 2047 bytes or contains a NUL.
    case invalidValue(String)
    /// Inserting would exceed `kvp.max_records_per_pool`.
    case poolFull(limit: Int)
    /// The store was opened read-only.
    case readOnly

    public var description: String {
        switch self {
        case .system(let e): return e.description
        case .emptyKey: return "empty key"
        case .invalidKey(let why): return "invalid key: \(why)"
        case .invalidValue(let why): return "invalid value: \(why)"
        case .poolFull(let limit): return "pool is full (\(limit) records; see kvp.max_records_per_pool)"
        case .readOnly: return "pool file opened read-only"
        }
    }
}

/// How a `KVPPoolStore` behaves.
public struct KVPStoreOptions: Sendable, Equatable {
    /// `fdatasync` between the ordered steps of an update and before returning, so that every
    /// acknowledged write survives power loss, not only a crash of the process.
    public var synchronousWrites: Bool
    /// Most records an insert may create (existing larger files are still read in full).
    public var maxRecords: Int
    /// Open without write access (shared locks; nothing is repaired or stamped).
    public var readOnly: Bool

    public init(synchronousWrites: Bool = false, maxRecords: Int = KVPConfiguration.defaultMaxRecordsPerPool, readOnly: Bool = false) {
        self.synchronousWrites = synchronousWrites
        self.maxRecords = maxRecords
        self.readOnly = readOnly
    }
}

/// One pool file (`STATE_DIR/.kvp_pool_N`), byte-compatible with hyperv-daemons, with an
/// in-memory index so that each operation costs O(1) system calls whatever the pool size.
///
/// **Sharing the file.** Other programs read and write these files (cloud-init and azure-init
/// append with `flock`, older tools use `fcntl` locks). Every operation takes both locks
/// (`FileLock`), then compares the file's identity, size and mtime with what we last saw and
/// re-reads it only when someone else changed it. After each of our own changes we stamp the
/// mtime with the full-resolution clock: the kernel stamps writes with its coarse clock, so an
/// outside write within the same clock tick still gives a different mtime and is noticed.
///
/// **Crash safety.** The unit we rely on is a 512-byte write at a 512-aligned offset: it never
/// crosses a page (a killed process cannot leave half of it) and is one sector on disk. A key
/// field is exactly such a unit and acts as the commit point of every change:
/// - insert: write the whole record at the end. If interrupted, the file ends in a partial
///   record, which every reader ignores, and the next insert overwrites it.
/// - update, old and new value both < 512 bytes: rewrite the value's first 512-byte unit only.
/// - update, otherwise: append the new record, then remove the old slot as below. Until the
///   old key is zeroed, readers (first match wins) see the old value; afterwards, the new one.
/// - delete slot `h` (last slot `l`): zero `h`'s key (the key is now gone); copy `l`'s value,
///   then `l`'s key into `h` (`l` now appears twice, identical); truncate `l` away.
/// Each interrupted state is a valid file in which every acknowledged write is present; the
/// leftovers (an empty-key record, a later duplicate of a key) are removed the next time the
/// file is loaded for writing. With `synchronousWrites`, `fdatasync` separates the steps, so the
/// same holds after power loss; without it, a process crash is covered but power loss may lose
/// recent writes (as with the reference daemon, which never syncs).
///
/// Not thread-safe: one owner (the KVP service's thread, or one CLI command) per instance.
public final class KVPPoolStore {
    public let pool: KVPPool
    public let path: String
    public let options: KVPStoreOptions

    private var descriptor: Descriptor
    /// Keys in file order; slot i is the record at offset i × 2560.
    private var keys: [[UInt8]] = []
    /// strlen of each slot's value (decides whether an update can be a single 512-byte write).
    private var valueLengths: [UInt16] = []
    /// Key → slot of its first occurrence.
    private var index: [KVPKeyBytes: Int] = [:]
    /// What the file looked like after our last look or change.
    private var lastSeen: FileSnapshot?
    /// Device and inode of the file `descriptor` has open (taken once per open).
    private var openedFile: FileSnapshot
    /// Statistics for tests and benchmarks.
    public private(set) var reloadCount = 0

    /// Opens (creating if needed, mode 0644 in a 0755 directory) the pool file in `directory`.
    public init(directory: String, pool: KVPPool, options: KVPStoreOptions = KVPStoreOptions()) throws(KVPStoreError) {
        self.pool = pool
        self.options = options
        path = (directory.hasSuffix("/") ? directory : directory + "/") + pool.fileName
        do {
            if !options.readOnly { try makeDirectories(directory, mode: 0o755) }
            descriptor = try Self.open(path, readOnly: options.readOnly)
            openedFile = try descriptor.snapshot()
        } catch { throw .system(error) }
    }

    private static func open(_ path: String, readOnly: Bool) throws(SystemError) -> Descriptor {
        if readOnly { return try Descriptor.open(path, flags: O_RDONLY) }
        // Create with exactly 0644 whatever the umask, as the reference daemon's files are;
        // an existing file keeps the mode its owner gave it.
        do {
            let d = try Descriptor.open(path, flags: O_RDWR | O_CREAT | O_EXCL, mode: 0o644)
            try d.changePermissions(0o644)
            return d
        } catch where error.errno == EEXIST {
            return try Descriptor.open(path, flags: O_RDWR)
        }
    }

    // MARK: Operations

    /// Number of records (after noticing outside changes).
    public func count() throws(KVPStoreError) -> Int {
        try locked(.shared) { () throws(KVPStoreError) in liveCount }
    }

    /// The value of `key`, or nil when the pool has no such key.
    public func value(forKey key: [UInt8]) throws(KVPStoreError) -> [UInt8]? {
        try locked(.shared) { () throws(KVPStoreError) -> [UInt8]? in
            guard let slot = index[KVPKeyBytes(key)] else { return nil }
            return try readRecord(slot).value
        }
    }

    /// Inserts or replaces `key`.
    public func setValue(_ value: [UInt8], forKey key: [UInt8]) throws(KVPStoreError) {
        try Self.validate(key: key)
        guard value.count <= KVPRecordLayout.maxValueBytes else {
            throw .invalidValue("\(value.count) bytes, at most \(KVPRecordLayout.maxValueBytes)")
        }
        guard !value.contains(0) else { throw .invalidValue("contains a NUL byte") }
        try locked(.exclusive) { () throws(KVPStoreError) in
            let indexKey = KVPKeyBytes(key)
            if let slot = index[indexKey] {
                try update(slot: slot, key: key, value: value)
            } else {
                guard keys.count < options.maxRecords else { throw .poolFull(limit: options.maxRecords) }
                try append(KVPRecord(key: key, value: value))
                index[indexKey] = keys.count - 1
            }
            try finishChange()
        }
    }

    /// Removes `key`; returns false when it was not there.
    @discardableResult
    public func removeValue(forKey key: [UInt8]) throws(KVPStoreError) -> Bool {
        try locked(.exclusive) { () throws(KVPStoreError) -> Bool in
            let indexKey = KVPKeyBytes(key)
            guard let slot = index[indexKey] else { return false }
            index[indexKey] = nil
            try removeSlot(slot)
            try finishChange()
            return true
        }
    }

    /// The record at position `position` in file order (ENUMERATE), nil past the end.
    public func record(at position: Int) throws(KVPStoreError) -> KVPRecord? {
        try locked(.shared) { () throws(KVPStoreError) -> KVPRecord? in
            guard position >= 0 else { return nil }
            if liveCount == keys.count {
                guard position < keys.count else { return nil }
                return try readRecord(position)
            }
            // Only a read-only store can hold dead slots (writers repair them on load).
            guard let slot = liveSlots().dropFirst(position).first else { return nil }
            return try readRecord(slot)
        }
    }

    /// Every record, in file order.
    public func allRecords() throws(KVPStoreError) -> [KVPRecord] {
        try locked(.shared) { () throws(KVPStoreError) -> [KVPRecord] in
            var out: [KVPRecord] = []
            out.reserveCapacity(liveCount)
            var live = liveSlots()[...]
            try forEachRecord(upTo: keys.count) { slot, record in
                guard live.first == slot else { return }
                live.removeFirst()
                out.append(KVPRecord.decode(record))
            }
            return out
        }
    }

    /// Records per read when scanning the file: 80 KiB, a buffer the allocator can reuse.
    private static let chunkRecords = 32

    /// Calls `body` with each whole record of the first `count` slots, in file order, reading
    /// `chunkRecords` at a time; stops early if the file is shorter (a writer that ignores the
    /// locks truncated it).
    private func forEachRecord(upTo count: Int, _ body: (_ slot: Int, _ record: UnsafeRawBufferPointer) -> Void) throws(KVPStoreError) {
        let size = KVPRecordLayout.recordSize
        var slot = 0
        while slot < count {
            let n = Swift.min(Self.chunkRecords, count - slot)
            let bytes = try io { () throws(SystemError) in try descriptor.read(count: n * size, at: offset(slot)) }
            let got = bytes.count / size
            bytes.withUnsafeBytes { raw in
                for i in 0..<got { body(slot + i, UnsafeRawBufferPointer(rebasing: raw[(i * size)..<((i + 1) * size)])) }
            }
            if got < n { return }
            slot += n
        }
    }

    /// Empties the pool (truncates the file to zero records).
    public func removeAll() throws(KVPStoreError) {
        try locked(.exclusive) { () throws(KVPStoreError) in
            try io { () throws(SystemError) in try descriptor.setLength(0) }
            keys = []
            valueLengths = []
            index = [:]
            try finishChange()
        }
    }

    /// Checks a key as every writer must: non-empty, ≤ 511 bytes, no NUL.
    public static func validate(key: [UInt8]) throws(KVPStoreError) {
        guard !key.isEmpty else { throw .emptyKey }
        guard key.count <= KVPRecordLayout.maxKeyBytes else {
            throw .invalidKey("\(key.count) bytes, at most \(KVPRecordLayout.maxKeyBytes)")
        }
        guard !key.contains(0) else { throw .invalidKey("contains a NUL byte") }
    }

    // MARK: Locking and change detection

    private var liveCount: Int { index.count }

    private func liveSlots() -> [Int] {
        keys.indices.filter { index[KVPKeyBytes(keys[$0])] == $0 }
    }

    private func io<R>(_ body: () throws(SystemError) -> R) throws(KVPStoreError) -> R {
        do { return try body() } catch { throw .system(error) }
    }

    /// Runs `body` holding both locks, after bringing the index up to date.
    private func locked<R>(_ requested: FileLock.Kind, _ body: () throws(KVPStoreError) -> R) throws(KVPStoreError) -> R {
        if requested == .exclusive && options.readOnly { throw .readOnly }
        // Writers always take the exclusive lock: even a read may have to repair the file.
        let kind: FileLock.Kind = options.readOnly ? .shared : .exclusive
        var attempts = 0
        while true {
            let lock: FileLock
            do { lock = try FileLock(descriptor, kind) } catch { throw .system(error) }
            // Someone may have replaced the file (write-new-then-rename) or removed it: our
            // descriptor would then point at a file nobody else reads any more.
            // One stat of the path per operation: while it names the file we have open, its size
            // and mtime are those of our descriptor (no fstat needed).
            let current: FileSnapshot?
            do { current = try fileSnapshot(path) } catch { throw .system(error) }
            if let current, current.isSameFile(as: openedFile) {
                if current != lastSeen { try reload(current) }
                let result = try body()
                lock.release()
                return result
            }
            lock.release()
            attempts += 1
            if attempts > 3 {
                throw .system(SystemError("\(path) keeps being replaced", errno: EAGAIN))
            }
            do {
                // The directory itself may have been removed (an admin clearing state).
                if !options.readOnly, let slash = path.lastIndex(of: "/") {
                    try makeDirectories(String(path[..<slash]), mode: 0o755)
                }
                let fresh = try Self.open(path, readOnly: options.readOnly)
                let identity = try fresh.snapshot()  // on failure `fresh` closes on its way out
                descriptor.close()
                descriptor = fresh
                openedFile = identity
            } catch { throw .system(error) }
            lastSeen = nil
        }
    }

    /// Re-reads the whole file (someone else changed it), dropping a trailing partial record
    /// and repairing what an interrupted change of ours may have left.
    private func reload(_ status: FileSnapshot) throws(KVPStoreError) {
        reloadCount += 1
        let recordCount = Int(status.size / Int64(KVPRecordLayout.recordSize))
        keys = []
        valueLengths = []
        index = [:]
        keys.reserveCapacity(recordCount)
        valueLengths.reserveCapacity(recordCount)
        index.reserveCapacity(recordCount)
        var dead: [Int] = []
        try forEachRecord(upTo: recordCount) { slot, record in
            let keyField = UnsafeRawBufferPointer(rebasing: record[..<KVPRecordLayout.keyWidth])
            let valueField = UnsafeRawBufferPointer(rebasing: record[KVPRecordLayout.keyWidth...])
            let key = Array(keyField.prefix(KVPRecord.fieldLength(keyField)))
            keys.append(key)
            valueLengths.append(UInt16(KVPRecord.fieldLength(valueField)))
            let indexKey = KVPKeyBytes(key)
            if key.isEmpty || index[indexKey] != nil {
                dead.append(slot)
            } else {
                index[indexKey] = slot
            }
        }
        lastSeen = status
        guard !options.readOnly else { return }
        if !dead.isEmpty {
            // Highest first, so each hole is filled from a live last record.
            for slot in dead.reversed() { try removeSlot(slot) }
        }
        if status.size % Int64(KVPRecordLayout.recordSize) != 0 && dead.isEmpty {
            try io { () throws(SystemError) in
                try descriptor.setLength(Int64(keys.count) * Int64(KVPRecordLayout.recordSize))
            }
        }
        try finishChange()
    }

    /// Stamps the mtime (see the type's comment) and remembers the file's state.
    private func finishChange() throws(KVPStoreError) {
        try io { () throws(SystemError) in
            if options.synchronousWrites { try descriptor.synchronizeData() }
            // Not being the owner (EPERM) only costs us the same-tick detection; carry on.
            try? descriptor.setModificationTime(realtimeNanoseconds())
            lastSeen = try descriptor.snapshot()
        }
    }

    // MARK: Record writes (see the crash-safety notes on the type)

    private func offset(_ slot: Int) -> Int64 { Int64(slot) * Int64(KVPRecordLayout.recordSize) }

    private func barrier() throws(KVPStoreError) {
        if options.synchronousWrites { try io { () throws(SystemError) in try descriptor.synchronizeData() } }
    }

    private func readRecord(_ slot: Int) throws(KVPStoreError) -> KVPRecord {
        let bytes = try io { () throws(SystemError) in try descriptor.read(count: KVPRecordLayout.recordSize, at: offset(slot)) }
        return KVPRecord.decode(bytes)
    }

    private func append(_ record: KVPRecord) throws(KVPStoreError) {
        let slot = keys.count
        try io { () throws(SystemError) in try descriptor.write(record.encoded(), at: offset(slot)) }
        keys.append(record.key)
        valueLengths.append(UInt16(record.value.count))
    }

    private func update(slot: Int, key: [UInt8], value: [UInt8]) throws(KVPStoreError) {
        let unit = 512
        if value.count < unit && Int(valueLengths[slot]) < unit {
            var firstUnit = [UInt8](repeating: 0, count: unit)
            for (i, b) in value.enumerated() { firstUnit[i] = b }
            try io { () throws(SystemError) in
                try descriptor.write(firstUnit, at: offset(slot) + Int64(KVPRecordLayout.keyWidth))
            }
            valueLengths[slot] = UInt16(value.count)
            return
        }
        try append(KVPRecord(key: key, value: value))
        try barrier()
        try removeSlot(slot)
    }

    /// Removes the record in `slot` by moving the last record into it. The caller has already
    /// dropped `slot`'s key from the index if it was live.
    private func removeSlot(_ slot: Int) throws(KVPStoreError) {
        let last = keys.count - 1
        guard slot >= 0, slot <= last else { return }
        if slot != last {
            let moved = try readRecord(last)
            let encoded = moved.encoded()
            try io { () throws(SystemError) in
                try descriptor.write([UInt8](repeating: 0, count: KVPRecordLayout.keyWidth), at: offset(slot))
            }
            try barrier()
            try io { () throws(SystemError) in
                try descriptor.write(Array(encoded[KVPRecordLayout.keyWidth...]), at: offset(slot) + Int64(KVPRecordLayout.keyWidth))
            }
            try barrier()
            try io { () throws(SystemError) in
                try descriptor.write(Array(encoded[..<KVPRecordLayout.keyWidth]), at: offset(slot))
            }
            try barrier()
            keys[slot] = keys[last]
            valueLengths[slot] = valueLengths[last]
            let movedKey = KVPKeyBytes(keys[slot])
            if index[movedKey] == last { index[movedKey] = slot }
        }
        try io { () throws(SystemError) in try descriptor.setLength(offset(last)) }
        keys.removeLast()
        valueLengths.removeLast()
    }
}

/// Bytes as a dictionary key, hashed as one block: `[UInt8]`'s own `Hashable` feeds the hasher
/// one byte at a time, which made hashing most of the cost of loading a pool of long keys.
public struct KVPKeyBytes: Hashable, Sendable {
    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    public static func == (a: KVPKeyBytes, b: KVPKeyBytes) -> Bool {
        a.bytes.count == b.bytes.count && a.bytes.withUnsafeBytes { pa in
            b.bytes.withUnsafeBytes { pb in pa.isEmpty || memcmp(pa.baseAddress!, pb.baseAddress!, pa.count) == 0 }
        }
    }
}

extension KVPPoolStore {
    public func value(forKey key: String) throws(KVPStoreError) -> String? {
        try value(forKey: Array(key.utf8)).map { String(decoding: $0, as: UTF8.self) }
    }

    public func setValue(_ value: String, forKey key: String) throws(KVPStoreError) {
        try setValue(Array(value.utf8), forKey: Array(key.utf8))
    }

    @discardableResult
    public func removeValue(forKey key: String) throws(KVPStoreError) -> Bool {
        try removeValue(forKey: Array(key.utf8))
    }
}
