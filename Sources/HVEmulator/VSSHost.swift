import HVSystem
import HVWire

/// The host's VSS operations (`Msvm_VssComponent`: backups and production checkpoints).
public final class VSSHost: HostService, @unchecked Sendable {
    let freezeTimeout: Duration

    init(device: RelayDeviceEmulator?, freezeTimeout: Duration) {
        self.freezeTimeout = freezeTimeout
        super.init(device: device)
    }

    /// Sends one VSS operation; FREEZE gets the freeze timeout (900 s on a real kernel).
    public func request(_ op: VSSOperation, flags: UInt32 = 0) async -> HResult {
        await request(rawOperation: op.rawValue, flags: flags, name: op.description)
    }

    /// Raw operation byte (hostile-input tests).
    public func request(rawOperation: UInt8, flags: UInt32 = 0, name: String? = nil) async -> HResult {
        let timeout: Duration? = rawOperation == VSSOperation.freeze.rawValue ? freezeTimeout : nil
        let out = await device.submit(operation: name ?? "OP \(rawOperation)", bytes: VSSRequest(rawOperation: rawOperation, flags: flags).encode(),
                                      timeout: timeout)
        switch out {
        case .replied(let bytes): return (try? VSSReply.decode(bytes).status) ?? .fail
        case .kernelAnswered(let h, _): return h
        }
    }

    public func freeze() async -> HResult { await request(.freeze) }
    public func thaw() async -> HResult { await request(.thaw) }

    /// What the host sees of one backup.
    public struct BackupReport: Sendable, Equatable, CustomStringConvertible {
        public var freeze: HResult
        /// nil when the freeze failed (the host then does not send THAW).
        public var thaw: HResult?
        /// From sending FREEZE to its answer.
        public var freezeMicroseconds: UInt64
        /// From FREEZE sent to THAW answered.
        public var totalMicroseconds: UInt64

        public var succeeded: Bool { freeze.isSuccess && (thaw?.isSuccess ?? false) }

        public var description: String {
            let t = thaw.map { "thaw \($0)" } ?? "no thaw sent"
            return "freeze \(freeze) in \(formatMilliseconds(Double(freezeMicroseconds) / 1000)) ms, \(t), total \(formatMilliseconds(Double(totalMicroseconds) / 1000)) ms"
        }
    }

    /// A backup as the host runs it: FREEZE, hold (the snapshot), THAW. With `sendThaw: false`
    /// the THAW never comes (fault injection: the daemon's deadline must thaw).
    public func backup(hold: Duration = .milliseconds(100), sendThaw: Bool = true) async -> BackupReport {
        let t0 = monotonicNanoseconds()
        let f = await freeze()
        let t1 = monotonicNanoseconds()
        guard f.isSuccess else {
            return BackupReport(freeze: f, thaw: nil, freezeMicroseconds: (t1 - t0) / 1000, totalMicroseconds: (t1 - t0) / 1000)
        }
        try? await Task.sleep(for: hold)
        let th: HResult? = sendThaw ? await thaw() : nil
        let t2 = monotonicNanoseconds()
        return BackupReport(freeze: f, thaw: th, freezeMicroseconds: (t1 - t0) / 1000, totalMicroseconds: (t2 - t0) / 1000)
    }
}
