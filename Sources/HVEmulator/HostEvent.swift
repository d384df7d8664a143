import HVWire

/// The three kernel relay devices the emulator serves.
public enum RelayKind: String, Sendable, CaseIterable, CustomStringConvertible {
    case kvp, vss, fcopy

    /// Path below the device root.
    public var devicePath: String { "dev/vmbus/hv_\(rawValue)" }
    public var description: String { rawValue }
}

/// How long the kernel waits for the daemon (PROTOCOL.md §1.5). Tests shorten them.
public struct KernelTimeouts: Sendable, Equatable {
    /// HV_UTIL_TIMEOUT: KVP, fcopy, VSS THAW / HOT_BACKUP.
    public var request: Duration
    /// VSS_FREEZE_TIMEOUT.
    public var freeze: Duration

    public init(request: Duration, freeze: Duration) {
        self.request = request
        self.freeze = freeze
    }

    /// The kernel's own values: 30 s, and 900 s for FREEZE.
    public static let kernel = KernelTimeouts(request: .seconds(30), freeze: .seconds(900))
}

/// What happened to one host request, as the host sees it.
public enum RelayOutcome: Sendable, Equatable {
    /// The daemon answered; these are its raw reply bytes (size already checked).
    case replied([UInt8])
    /// The kernel answered the host itself with this status (no daemon, timeout, disconnect,
    /// or an operation the kernel handles), for the reason given.
    case kernelAnswered(HResult, reason: String)

    /// The kernel-side status when the kernel answered; nil when the daemon replied.
    public var kernelStatus: HResult? {
        if case .kernelAnswered(let h, _) = self { return h }
        return nil
    }
}

/// Something the emulated host or kernel observed; the CLI prints these, tests inspect them.
public enum HostEvent: Sendable, Equatable, CustomStringConvertible {
    case listening(RelayKind, path: String)
    case connected(RelayKind)
    /// A second opener was turned away (the kernel answers EBUSY).
    case rejectedSecondOpener(RelayKind)
    case registered(RelayKind, detail: String)
    case disconnected(RelayKind, failedPending: String?)
    /// The daemon broke a kernel rule; the kernel would fail its write (EINVAL), so the
    /// emulator closes the channel and the daemon must reopen and re-register.
    case violation(RelayKind, String)
    /// A host request finished.
    case answered(RelayKind, operation: String, status: HResult, detail: String, microseconds: UInt64)

    public var description: String {
        switch self {
        case .listening(let k, let p): return "\(k): device ready at \(p)"
        case .connected(let k): return "\(k): daemon opened the device"
        case .rejectedSecondOpener(let k): return "\(k): second opener refused (EBUSY)"
        case .registered(let k, let d): return "\(k): daemon registered (\(d))"
        case .disconnected(let k, let p):
            if let p { return "\(k): daemon closed the device; pending \(p) failed with E_FAIL" }
            return "\(k): daemon closed the device"
        case .violation(let k, let why): return "\(k): protocol violation: \(why); channel reset"
        case .answered(let k, let op, let st, let detail, let us):
            let ms = Double(us) / 1000
            let d = detail.isEmpty ? "" : " \(detail)"
            return "\(k): \(op)\(d) → \(st) (\(formatMilliseconds(ms)) ms)"
        }
    }
}

func formatMilliseconds(_ ms: Double) -> String {
    let hundredths = Int((ms * 100).rounded())
    let frac = hundredths % 100
    return "\(hundredths / 100).\(frac < 10 ? "0" : "")\(frac)"
}
