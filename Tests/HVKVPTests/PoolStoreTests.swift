import Foundation
import Glibc
import HVWire
import Testing

@testable import HVKVP

@Suite struct PoolStoreTests {
    @Test func insertWritesGoldenRecordWithReferenceModes() throws {
        let dir = TemporaryDirectory()
        let state = dir.file("state/hyperv")
        let store = try KVPPoolStore(directory: state, pool: .guest)
        try store.setValue("value1", forKey: "key1")
        let bytes = dir.bytes("state/hyperv/.kvp_pool_1")
        #expect(bytes == goldenRecord("key1", "value1"))
        #expect(fileMode(state + "/.kvp_pool_1") == 0o644)
        #expect(fileMode(state) == 0o755)
        #expect(try store.value(forKey: "key1") == "value1")
        #expect(try store.value(forKey: "key") == nil)
    }

    @Test func updatesKeepTheSlotForShortAndLongValues() throws {
        let dir = TemporaryDirectory()
        let store = try KVPPoolStore(directory: dir.path, pool: .external)
        try store.setValue("a1", forKey: "A")
        try store.setValue("b1", forKey: "B")
        try store.setValue("a2", forKey: "A")
        #expect(dir.bytes(".kvp_pool_0") == goldenRecord("A", "a2") + goldenRecord("B", "b1"))
        let long = String(repeating: "x", count: 2047)
        try store.setValue(long, forKey: "A")
        #expect(dir.bytes(".kvp_pool_0") == goldenRecord("A", long) + goldenRecord("B", "b1"))
        try store.setValue("short", forKey: "A")
        #expect(dir.bytes(".kvp_pool_0") == goldenRecord("A", "short") + goldenRecord("B", "b1"))
        #expect(try store.value(forKey: "A") == "short")
    }

    @Test func deleteMovesTheLastRecordIntoTheHole() throws {
        let dir = TemporaryDirectory()
        let store = try KVPPoolStore(directory: dir.path, pool: .external)
        for k in ["A", "B", "C", "D"] { try store.setValue(k.lowercased(), forKey: k) }
        #expect(try store.removeValue(forKey: "B"))
        #expect(dir.bytes(".kvp_pool_0") == goldenRecord("A", "a") + goldenRecord("D", "d") + goldenRecord("C", "c"))
        #expect(try store.removeValue(forKey: "C"))  // the last one: just truncated
        #expect(dir.bytes(".kvp_pool_0") == goldenRecord("A", "a") + goldenRecord("D", "d"))
        #expect(try !store.removeValue(forKey: "B"))
        #expect(try store.record(at: 1) == KVPRecord(key: "D", value: "d"))
        #expect(try store.record(at: 2) == nil)
        #expect(try store.count() == 2)
    }

    @Test func keysMatchExactBytes() throws {
        let dir = TemporaryDirectory()
        let store = try KVPPoolStore(directory: dir.path, pool: .external)
        try store.setValue("1", forKey: "Key")
        try store.setValue("2", forKey: "key")
        try store.setValue("3", forKey: "Ké")
        #expect(try store.value(forKey: "Key") == "1")
        #expect(try store.value(forKey: "key") == "2")
        #expect(try store.value(forKey: "Ké") == "3")
        #expect(try store.value(forKey: "KEY") == nil)
        #expect(try store.count() == 3)
    }

    @Test func rejectsInvalidKeysAndValues() throws {
        let dir = TemporaryDirectory()
        let store = try KVPPoolStore(directory: dir.path, pool: .guest)
        #expect(throws: KVPStoreError.emptyKey) { try store.setValue("v", forKey: "") }
        #expect(throws: KVPStoreError.self) { try store.setValue("v", forKey: String(repeating: "k", count: 512)) }
        #expect(throws: KVPStoreError.self) { try store.setValue(Array("v".utf8), forKey: [0x41, 0, 0x42]) }
        #expect(throws: KVPStoreError.self) { try store.setValue(String(repeating: "v", count: 2048), forKey: "k") }
        try store.setValue(String(repeating: "v", count: 2047), forKey: String(repeating: "k", count: 511))
        #expect(try store.count() == 1)
        #expect(dir.bytes(".kvp_pool_1").count == 2560)
    }

    @Test func recordLimitStopsInsertsButNotUpdates() throws {
        let dir = TemporaryDirectory()
        let store = try KVPPoolStore(directory: dir.path, pool: .external, options: KVPStoreOptions(maxRecords: 2))
        try store.setValue("1", forKey: "a")
        try store.setValue("2", forKey: "b")
        #expect(throws: KVPStoreError.poolFull(limit: 2)) { try store.setValue("3", forKey: "c") }
        try store.setValue("22", forKey: "b")
        #expect(try store.value(forKey: "b") == "22")
        #expect(try store.count() == 2)
    }

    @Test func seesAnAppendByAnotherProgramAndStaysQuietOtherwise() throws {
        let dir = TemporaryDirectory()
        let store = try KVPPoolStore(directory: dir.path, pool: .guest)
        try store.setValue("mine", forKey: "ours")
        let reloadsBefore = store.reloadCount
        externalAppend(store.path, key: "PROVISIONING_REPORT", value: "result=success")
        #expect(try store.value(forKey: "PROVISIONING_REPORT") == "result=success")
        #expect(store.reloadCount == reloadsBefore + 1)
        #expect(try store.record(at: 1) == KVPRecord(key: "PROVISIONING_REPORT", value: "result=success"))
        _ = try store.value(forKey: "ours")
        try store.setValue("x", forKey: "new")
        #expect(store.reloadCount == reloadsBefore + 1)
        #expect(parsePoolFile(dir.bytes(".kvp_pool_1")).map(\.0) == ["ours", "PROVISIONING_REPORT", "new"])
    }

    @Test func seesAnInPlaceEditRightAfterItsOwnWrite() throws {
        let dir = TemporaryDirectory()
        let store = try KVPPoolStore(directory: dir.path, pool: .guest)
        try store.setValue("1", forKey: "a")
        // Same size, same clock tick: only the mtime stamp tells the change apart.
        externalOverwrite(store.path, slot: 0, key: "a", value: "edited")
        #expect(try store.value(forKey: "a") == "edited")
    }

    @Test func followsAFileReplacedByRename() throws {
        let dir = TemporaryDirectory()
        let store = try KVPPoolStore(directory: dir.path, pool: .guest)
        try store.setValue("1", forKey: "a")
        dir.write("replacement", bytes: goldenRecord("b", "2"))
        #expect(rename(dir.file("replacement"), store.path) == 0)
        #expect(try store.value(forKey: "a") == nil)
        #expect(try store.value(forKey: "b") == "2")
        try store.setValue("3", forKey: "c")
        #expect(parsePoolFile(dir.bytes(".kvp_pool_1")).map(\.0) == ["b", "c"])
    }

    @Test func ignoresATrailingPartialRecordAndOverwritesIt() throws {
        let dir = TemporaryDirectory()
        dir.write(".kvp_pool_0", bytes: goldenRecord("a", "1") + Array(goldenRecord("torn", "x").prefix(1000)))
        let store = try KVPPoolStore(directory: dir.path, pool: .external)
        #expect(try store.count() == 1)
        #expect(dir.bytes(".kvp_pool_0").count == 2560)
        try store.setValue("2", forKey: "b")
        #expect(dir.bytes(".kvp_pool_0") == goldenRecord("a", "1") + goldenRecord("b", "2"))
    }

    @Test func repairsLeftoversOfAnInterruptedChange() throws {
        let dir = TemporaryDirectory()
        // An interrupted delete: a zeroed key (hole) and a duplicate of the moved last record.
        let file = goldenRecord("a", "1") + [UInt8](repeating: 0, count: 2560) + goldenRecord("c", "3")
            + goldenRecord("b", "2") + goldenRecord("c", "3")
        dir.write(".kvp_pool_0", bytes: file)
        let store = try KVPPoolStore(directory: dir.path, pool: .external)
        #expect(try store.count() == 3)
        #expect(parsePoolFile(dir.bytes(".kvp_pool_0")).map(\.0) == ["a", "b", "c"])
        #expect(try store.value(forKey: "c") == "3")
    }

    @Test func readOnlyStoreListsButRefusesWrites() throws {
        let dir = TemporaryDirectory()
        let writer = try KVPPoolStore(directory: dir.path, pool: .guest)
        try writer.setValue("1", forKey: "a")
        let reader = try KVPPoolStore(directory: dir.path, pool: .guest, options: KVPStoreOptions(readOnly: true))
        #expect(try reader.allRecords() == [KVPRecord(key: "a", value: "1")])
        #expect(throws: KVPStoreError.readOnly) { try reader.setValue("2", forKey: "b") }
    }

    @Test func readOnlyStoreReadsLargeFilesWithHolesAndDuplicatesInFileOrder() throws {
        // 100 records (the file is read in chunks of 32): holes and duplicates spread across
        // chunk boundaries, full-width fields without a NUL, and a trailing partial record.
        let dir = TemporaryDirectory()
        var file: [UInt8] = []
        var expected: [KVPRecord] = []
        for i in 0..<100 {
            if i % 31 == 0 { file += [UInt8](repeating: 0, count: 2560); continue }  // hole
            if i % 17 == 0 { file += goldenRecord("k\(i - 1)", "dup"); continue }  // later duplicate
            if i == 64 {
                let r = KVPRecord(key: [UInt8](repeating: 0x4B, count: 512), value: [UInt8](repeating: 0x56, count: 2048))
                file += r.encoded()
                expected.append(r)
                continue
            }
            file += goldenRecord("k\(i)", "v\(i)")
            expected.append(KVPRecord(key: "k\(i)", value: "v\(i)"))
        }
        file += Array(goldenRecord("torn", "x").prefix(700))
        dir.write(".kvp_pool_0", bytes: file)
        let reader = try KVPPoolStore(directory: dir.path, pool: .external, options: KVPStoreOptions(readOnly: true))
        #expect(try reader.allRecords() == expected)
        #expect(try reader.count() == expected.count)
        #expect(try reader.record(at: expected.count - 1) == expected.last)
        #expect(try reader.value(forKey: [UInt8](repeating: 0x4B, count: 512)) == [UInt8](repeating: 0x56, count: 2048))
        #expect(try reader.value(forKey: "k16") == "v16")
        // A writer repairs it to the same records (order aside) and keeps every value.
        let writer = try KVPPoolStore(directory: dir.path, pool: .external)
        #expect(Set(try writer.allRecords()) == Set(expected))
        #expect(dir.bytes(".kvp_pool_0").count == expected.count * 2560)
    }

    @Test func removeAllEmptiesThePool() throws {
        let dir = TemporaryDirectory()
        let store = try KVPPoolStore(directory: dir.path, pool: .external)
        try store.setValue("1", forKey: "a")
        try store.removeAll()
        #expect(dir.bytes(".kvp_pool_0").isEmpty)
        #expect(try store.count() == 0)
        try store.setValue("2", forKey: "b")
        #expect(dir.bytes(".kvp_pool_0") == goldenRecord("b", "2"))
    }

    @Test func synchronousWritesProduceTheSameFile() throws {
        let dir = TemporaryDirectory()
        let store = try KVPPoolStore(directory: dir.path, pool: .external, options: KVPStoreOptions(synchronousWrites: true))
        try store.setValue("1", forKey: "a")
        try store.setValue("2", forKey: "b")
        try store.setValue(String(repeating: "z", count: 600), forKey: "a")
        #expect(try store.removeValue(forKey: "a"))
        #expect(dir.bytes(".kvp_pool_0") == goldenRecord("b", "2"))
    }

    @Test func recreatesAPoolFileRemovedWithItsDirectory() throws {
        let dir = TemporaryDirectory()
        let state = dir.file("hyperv")
        let store = try KVPPoolStore(directory: state, pool: .external)
        try store.setValue("1", forKey: "a")
        try FileManager.default.removeItem(atPath: state)
        #expect(try store.value(forKey: "a") == nil)
        try store.setValue("2", forKey: "b")
        #expect(dir.bytes("hyperv/.kvp_pool_0") == goldenRecord("b", "2"))
        #expect(fileMode(state + "/.kvp_pool_0") == 0o644)
    }
}
