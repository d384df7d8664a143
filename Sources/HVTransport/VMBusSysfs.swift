import HVSystem

/// The VMBus bus in sysfs under a device root (`DEVROOT/sys/bus/vmbus/…`, PROTOCOL.md §4.4),
/// and what the three users of it read there: finding a channel's UIO device (`UIODevice`),
/// binding file copy's device (`UIOBinding`) and taking over a util IC (`UIOTakeover`).
struct VMBusSysfs: Sendable {
    /// `DEVROOT/sys/bus/vmbus/devices`: one directory (a link, on a real system) per channel.
    let devices: String
    private let drivers: String

    init(deviceRoot: String) {
        let bus = UIODevice.join(deviceRoot, "sys/bus/vmbus")
        devices = bus + "/devices"
        drivers = bus + "/drivers"
    }

    func device(_ instance: String) -> String { devices + "/" + instance }

    func driver(_ name: String) -> String { drivers + "/" + name }

    /// Instances whose `class_id` is `classID` (any case, braces or not), in name order.
    /// Throws when there is no `devices` directory at all (no VMBus).
    func instances(ofClass classID: String) throws(SystemError) -> [String] {
        let wanted = UIODevice.normalizedGUID(classID)
        return try Sysfs.entries(of: devices).filter { name in
            (try? Sysfs.readAttribute(device(name) + "/class_id")).map(UIODevice.normalizedGUID) == wanted
        }
    }

    /// The driver the device is bound to (its `driver` link's last component), nil when unbound.
    func currentDriver(_ instance: String) -> String? {
        Sysfs.linkTarget(device(instance) + "/driver").map { target in
            String(target.split(separator: "/").last ?? Substring(target))
        }
    }

    /// The device's UIO node name (`uioN` in its `uio/` directory), nil when it is not bound to
    /// uio_hv_generic (yet).
    func uioName(_ instance: String) -> String? {
        (try? Sysfs.entries(of: device(instance) + "/uio"))?.first(where: UIODevice.isUIOName)
    }
}
