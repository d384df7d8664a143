import Glibc
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
    /// The util ICs served through fake UIO devices (nil unless requested with `ics:`).
    public let shutdown: ShutdownHost?
    public let timeSync: TimeSyncHost?
    public let heartbeat: HeartbeatHost?
    private let log: Locked<[HostEvent]>

    /// How the host reaches the guest's file-copy service.
    public enum FileCopyTransport: String, Sendable, CaseIterable {
        /// `dev/vmbus/hv_fcopy` (kernels ≤ 6.9).
        case relay
        /// The fcopy VMBus channel through uio_hv_generic at `dev/uio0` (kernels ≥ 6.10).
        case uio
    }

    /// - Parameters:
    ///   - devices: which relay devices to create (all three by default).
    ///   - ics: which util ICs to serve as UIO devices (shutdown uio1, timesync uio2, heartbeat uio3).
    ///   - fileCopyTransport: `.uio` serves file copy on the ring at `dev/uio0` instead of the
    ///     relay device (when `devices` contains `.fcopy`); `host.fcopy` works the same.
    ///   - logEvents: keep the bounded `events` log; benchmarks turn it off so the emulator's
    ///     own bookkeeping does not lower the ceiling it measures against.
    ///   - onEvent: called on the device threads for every event (the CLI prints them).
    public init(root: String, devices: Set<RelayKind> = Set(RelayKind.allCases), ics: Set<ICKind> = [],
                timeouts: KernelTimeouts = .kernel, fileCopyTransport: FileCopyTransport = .relay, logEvents: Bool = true,
                onEvent: @escaping @Sendable (HostEvent) -> Void = { _ in }) throws(SystemError) {
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
        if fileCopyTransport == .uio && devices.contains(.fcopy) {
            do {
                fcopy = FileCopyHost(device: nil, uio: try FileCopyUIOHost(deviceRoot: root, timeout: timeouts.request))
            } catch {
                if case .system(let e) = error { throw e }
                throw SystemError("create the fcopy UIO device under \(root): \(error)", errno: EIO)
            }
        } else {
            fcopy = FileCopyHost(device: try make(.fcopy))
        }
        do {
            shutdown = ics.contains(.shutdown) ? try ShutdownHost(deviceRoot: root) : nil
            timeSync = ics.contains(.timesync) ? try TimeSyncHost(deviceRoot: root) : nil
            heartbeat = ics.contains(.heartbeat) ? try HeartbeatHost(deviceRoot: root) : nil
        } catch {
            if case .system(let e) = error { throw e }
            throw SystemError("create the IC UIO devices under \(root): \(error)", errno: EIO)
        }
    }

    /// The IC hosts that exist.
    public var icHosts: [ICHost] { [shutdown as ICHost?, timeSync, heartbeat].compactMap { $0 } }

    public var devices: [RelayDeviceEmulator] { [kvp.optionalDevice, vss.optionalDevice, fcopy.optionalDevice].compactMap { $0 } }

    public func start() throws(SystemError) {
        for d in devices { try d.start() }
        if let uio = fcopy.uio {
            // Like the kernel: the guest's open connects the channel and the host negotiates
            // at once, whether or not a copy is pending.
            do { try uio.channel.startAcceptingInBackground(timeoutMilliseconds: 5_000) } catch {
                if case .system(let e) = error { throw e }
                throw SystemError("start the fcopy UIO device: \(error)", errno: EIO)
            }
        }
        for ic in icHosts {
            do { try ic.uio.startAcceptingInBackground() } catch {
                if case .system(let e) = error { throw e }
                throw SystemError("start the \(ic.kind) UIO device: \(error)", errno: EIO)
            }
        }
    }

    public func stop() {
        for d in devices { d.stop() }
        fcopy.uio?.channel.close()
        for ic in icHosts { ic.close() }
    }

    /// Everything observed so far (bounded).
    public var events: [HostEvent] { log.withLock { $0 } }

    /// Waits until every device has a registered daemon.
    public func waitForAllRegistered(timeout: Duration = .seconds(10)) async -> Bool {
        for d in devices where !(await d.waitForRegistration(timeout: timeout)) { return false }
        if let uio = fcopy.uio { return await uio.waitUntilReady(timeout: timeout) }
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
