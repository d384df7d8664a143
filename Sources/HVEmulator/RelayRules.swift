import HVWire

/// The per-device rules of the kernel drivers (`hv_kvp.c`, `hv_snapshot.c`, `hv_fcopy.c`),
/// as pure functions (PROTOCOL.md §1.3–1.4, §3.1).
enum RelayRules {
    /// Checks a registration write; returns a description and the kernel's reply (nil for a
    /// legacy registration, to which the current kernel never answers).
    static func registration(_ kind: RelayKind, _ m: [UInt8]) -> Result<(String, [UInt8]?), WireError> {
        do {
            switch kind {
            case .kvp:
                let code = try KVPRegistration.decodeMessage(m)
                return .success(("KVP_OP_REGISTER\(code == KVPRegistration.current ? "1" : ""), kernel version \(KVPRegistration.kernelVersionString)",
                                 KVPRegistration.reply(code: code)))
            case .vss:
                let code = try VSSRegistration.decodeMessage(m)
                if code != VSSRegistration.current { return .success(("VSS_OP_REGISTER", nil)) }
                return .success(("VSS_OP_REGISTER1", VSSRegistration.reply(code: code)))
            case .fcopy:
                let v = try FCopyRegistration.decodeMessage(m)
                if v != FCopyRegistration.current { return .success(("fcopy version 0", nil)) }
                return .success(("fcopy version 1", FCopyRegistration.reply(version: v)))
            }
        } catch {
            return .failure(error)
        }
    }

    /// Why the kernel would refuse this reply write, or nil if it accepts it.
    static func replyProblem(_ kind: RelayKind, _ m: [UInt8]) -> String? {
        switch kind {
        case .kvp:
            return m.count < KVPLayout.messageSize ? "KVP reply of \(m.count) bytes (the kernel needs \(KVPLayout.messageSize))" : nil
        case .vss:
            return m.count != VSSLayout.messageSize ? "VSS reply of \(m.count) bytes (the kernel needs exactly 12)" : nil
        case .fcopy:
            return m.count != FCopyLayout.replySize ? "fcopy reply of \(m.count) bytes (the kernel needs exactly 4)" : nil
        }
    }

    /// The status the host receives from a daemon reply: the s32 in bytes 0–3 for all three.
    static func status(_ kind: RelayKind, _ m: [UInt8]) -> HResult {
        (try? ByteReader(m, structure: "reply").u32(at: 0)).map { HResult(rawValue: $0) } ?? .fail
    }

    /// With no daemon registered: the kernel's own answer, or nil if the request waits
    /// (KVP leaves host packets in the ring until a daemon registers).
    static func answerWithoutDaemon(_ kind: RelayKind, _ m: [UInt8]) -> HResult? {
        switch kind {
        case .kvp: return nil
        case .fcopy: return .fail
        case .vss:
            let op = m.first.flatMap { VSSOperation(rawValue: $0) }
            return op?.isDaemonOperation ?? true ? .fail : .ok
        }
    }

    /// Requests the kernel answers without asking the daemon (VSS CREATE, DELETE, GET_DM_INFO,
    /// BU_COMPLETE, AUTO_RECOVER).
    static func kernelHandled(_ kind: RelayKind, _ m: [UInt8]) -> HResult? {
        guard kind == .vss, let raw = m.first, let op = VSSOperation(rawValue: raw) else { return nil }
        return op.isDaemonOperation ? nil : .ok
    }
}
