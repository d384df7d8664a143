import Glibc
import HVSystem
import HVWire
import Testing

@testable import HVKVP

/// Tests with a second process: forked children write the pool file while we run, or are
/// killed with SIGKILL in the middle of a SET storm.
@Suite(.serialized) struct ProcessTests {
    /// What op `i` of the storm does: mostly short SETs, some long ones (the relocating update
    /// path) and some DELETEs, over 97 keys.
    enum StormOp: Equatable {
        case set(String, String)
        case delete(String)
    }

    static func stormOp(_ i: Int) -> StormOp {
        let key = "key\(i % 97)"
        switch i % 10 {
        case 9: return .delete(key)
        case 7, 8: return .set(key, "L\(i)-" + String(repeating: "x", count: 500 + i % 900))
        default: return .set(key, "s\(i)")
        }
    }

    static func apply(_ op: StormOp, to model: inout [String: String]) {
        switch op {
        case .set(let k, let v): model[k] = v
        case .delete(let k): model[k] = nil
        }
    }

    static func run(_ op: StormOp, on store: KVPPoolStore) throws {
        switch op {
        case .set(let k, let v): try store.setValue(v, forKey: k)
        case .delete(let k): try store.removeValue(forKey: k)
        }
    }

    /// First occurrence of each non-empty key, as a reader (GET) sees the file.
    static func readerView(_ bytes: [UInt8]) -> [String: String] {
        var view: [String: String] = [:]
        for (k, v) in parsePoolFile(bytes) where !k.isEmpty && view[k] == nil { view[k] = v }
        return view
    }

    @Test(arguments: 0..<4)
    func killDuringASetStormLosesNoAcknowledgedWrite(round: Int) throws {
        let dir = TemporaryDirectory("crash")
        let synchronous = round == 3
        let options = KVPStoreOptions(synchronousWrites: synchronous)
        // Warm the code paths in this process so the child needs no lazy runtime set-up.
        do {
            let warm = try KVPPoolStore(directory: dir.path, pool: .autoInternal, options: options)
            for i in 0..<40 { try Self.run(Self.stormOp(i), on: warm) }
        }
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        let child = fork()
        if child == 0 {
            closeInheritedDescriptors(keeping: fds[1])
            guard let store = try? KVPPoolStore(directory: dir.path, pool: .external, options: options) else { _exit(2) }
            var i: Int32 = 0
            while i < 1_000_000 {
                do { try Self.run(Self.stormOp(Int(i)), on: store) } catch { _exit(3) }
                var ack = i
                if withUnsafeBytes(of: &ack, { write(fds[1], $0.baseAddress, 4) }) != 4 { _exit(4) }
                i += 1
            }
            _exit(0)
        }
        close(fds[1])
        #expect(child > 0)
        // Let it run for a random number of acknowledged operations, then SIGKILL it.
        let target = Int32.random(in: (synchronous ? 50 : 300)...(synchronous ? 400 : 3000))
        var lastAck: Int32 = -1
        let deadline = monotonicNow() + 30
        while lastAck < target && monotonicNow() < deadline {
            var ack: Int32 = 0
            let n = withUnsafeMutableBytes(of: &ack) { read(fds[0], $0.baseAddress, 4) }
            if n != 4 { break }
            lastAck = ack
        }
        kill(child, SIGKILL)
        // Acks already in the pipe count too.
        while true {
            var ack: Int32 = 0
            let n = withUnsafeMutableBytes(of: &ack) { read(fds[0], $0.baseAddress, 4) }
            if n != 4 { break }
            lastAck = ack
        }
        close(fds[0])
        var status: Int32 = 0
        waitpid(child, &status, 0)
        #expect(lastAck >= min(target, 50), "the child made too little progress (\(lastAck) acks)")

        var model: [String: String] = [:]
        for i in 0...Int(lastAck) { Self.apply(Self.stormOp(i), to: &model) }
        var after = model
        Self.apply(Self.stormOp(Int(lastAck) + 1), to: &after)
        let inFlightKey: String
        switch Self.stormOp(Int(lastAck) + 1) {
        case .set(let k, _), .delete(let k): inFlightKey = k
        }

        // 1. As any reader sees the file right after the crash.
        let bytes = dir.bytes(".kvp_pool_0")
        let view = Self.readerView(bytes)
        for key in Set(model.keys).union(view.keys) where key != inFlightKey {
            #expect(view[key] == model[key], "key \(key) after \(lastAck) acks")
        }
        #expect(view[inFlightKey] == model[inFlightKey] || view[inFlightKey] == after[inFlightKey])

        // 2. After the next writer loaded (and repaired) it: no holes, no duplicates.
        let store = try KVPPoolStore(directory: dir.path, pool: .external)
        let records = try store.allRecords()
        #expect(Set(records.map(\.key)).count == records.count)
        #expect(!records.contains { $0.key.isEmpty })
        #expect(dir.bytes(".kvp_pool_0").count == records.count * 2560)
        for key in model.keys where key != inFlightKey {
            #expect(try store.value(forKey: key) == model[key])
        }
    }

    @Test func anotherProcessAppendsWhileTheServiceRuns() throws {
        let h = try KVPHarness()
        let path = h.dir.file(".kvp_pool_1")
        // Built before fork: the child only makes system calls.
        let records = (0..<200).map { goldenRecord("ext\($0)", "value\($0)") }
        let child = fork()
        if child == 0 {
            closeInheritedDescriptors()
            for r in records {
                let fd = open(path, O_WRONLY | O_APPEND)
                if fd < 0 { _exit(2) }
                flock(fd, LOCK_EX)
                _ = r.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                flock(fd, LOCK_UN)
                close(fd)
                usleep(200)
            }
            _exit(0)
        }
        #expect(child > 0)
        for i in 0..<200 {
            #expect(try h.set(1, "own\(i)", "v\(i)") == .ok)
            if i % 3 == 0 { #expect(try h.send(.delete(pool: 1, key: Array("own\(i)".utf8))).status == .ok) }
        }
        var status: Int32 = 0
        waitpid(child, &status, 0)
        #expect(status == 0)
        let listed = try h.enumerate(1)
        let keys = Set(listed.items.map(\.0))
        #expect(listed.items.count == keys.count)
        for i in 0..<200 {
            #expect(keys.contains("ext\(i)"))
            #expect(keys.contains("own\(i)") == (i % 3 != 0))
        }
        #expect(h.dir.bytes(".kvp_pool_1").count == listed.items.count * 2560)
        #expect(try h.send(.get(pool: 1, key: Array("ext199".utf8))).value == Array("value199".utf8))
    }
}

func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

extension ProcessTests {
    /// While a store operation holds its locks, another process can take neither a POSIX
    /// record lock (the reference daemon's kind) nor a flock (cloud-init's kind).
    @Test func storeLocksExcludeBothKindsOfLockers() throws {
        let dir = TemporaryDirectory("locks")
        let file = dir.file(".kvp_pool_1")
        dir.write(".kvp_pool_1", bytes: [])
        // The lock keeps its descriptor alive (closing it would drop both locks).
        let lock = try FileLock(try Descriptor.open(file, flags: O_RDWR), .exclusive)
        let child = fork()
        if child == 0 {
            let fd = open(file, O_RDWR)
            if fd < 0 { _exit(10) }
            var fl = Glibc.flock()
            fl.l_type = Int16(F_WRLCK)
            fl.l_whence = Int16(SEEK_SET)
            let posixBlocked = fcntl(fd, F_SETLK, &fl) == -1 && (errno == EAGAIN || errno == EACCES)
            let flockBlocked = flock(fd, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK
            _exit((posixBlocked ? 1 : 0) | (flockBlocked ? 2 : 0))
        }
        var status: Int32 = 0
        waitpid(child, &status, 0)
        #expect((status >> 8) & 0xFF == 3, "child saw posix/flock blocked bits \((status >> 8) & 0xFF)")
        lock.release()
        let again = fork()
        if again == 0 {
            let fd = open(file, O_RDWR)
            var fl = Glibc.flock()
            fl.l_type = Int16(F_WRLCK)
            fl.l_whence = Int16(SEEK_SET)
            let posixFree = fcntl(fd, F_SETLK, &fl) == 0
            let flockFree = flock(fd, LOCK_EX | LOCK_NB) == 0
            _exit((posixFree ? 1 : 0) | (flockFree ? 2 : 0))
        }
        waitpid(again, &status, 0)
        #expect((status >> 8) & 0xFF == 3)
    }
}
