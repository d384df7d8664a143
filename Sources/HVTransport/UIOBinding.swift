import HVSystem

/// Why a VMBus device could not be bound to uio_hv_generic.
public enum UIOBindingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `sys/bus/vmbus/drivers/uio_hv_generic` does not exist: the module is not loaded.
    case driverNotLoaded
    /// A sysfs write failed (which file, the error).
    case write(path: String, SystemError)
    /// The bind was accepted but no `uio/uioN` appeared in time.
    case uioDidNotAppear(instance: String)

    public var description: String {
        switch self {
        case .driverNotLoaded:
            return "uio_hv_generic is not loaded (no sys/bus/vmbus/drivers/uio_hv_generic); run: modprobe uio_hv_generic"
        case .write(let p, let e): return "cannot write \(p): \(e)"
        case .uioDidNotAppear(let i): return "VMBus device \(i) bound to uio_hv_generic but no uio/ directory appeared"
        }
    }
}

/// Binds one VMBus device to uio_hv_generic the per-device way (PROTOCOL.md §4.4): set its
/// `driver_override`, unbind it from any other driver, bind it. Per-device rather than `new_id`
/// because `new_id` claims every device of the class, forever, for anyone.
///
/// Only for a device that has no `uio/` yet (DESIGN.md, fake device layer point 2); all paths
/// are under the device root, so tests use a fake sysfs tree.
public struct UIOBinding: Sendable, Equatable {
    public static let driverName = "uio_hv_generic"

    public let deviceRoot: String
    public let instance: String
    /// True when we wrote `driver_override` (release clears it again).
    public let setOverride: Bool
    /// The driver the device was taken from, if any (for logs).
    public let previousDriver: String?

    /// Binds `instance` and waits (up to `timeoutMilliseconds`) for `uio/uioN` to appear.
    public static func bind(instance: String, deviceRoot: String, timeoutMilliseconds: Int = 2_000)
        throws(UIOBindingError) -> UIOBinding
    {
        let bus = VMBusSysfs(deviceRoot: deviceRoot)
        let driverDir = bus.driver(driverName)
        guard Sysfs.exists(driverDir) else { throw .driverNotLoaded }
        let device = bus.device(instance)

        let overridePath = device + "/driver_override"
        do { try Sysfs.writeAttribute(overridePath, driverName + "\n") } catch {
            throw .write(path: overridePath, error)
        }
        let current = bus.currentDriver(instance)
        if let current, current != driverName {
            let unbind = bus.driver(current) + "/unbind"
            do { try Sysfs.writeAttribute(unbind, instance) } catch {
                clearOverride(overridePath)
                throw .write(path: unbind, error)
            }
        }
        if current != driverName {
            let bindPath = driverDir + "/bind"
            do { try Sysfs.writeAttribute(bindPath, instance) } catch {
                // EBUSY/EEXIST: something (a new_id, a udev rule) bound it meanwhile; the
                // uio/ check below decides.
                if !error.meansAlreadyBound {
                    clearOverride(overridePath)
                    throw .write(path: bindPath, error)
                }
            }
        }
        // The kernel creates uio/uioN while probing; on a real system that is immediate, but a
        // udev-created /dev node may trail it (the opener retries).
        let deadline = monotonicNanoseconds() &+ UInt64(max(timeoutMilliseconds, 0)) &* 1_000_000
        while bus.uioName(instance) == nil {
            if monotonicNanoseconds() >= deadline {
                clearOverride(overridePath)
                throw .uioDidNotAppear(instance: instance)
            }
            sleepMilliseconds(10)
        }
        return UIOBinding(deviceRoot: deviceRoot, instance: instance, setOverride: true, previousDriver: current)
    }

    /// Undoes what `bind` set that would outlive us: clears `driver_override` (the device stays
    /// bound until it is re-offered or unbound by the administrator).
    public func release() {
        if setOverride { UIOBinding.clearOverride(VMBusSysfs(deviceRoot: deviceRoot).device(instance) + "/driver_override") }
    }

    /// An empty write (a lone newline) clears an override.
    static func clearOverride(_ path: String) {
        try? Sysfs.writeAttribute(path, "\n")
    }
}
