import HVSystem

/// A kernel version as `uname -r` starts (`6.10.3-amd64` → 6.10).
public struct KernelVersion: Comparable, Sendable, CustomStringConvertible {
    public var major: Int
    public var minor: Int

    public init(_ major: Int, _ minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// Parses the leading `MAJOR.MINOR` of a release string; nil when it has none.
    public init?(release: String) {
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard numbers.count == 2, release.first?.isNumber == true else { return nil }
        self.init(numbers[0], numbers[1])
    }

    public static func < (a: KernelVersion, b: KernelVersion) -> Bool { (a.major, a.minor) < (b.major, b.minor) }
    public var description: String { "\(major).\(minor)" }
}

/// Why a takeover or release failed.
public enum UIOTakeoverError: Error, Equatable, Sendable, CustomStringConvertible {
    case kernelTooOld(release: String)
    case deviceNotFound(classID: String)
    /// uio_hv_generic is not loaded (no `drivers/uio_hv_generic`).
    case driverMissing(String)
    case sysfs(path: String, SystemError)

    public var description: String {
        switch self {
        case .kernelTooOld(let r):
            return "kernel \(r) is older than 6.10: uio_hv_generic cannot serve util ICs there (they are not monitored "
                + "channels); keep mode = \"kernel\" for shutdown, timesync and heartbeat"
        case .deviceNotFound(let c): return "no VMBus device of class {\(c)}"
        case .driverMissing(let d): return "driver \(d) is not loaded (modprobe \(d))"
        case .sysfs(let p, let e): return "writing \(p): \(e)"
        }
    }
}

/// Which device was taken over, and from whom (to give it back).
public struct TakeoverRecord: Sendable, Equatable {
    public var instance: String
    /// The driver it was bound to (hv_utils), nil when it was unbound.
    public var previousDriver: String?
    /// It was already bound to uio_hv_generic (or is the emulator's fake): nothing to undo.
    public var wasAlreadyBound: Bool

    public init(instance: String, previousDriver: String?, wasAlreadyBound: Bool) {
        self.instance = instance
        self.previousDriver = previousDriver
        self.wasAlreadyBound = wasAlreadyBound
    }
}

/// Moves a util IC device from hv_utils to uio_hv_generic and back (PROTOCOL.md §5.5), by
/// sysfs under the device root: `driver_override`, unbind, bind. Finds the device by class GUID.
/// A device that already shows `uio/` is left as it is (the fake device layer's devices).
public struct UIOTakeover: Sendable {
    public static let minimumKernel = KernelVersion(6, 10)
    public static let uioDriver = "uio_hv_generic"

    public var deviceRoot: String
    /// `uname -r`; injectable for tests.
    public var kernelRelease: @Sendable () -> String
    /// Writes one sysfs attribute; injectable so tests can record the order.
    public var writeAttribute: @Sendable (String, String) throws(SystemError) -> Void

    public init(
        deviceRoot: String, kernelRelease: @escaping @Sendable () -> String = { HVSystem.kernelRelease() },
        writeAttribute: @escaping @Sendable (String, String) throws(SystemError) -> Void = { p, v throws(SystemError) in
            try Sysfs.writeAttribute(p, v)
        }
    ) {
        self.deviceRoot = deviceRoot
        self.kernelRelease = kernelRelease
        self.writeAttribute = writeAttribute
    }

    private var bus: VMBusSysfs { VMBusSysfs(deviceRoot: deviceRoot) }
    private func driverDir(_ driver: String) -> String { bus.driver(driver) }

    /// Throws `kernelTooOld` on kernels before 6.10 (or an unparsable release).
    public func checkKernel() throws(UIOTakeoverError) {
        let release = kernelRelease()
        guard let version = KernelVersion(release: release), version >= Self.minimumKernel else {
            throw .kernelTooOld(release: release)
        }
    }

    /// The instance directory name of the device of `classID`.
    public func findInstance(classID: String) -> String? {
        (try? bus.instances(ofClass: classID))?.first
    }

    /// The driver a device is bound to (the `driver` link's last component), nil when unbound.
    public func currentDriver(instance: String) -> String? {
        bus.currentDriver(instance)
    }

    /// Binds the device of `classID` to uio_hv_generic. On a failure after the unbind it tries to
    /// give the device back to its driver before throwing.
    public func take(classID: String) throws(UIOTakeoverError) -> TakeoverRecord {
        guard let instance = findInstance(classID: classID) else { throw .deviceNotFound(classID: UIODevice.normalizedGUID(classID)) }
        let deviceDir = bus.device(instance)
        if bus.uioName(instance) != nil {
            return TakeoverRecord(instance: instance, previousDriver: currentDriver(instance: instance), wasAlreadyBound: true)
        }
        try checkKernel()
        guard PathOps.exists(driverDir(Self.uioDriver)) else { throw .driverMissing(Self.uioDriver) }
        let previous = currentDriver(instance: instance)
        try write(deviceDir + "/driver_override", Self.uioDriver)
        if let previous {
            do { try write(driverDir(previous) + "/unbind", instance) } catch {
                try? write(deviceDir + "/driver_override", "\n")
                throw error
            }
        }
        do { try write(driverDir(Self.uioDriver) + "/bind", instance) } catch {
            // Leave the device where it was rather than driverless.
            try? write(deviceDir + "/driver_override", "\n")
            if let previous { try? write(driverDir(previous) + "/bind", instance) }
            throw error
        }
        return TakeoverRecord(instance: instance, previousDriver: previous, wasAlreadyBound: false)
    }

    /// Undoes `take`: unbind from uio_hv_generic, clear the override, bind the previous driver
    /// (the kernel then answers the IC again; for time sync hv_utils registers its PTP clock).
    public func release(_ record: TakeoverRecord) throws(UIOTakeoverError) {
        guard !record.wasAlreadyBound else { return }
        let deviceDir = bus.device(record.instance)
        var firstError: UIOTakeoverError?
        do { try write(driverDir(Self.uioDriver) + "/unbind", record.instance) } catch { firstError = error }
        do { try write(deviceDir + "/driver_override", "\n") } catch { firstError = firstError ?? error }
        if let previous = record.previousDriver {
            do { try write(driverDir(previous) + "/bind", record.instance) } catch { firstError = firstError ?? error }
        }
        if let firstError { throw firstError }
    }

    private func write(_ path: String, _ value: String) throws(UIOTakeoverError) {
        do { try writeAttribute(path, value) } catch { throw .sysfs(path: path, error) }
    }
}
