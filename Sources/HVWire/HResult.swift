/// An HRESULT as Hyper-V carries it in `icmsg_hdr.status` and in the daemons' `error` fields.
///
/// Values from `include/uapi/linux/hyperv.h` (PROTOCOL.md §1.6).
public struct HResult: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    /// S_OK.
    public static let ok = HResult(0x0000_0000)
    /// E_FAIL: generic failure (kernel on timeout / no daemon, and most daemon failures).
    public static let fail = HResult(0x8000_4005)
    /// HRESULT(ERROR_NO_MORE_ITEMS): KVP enumerate end marker, key not found, SET failure.
    public static let noMoreItems = HResult(0x8007_0103)
    /// ERROR_NOT_SUPPORTED.
    public static let notSupported = HResult(0x8007_0032)
    /// ERROR_MACHINE_LOCKED.
    public static let machineLocked = HResult(0x8007_04F7)
    /// ERROR_DEVICE_NOT_CONNECTED.
    public static let deviceNotConnected = HResult(0x8007_048F)
    /// E_INVALIDARG.
    public static let invalidArgument = HResult(0x8007_0057)
    /// WBEM_E_NOT_FOUND: KVP SET_IP_INFO adapter not found.
    public static let guidNotFound = HResult(0x8004_1002)
    /// ERROR_FILE_EXISTS: fcopy START when the file exists and OVER_WRITE is clear.
    public static let alreadyExists = HResult(0x8007_0050)
    /// ERROR_DISK_FULL: fcopy WRITE hit ENOSPC.
    public static let diskFull = HResult(0x8007_0070)

    public var isSuccess: Bool { rawValue == 0 }

    /// The value as the kernel's `int error` field holds it (same bits, signed).
    public var signed: Int32 { Int32(bitPattern: rawValue) }

    public var name: String? {
        switch self {
        case .ok: return "S_OK"
        case .fail: return "E_FAIL"
        case .noMoreItems: return "HV_S_CONT"
        case .notSupported: return "ERROR_NOT_SUPPORTED"
        case .machineLocked: return "ERROR_MACHINE_LOCKED"
        case .deviceNotConnected: return "ERROR_DEVICE_NOT_CONNECTED"
        case .invalidArgument: return "E_INVALIDARG"
        case .guidNotFound: return "WBEM_E_NOT_FOUND"
        case .alreadyExists: return "ERROR_FILE_EXISTS"
        case .diskFull: return "ERROR_DISK_FULL"
        default: return nil
        }
    }

    /// `0x80004005 (E_FAIL)`.
    public var description: String {
        let hex = "0x" + String(rawValue, radix: 16, uppercase: true).leftPadded(to: 8, with: "0")
        if let name { return "\(hex) (\(name))" }
        return hex
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character) -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
