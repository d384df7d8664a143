import HVWire

/// The host's KVP operations (`Msvm_KvpExchangeComponent`, Add/Modify/RemoveKvpItems, guest
/// network adapter configuration), through the emulated kernel to the daemon.
public final class KVPHost: HostService, @unchecked Sendable {
    /// The kernel's limits on what it returns to the host (PROTOCOL.md §2.3): key ≤ 254 and
    /// value ≤ 1022 UTF-16 units; invalid UTF-8 fails the whole item.
    public static let maxKeyUnitsToHost = 254
    public static let maxValueUnitsToHost = 1022

    /// One item as the host reads it.
    public struct Item: Sendable, Equatable, CustomStringConvertible {
        public var key: String
        public var value: String
        public init(key: String, value: String) {
            self.key = key
            self.value = value
        }
        public var description: String { "\(key)=\(value)" }
    }

    /// Add or modify an item in a host-written pool (the host uses pools 0 and 3).
    public func set(pool: KVPPool, key: String, value: String) async -> HResult {
        await set(rawPool: pool.rawValue, key: Array(key.utf8), value: Array(value.utf8))
    }

    /// Same, with raw pool number and UTF-8 bytes (for hostile-input tests).
    public func set(rawPool: UInt8, key: [UInt8], value: [UInt8]) async -> HResult {
        let req = KVPRequest.set(pool: rawPool, KVPExchange(key: key, value: value))
        return status(await device.submit(operation: "SET", detail: "pool \(rawPool) \(show(key))", bytes: req.encode()))
    }

    public func delete(pool: KVPPool, key: String) async -> HResult {
        let req = KVPRequest.delete(pool: pool.rawValue, key: Array(key.utf8))
        return status(await device.submit(operation: "DELETE", detail: "pool \(pool.rawValue) \(show(Array(key.utf8)))",
                                          bytes: req.encode()))
    }

    /// GET of one key. The value is read where the current kernel reads it (PROTOCOL §6.3 K1).
    public func get(pool: KVPPool, key: String) async -> (HResult, String?) {
        let req = KVPRequest.get(pool: pool.rawValue, key: Array(key.utf8))
        let out = await device.submit(operation: "GET", detail: "pool \(pool.rawValue) \(show(Array(key.utf8)))", bytes: req.encode())
        guard case .replied(let bytes) = out else { return (status(out), nil) }
        guard let d = try? KVPReply.decode(bytes, for: .get) else { return (.fail, nil) }
        guard d.status.isSuccess else { return (d.status, nil) }
        guard let v = toHost(d.value ?? [], maxUnits: Self.maxValueUnitsToHost) else { return (.fail, nil) }
        return (.ok, v)
    }

    /// ENUMERATE one index: the item, or the status that ends the enumeration.
    public func item(pool: UInt8, index: UInt32) async -> (HResult, Item?) {
        let req = KVPRequest.enumerate(pool: pool, index: index)
        let out = await device.submit(operation: "ENUMERATE", detail: "pool \(pool) index \(index)", bytes: req.encode())
        guard case .replied(let bytes) = out else { return (status(out), nil) }
        guard let d = try? KVPReply.decode(bytes, for: .enumerate) else { return (.fail, nil) }
        guard d.status.isSuccess else { return (d.status, nil) }
        guard let k = toHost(d.key ?? [], maxUnits: Self.maxKeyUnitsToHost),
            let v = toHost(d.value ?? [], maxUnits: Self.maxValueUnitsToHost)
        else { return (.fail, nil) }
        return (.ok, Item(key: k, value: v))
    }

    /// Reads a whole pool the way the host does: ENUMERATE 0, 1, 2, … until the first non-zero
    /// status (HV_S_CONT normally). Returns the items and that final status.
    public func enumerate(pool: KVPPool, limit: Int = 1_000_000) async -> (items: [Item], end: HResult) {
        var items: [Item] = []
        var index: UInt32 = 0
        while items.count < limit {
            let (st, item) = await self.item(pool: pool.rawValue, index: index)
            guard st.isSuccess, let item else { return (items, st) }
            items.append(item)
            index += 1
        }
        return (items, .ok)
    }

    /// The guest's intrinsic items (GuestIntrinsicExchangeItems, pool 2).
    public func intrinsicItems() async -> (items: [Item], end: HResult) { await enumerate(pool: .auto) }

    /// The guest-published items (GuestExchangeItems, pool 1).
    public func guestItems() async -> (items: [Item], end: HResult) { await enumerate(pool: .guest) }

    /// GET_IP_INFO for the adapter with this MAC (upper-case, colon separated).
    public func getIPInfo(mac: String) async -> (HResult, KVPIPInfo?) {
        let req = KVPRequest.getIPInfo(pool: 0, KVPIPInfo(adapterID: mac))
        let out = await device.submit(operation: "GET_IP_INFO", detail: mac, bytes: req.encode())
        guard case .replied(let bytes) = out else { return (status(out), nil) }
        guard let d = try? KVPReply.decode(bytes, for: .getIPInfo) else { return (.fail, nil) }
        return (d.status, d.ipInfo)
    }

    /// SET_IP_INFO (guest network adapter configuration); `adapterID` is the VMBus instance GUID.
    public func setIPInfo(_ info: KVPIPInfo) async -> HResult {
        let req = KVPRequest.setIPInfo(pool: 0, info)
        return status(await device.submit(operation: "SET_IP_INFO", detail: info.adapterID, bytes: req.encode()))
    }

    /// Sends raw bytes as a kernel message (hostile-input tests) and returns the host status.
    public func raw(_ bytes: [UInt8], operation: String = "RAW") async -> RelayOutcome {
        await device.submit(operation: operation, bytes: bytes)
    }

    private func status(_ out: RelayOutcome) -> HResult {
        switch out {
        case .replied(let bytes): return (try? KVPReply.decode(bytes, for: .set).status) ?? .fail
        case .kernelAnswered(let h, _): return h
        }
    }

    /// The kernel's `utf8s_to_utf16s` step: invalid UTF-8 fails; the result is capped.
    private func toHost(_ utf8: [UInt8], maxUnits: Int) -> String? {
        guard let s = String(validating: utf8, as: UTF8.self) else { return nil }
        var units: [UInt16] = []
        for u in s.utf16 {
            if units.count >= maxUnits { break }
            units.append(u)
        }
        return String(decoding: units, as: UTF16.self)
    }

    private func show(_ key: [UInt8]) -> String {
        let s = String(decoding: key.prefix(40), as: UTF8.self)
        return "\"\(s)\(key.count > 40 ? "…" : "")\""
    }
}
