import Glibc
import HVKVP
import HVSystem
import HVWire

// KVP: the pool files (shared with other programs, so their bytes are outside data) and the
// whole service over message sequences, with SET_IP_INFO going all the way to the rendered
// configuration file of the `script` backend in a fake root.

extension FuzzTargets {
    static let kvpTargets: [FuzzTarget] = [
        FuzzTarget(name: "kvp-pool", summary: "KVPPoolStore loading a pool file of arbitrary bytes, then set/remove/reload",
                   seeds: kvpPoolSeeds, body: kvpPoolBody),
        FuzzTarget(name: "kvp-service", summary: "KVPService.handle over message sequences; SET_IP_INFO rendered by the script backend",
                   seeds: kvpServiceSeeds, body: kvpServiceBody),
    ]
}

// MARK: pool files

/// Each message of the input (see `splitMessages`) becomes one 2560-byte record (padded or cut);
/// the last one is appended as it is, so files end in partial records too.
private func poolFile(from data: [UInt8]) -> [UInt8] {
    let parts = splitMessages(data)
    var out: [UInt8] = []
    out.reserveCapacity(parts.count * KVPRecordLayout.recordSize)
    for (i, p) in parts.enumerated() {
        if i == parts.count - 1 {
            out += p
        } else {
            var r = Array(p.prefix(KVPRecordLayout.recordSize))
            r += [UInt8](repeating: 0, count: KVPRecordLayout.recordSize - r.count)
            out += r
        }
    }
    return out
}

private func kvpPoolSeeds() -> [[UInt8]] {
    func rec(_ k: String, _ v: String) -> [UInt8] { KVPRecord(key: k, value: v).encoded() }
    return [
        joinMessages([rec("a", "1"), rec("b", "2"), rec("a", "dup"), []]),
        joinMessages([rec("", "empty key"), rec("k", String(repeating: "v", count: 600)), Array(rec("t", "x").prefix(100))]),
        joinMessages([[UInt8](repeating: 0x41, count: 2560), []]),
    ]
}

private let fuzzKey = Array("hvguest-fuzz-key".utf8)

/// Replaces the pool file's contents in place (truncate, one write) — what another program
/// sharing the file could leave. The directory stays for the whole run, so an input costs no
/// directory tree, rename or sync (the stores opened below are fresh on every input anyway).
private func rewritePoolFile(_ dir: String, _ bytes: [UInt8]) -> Bool {
    let file = dir + "/" + KVPPool.external.fileName
    for attempt in 0..<2 {
        do throws(SystemError) {
            let d = try Descriptor.open(file, flags: O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode: 0o644)
            defer { d.close() }
            if !bytes.isEmpty { try d.write(bytes, at: 0) }
            return true
        } catch {
            if attempt == 0 { _ = try? makeDirectories(dir) }
        }
    }
    return false
}

private func kvpPoolBody(_ data: [UInt8]) -> String? {
    let dir = FuzzScratch.path + "/kvp-pool"
    guard rewritePoolFile(dir, poolFile(from: data)) else { return nil }
    // What a reader sees: the first record of each key.
    guard let reader = try? KVPPoolStore(directory: dir, pool: .external, options: KVPStoreOptions(readOnly: true)),
          let records = try? reader.allRecords()
    else { return nil }
    if let n = try? reader.count(), n != records.count { return "count \(n) but \(records.count) records" }
    let firstValue = firstValues(records)
    for (k, v) in firstValue where !k.bytes.isEmpty {
        if (try? reader.value(forKey: k.bytes)) != v { return "lookup of a key disagrees with the first record" }
    }

    // A writer (which repairs the file on load): set, reload, remove, reload. Every other key
    // keeps its value.
    guard let writer = try? KVPPoolStore(directory: dir, pool: .external) else { return nil }
    let value = Array(data.prefix(40).map { $0 == 0 ? 0x30 : $0 })
    do { try writer.setValue(value, forKey: fuzzKey) } catch { return nil }
    if (try? writer.value(forKey: fuzzKey)) != value { return "value not readable after SET" }
    guard let again = try? KVPPoolStore(directory: dir, pool: .external, options: KVPStoreOptions(readOnly: true)) else {
        return "pool unreadable after SET"
    }
    if (try? again.value(forKey: fuzzKey)) != value { return "SET lost on reload" }
    // The other keys after the reload, by lookup and in the records: none lost, none changed.
    guard let reloaded = try? again.allRecords() else { return "records unreadable after SET" }
    let now = firstValues(reloaded)
    for (k, v) in firstValue where !k.bytes.isEmpty && k.bytes != fuzzKey {
        if (try? KVPPoolStore.validate(key: k.bytes)) == nil { continue }
        guard let after = now[k] else { return "SET of another key lost an existing key" }
        if after != v || (try? again.value(forKey: k.bytes)) != v { return "SET of another key changed an existing value" }
    }
    _ = try? writer.removeValue(forKey: fuzzKey)
    if let after = try? KVPPoolStore(directory: dir, pool: .external, options: KVPStoreOptions(readOnly: true)),
       (try? after.value(forKey: fuzzKey)) ?? nil != nil
    {
        return "DELETE lost on reload"
    }
    return nil
}

/// Key → value of its first record (what a lookup must give).
private func firstValues(_ records: [KVPRecord]) -> [KVPKeyBytes: [UInt8]] {
    var out: [KVPKeyBytes: [UInt8]] = [:]
    out.reserveCapacity(records.count)
    for r in records where out[KVPKeyBytes(r.key)] == nil { out[KVPKeyBytes(r.key)] = r.value }
    return out
}

// MARK: service

private let fuzzAdapterGUID = "{0d4a4f16-6a3b-4f5b-9f7e-2b8d1f0c9a11}"

/// A fake root with one interface whose VMBus device id is `fuzzAdapterGUID`.
private func fakeNetworkRoot(_ root: String) {
    let net = root + "/sys/class/net/eth0"
    guard fileKind(net + "/device/device_id") == .missing else { return }
    _ = try? makeDirectories(net + "/device")
    _ = try? writeFileAtomically(net + "/device/device_id", Array((fuzzAdapterGUID + "\n").utf8), mode: 0o644)
    _ = try? writeFileAtomically(net + "/address", Array("00:15:5d:01:02:03\n".utf8), mode: 0o644)
    _ = try? writeFileAtomically(net + "/ifindex", Array("2\n".utf8), mode: 0o644)
}

private func kvpServiceSeeds() -> [[UInt8]] {
    let info = KVPIPInfo(adapterID: fuzzAdapterGUID, addressFamily: KVPIPInfo.familyIPv4, dhcpEnabled: false,
                         ipAddresses: "10.0.0.5;fe80::5", subnets: "255.255.255.0;64", gateways: "10.0.0.1", dnsServers: "10.0.0.2;8.8.8.8")
    return [
        joinMessages([
            KVPRequest.set(pool: 0, KVPExchange(key: "k", value: "v")).encode(),
            KVPRequest.get(pool: 0, key: Array("k".utf8)).encode(),
            KVPRequest.enumerate(pool: 0, index: 0).encode(),
            KVPRequest.delete(pool: 0, key: Array("k".utf8)).encode(),
        ]),
        joinMessages([KVPRequest.setIPInfo(pool: 0, info).encode(), KVPRequest.getIPInfo(pool: 0, KVPIPInfo(adapterID: "00:15:5D:01:02:03")).encode()]),
        joinMessages([KVPRequest.enumerate(pool: 2, index: 3).encode(), KVPRequest.set(pool: 9, KVPExchange(key: "x", value: "y")).encode()]),
    ]
}

private let kvpExecutions = Locked(0)

private func kvpServiceBody(_ data: [UInt8]) -> String? {
    let base = FuzzScratch.path + "/kvp-service"
    let state = base + "/state"
    let root = base + "/root"
    if kvpExecutions.withLock({ n -> Bool in n &+= 1; return n % 128 == 1 }) { removeTree(state) }
    fakeNetworkRoot(root)
    // A fresh service per input (it loads the pools earlier inputs left, as after a restart).
    // Keeping one for many inputs was slower: its stores' indexes grow with every SET, so
    // libFuzzer sees more mallocs than frees, runs each such input twice and scans for leaks.
    let configurator = NativeIPConfigurator(backend: .script, root: root, stateDirectory: state, scriptPath: base + "/set-ip",
                                            runner: RecordingProgramRunner())
    guard let service = try? KVPService(stateDirectory: state, facts: LiveSystemFacts(root: root), networkRoot: root,
                                        ipConfigurator: configurator, startResolverThread: false)
    else { return nil }
    for m in splitMessages(data) {
        let r = service.handle(request: m)
        if r.bytes.count != KVPLayout.messageSize { return "KVP reply of \(r.bytes.count) bytes" }
        let code = UInt32(r.bytes[0]) | UInt32(r.bytes[1]) << 8 | UInt32(r.bytes[2]) << 16 | UInt32(r.bytes[3]) << 24
        if code != r.status.rawValue { return "KVP reply code 0x\(String(code, radix: 16)) but status \(r.status)" }
    }
    // Whatever the host sent, the rendered file holds only KEY=value lines of safe characters
    // (no shell or config-file syntax can come from the host).
    if let text = try? readFile(state + "/ifcfg-eth0", limit: 1 << 20) {
        for line in text.split(separator: UInt8(ascii: "\n")) {
            guard let eq = line.firstIndex(of: UInt8(ascii: "=")) else { return "ifcfg line without '='" }
            let key = line[..<eq]
            let value = line[line.index(after: eq)...]
            let keyOK = key.allSatisfy { ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
            let valueOK = value.allSatisfy {
                ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x3A || $0 == 0x5F || $0 == 0x2D
            }
            if !keyOK || !valueOK { return "unsafe ifcfg line: \(String(decoding: line, as: UTF8.self))" }
        }
        removeTree(state + "/ifcfg-eth0")
    }
    service.stopBackgroundWork()
    return nil
}
