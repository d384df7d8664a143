import HVRing
import HVSystem

/// Why a UIO channel could not be found, opened or served.
public enum UIOChannelError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No `sys/bus/vmbus/devices/*/class_id` names this class.
    case deviceNotFound(classID: String)
    /// The device exists but has no `uio/uioN`: it is not bound to uio_hv_generic (binding is
    /// the administrator's job, or a later feature).
    case notBound(instance: String)
    /// A sysfs attribute had an unexpected format.
    case badAttribute(path: String, value: String)
    /// The fake device's first packet was not the 4-byte map size with a descriptor.
    case handshake(String)
    /// A system call failed.
    case system(SystemError)
    /// The ring memory is corrupt or misused.
    case ring(RingError)
    /// The device went away: the emulator closed the socket, or the real device was rescinded
    /// (EIO / POLLERR).
    case disconnected
    /// The host did not drain the guest→host ring in time to take a response.
    case sendTimeout

    public var description: String {
        switch self {
        case .deviceNotFound(let c): return "no VMBus device with class {\(c)}"
        case .notBound(let i): return "VMBus device \(i) is not bound to uio_hv_generic (no uio/ directory)"
        case .badAttribute(let p, let v): return "unexpected content \"\(v)\" in \(p)"
        case .handshake(let s): return "UIO handshake: \(s)"
        case .system(let e): return e.description
        case .ring(let r): return r.description
        case .disconnected: return "UIO device disconnected (rescinded or emulator gone)"
        case .sendTimeout: return "host did not drain the guest-to-host ring in time"
        }
    }
}

/// A VMBus device bound to uio_hv_generic, as sysfs describes it (DESIGN.md, fake device layer).
public struct UIODevice: Equatable, Sendable {
    /// The device directory name under `sys/bus/vmbus/devices` (the instance GUID).
    public var instance: String
    /// `uioN`.
    public var uioName: String
    /// map0 (`txrx_rings`) size in bytes: both rings.
    public var map0Size: Int

    public init(instance: String, uioName: String, map0Size: Int) {
        self.instance = instance
        self.uioName = uioName
        self.map0Size = map0Size
    }

    /// Largest map0 accepted (uio_hv_generic gives 2 MiB per direction by default).
    public static let maximumMap0Size = 64 << 20

    /// `DEVROOT/dev/uioN`.
    public func devicePath(deviceRoot: String) -> String { UIODevice.join(deviceRoot, "dev/\(uioName)") }

    /// Canonical form of a class GUID: lower case, no braces or whitespace.
    public static func normalizedGUID(_ text: String) -> String {
        String(text.lowercased().filter { !"{} \n\t".contains($0) })
    }

    static func join(_ root: String, _ relative: String) -> String {
        root.hasSuffix("/") ? root + relative : root + "/" + relative
    }

    /// Finds the device of class `classID` under `deviceRoot` (by `class_id`, never by a fixed
    /// instance or uio number). Throws `deviceNotFound` or `notBound`.
    public static func find(classID: String, deviceRoot: String) throws(UIOChannelError) -> UIODevice {
        let wanted = normalizedGUID(classID)
        let bus = VMBusSysfs(deviceRoot: deviceRoot)
        let names: [String]
        do { names = try bus.instances(ofClass: wanted) } catch {
            if error.isNoSuchFile { throw .deviceNotFound(classID: wanted) }  // no vmbus at all
            throw .system(error)
        }
        var unbound: String?
        for name in names {
            guard let uioName = bus.uioName(name) else {
                unbound = unbound ?? name
                continue
            }
            let sizePath = join(deviceRoot, "sys/class/uio/\(uioName)/maps/map0/size")
            let sizeText: String
            do { sizeText = try Sysfs.readAttribute(sizePath) } catch { throw .system(error) }
            guard let size = parseHexSize(sizeText), size > 0, size <= maximumMap0Size else {
                throw .badAttribute(path: sizePath, value: sizeText)
            }
            return UIODevice(instance: name, uioName: uioName, map0Size: size)
        }
        if let unbound { throw .notBound(instance: unbound) }
        throw .deviceNotFound(classID: wanted)
    }

    static func isUIOName(_ name: String) -> Bool {
        name.hasPrefix("uio") && name.count > 3 && name.dropFirst(3).allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// `0x…` as sysfs prints UIO map sizes (the kernel's `%pa`: zero-padded to 16 digits).
    static func parseHexSize(_ text: String) -> Int? {
        guard text.hasPrefix("0x") || text.hasPrefix("0X") else { return nil }
        let digits = text.dropFirst(2)
        guard !digits.isEmpty, digits.count <= 16 else { return nil }
        return Int(digits, radix: 16)
    }
}
