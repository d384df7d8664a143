import HVSystem
import HVWire

/// The emulated Hyper-V host and guest kernel: a device root with every relay device, and the
/// host operations of DESIGN.md's table as a Swift API (the CLI verbs wrap these).
///
/// ```swift
/// let host = try EmulatedHost(root: dir)
/// try host.start()
/// _ = await host.kvp.device.waitForRegistration()
/// let status = await host.kvp.set(pool: .external, key: "k", value: "v")
/// ```
public final class EmulatedHost: Sendable {
    public let root: String
    public let kvp: KVPHost
    public let vss: VSSHost
    public let fcopy: FileCopyHost
    private let log: Locked<[HostEvent]>

    /// - Parameters:
    ///   - devices: which relay devices to create (all three by default).
    ///   - logEvents: keep the bounded `events` log; benchmarks turn it off so the emulator's
    ///     own bookkeeping does not lower the ceiling it measures against.
    ///   - onEvent: called on the device threads for every event (the CLI prints them).
    public init(root: String, devices: Set<RelayKind> = Set(RelayKind.allCases), timeouts: KernelTimeouts = .kernel,
                logEvents: Bool = true, onEvent: @escaping @Sendable (HostEvent) -> Void = { _ in }) throws(SystemError) {
        self.root = root
        let log = Locked<[HostEvent]>([])
        self.log = log
        let sink: @Sendable (HostEvent) -> Void = { e in
            if logEvents { log.withLock {
                if $0.count >= 100_000 { $0.removeFirst($0.count / 2) }
                $0.append(e)
            } }
            onEvent(e)
        }
        func make(_ k: RelayKind) throws(SystemError) -> RelayDeviceEmulator? {
            devices.contains(k) ? try RelayDeviceEmulator(kind: k, root: root, timeouts: timeouts, onEvent: sink) : nil
        }
        kvp = KVPHost(device: try make(.kvp))
        vss = VSSHost(device: try make(.vss), freezeTimeout: timeouts.freeze)
        fcopy = FileCopyHost(device: try make(.fcopy))
    }

    public var devices: [RelayDeviceEmulator] { [kvp.optionalDevice, vss.optionalDevice, fcopy.optionalDevice].compactMap { $0 } }

    public func start() throws(SystemError) {
        for d in devices { try d.start() }
    }

    public func stop() {
        for d in devices { d.stop() }
    }

    /// Everything observed so far (bounded).
    public var events: [HostEvent] { log.withLock { $0 } }

    /// Waits until every device has a registered daemon.
    public func waitForAllRegistered(timeout: Duration = .seconds(10)) async -> Bool {
        for d in devices where !(await d.waitForRegistration(timeout: timeout)) { return false }
        return true
    }
}

/// Shared shape of the per-service host APIs.
public class HostService: @unchecked Sendable {
    let optionalDevice: RelayDeviceEmulator?

    init(device: RelayDeviceEmulator?) { optionalDevice = device }

    /// The device emulator; traps only on programmer error (asking for a device that was not created).
    public var device: RelayDeviceEmulator {
        guard let d = optionalDevice else { preconditionFailure("this EmulatedHost was created without that device") }
        return d
    }
}
