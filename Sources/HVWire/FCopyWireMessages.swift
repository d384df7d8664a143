/// File-copy messages as the host sends them over the VMBus ring, after the 28-byte IC header
/// (ICMSGTYPE_FCOPY 7, message version 1.1; PROTOCOL.md §4.1). This is the UIO (kernel ≥ 6.10)
/// form with UTF-16LE names; the legacy chardev form is `FCopyRequest`.
///
/// Layouts (packed, little-endian):
/// - `hv_fcopy_hdr` (36 B): operation u32 @0, service_id0[16] @4, service_id1[16] @20.
/// - `hv_start_fcopy` (1088 B): hdr @0, file_name u16[260] @36, path_name u16[260] @556,
///   copy_flags u32 @1076, file_size u64 @1080.
/// - `hv_do_fcopy` (6196 B): hdr @0, pad u32 @36, offset u64 @40, size u32 @48, data[6144] @52.
/// - COMPLETE / CANCEL: the header alone.
public enum FCopyWireMessage: Equatable, Sendable {
    /// START_FILE_COPY: create `pathName/fileName`.
    case startCopy(Start)
    /// WRITE_TO_FILE: `data` (at most 6144 bytes) at `offset`. The slice shares the decoded
    /// payload's storage (no copy).
    case writeToFile(offset: UInt64, data: ArraySlice<UInt8>)
    /// COMPLETE_FCOPY: the file is done.
    case complete
    /// CANCEL_FCOPY: abandon the file.
    case cancel

    /// `hv_fcopy_hdr.operation`.
    public struct Operation: RawRepresentable, Hashable, Sendable {
        public var rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let startCopy = Operation(rawValue: 0)
        public static let writeToFile = Operation(rawValue: 1)
        public static let complete = Operation(rawValue: 2)
        public static let cancel = Operation(rawValue: 3)
    }

    /// `copy_flags` of START: the same flags as on the character device.
    public typealias CopyFlags = FCopyFlags
    /// `hv_start_fcopy` without its header: the same fields as on the character device (only the
    /// name encoding differs on the wire: UTF-16 here, UTF-8 there).
    public typealias Start = FCopyStart

    public static let messageVersion = ICVersion(1, 1)
    public static let headerSize = 36
    public static let startSize = 1088
    public static let writeSize = 6196
    /// W_MAX_PATH: UTF-16 units per name field, NUL included.
    public static let maxPathUnits = 260
    /// DATA_FRAGMENT: most data bytes one WRITE carries.
    public static let maxDataFragment = 6144
    /// Largest body accepted: a WRITE plus the ring's padding to 8 bytes.
    public static let maximumBodySize = writeSize + 7

    public var operation: Operation {
        switch self {
        case .startCopy: return .startCopy
        case .writeToFile: return .writeToFile
        case .complete: return .complete
        case .cancel: return .cancel
        }
    }

    /// Decodes the message in an IC packet payload (the 28-byte IC header first; its type must be
    /// ICMSGTYPE_FCOPY). Strict: unknown operations, short or oversized bodies, unterminated or
    /// invalid UTF-16 names and sizes above 6144 throw.
    public static func decode(fromPayload payload: [UInt8]) throws(WireError) -> FCopyWireMessage {
        let header = try ICMessageHeader.decode(from: payload)
        guard header.messageType == .fcopy else {
            throw .unknownCode(structure: "hv_fcopy_hdr", field: "icmsgtype", value: UInt32(header.messageType.rawValue))
        }
        return try decode(payload, at: ICMessageHeader.size)
    }

    /// Decodes a body on its own (the bytes after the IC header).
    public static func decode(body: [UInt8]) throws(WireError) -> FCopyWireMessage {
        try decode(body, at: 0)
    }

    private static func decode(_ bytes: [UInt8], at base: Int) throws(WireError) -> FCopyWireMessage {
        let length = bytes.count - base
        let r = ByteReader(bytes, structure: "hv_fcopy_hdr")
        if length < headerSize { throw .truncated(structure: r.structure, needed: headerSize, got: max(length, 0)) }
        if length > maximumBodySize { throw .oversized(structure: r.structure, limit: maximumBodySize, got: length) }
        let operation = Operation(rawValue: try r.u32(at: base))
        switch operation {
        case .startCopy:
            let s = ByteReader(bytes, structure: "hv_start_fcopy")
            if length < startSize { throw .truncated(structure: s.structure, needed: startSize, got: length) }
            return .startCopy(
                Start(
                    fileName: try s.utf16String(at: base + 36, units: maxPathUnits, field: "file_name"),
                    pathName: try s.utf16String(at: base + 556, units: maxPathUnits, field: "path_name"),
                    flags: CopyFlags(rawValue: try s.u32(at: base + 1076)), fileSize: try s.u64(at: base + 1080)))
        case .writeToFile:
            let w = ByteReader(bytes, structure: "hv_do_fcopy")
            if length < 52 { throw .truncated(structure: w.structure, needed: 52, got: length) }
            let size = Int(try w.u32(at: base + 48))
            if size > maxDataFragment {
                throw .invalidField(structure: w.structure, field: "size", reason: "\(size) > \(maxDataFragment)")
            }
            if length < 52 + size { throw .truncated(structure: w.structure, needed: 52 + size, got: length) }
            return .writeToFile(offset: try w.u64(at: base + 40), data: try w.slice(at: base + 52, count: size))
        case .complete:
            return .complete
        case .cancel:
            return .cancel
        default:
            throw .unknownCode(structure: r.structure, field: "operation", value: operation.rawValue)
        }
    }

    /// The body bytes as the host sends them (the emulator's side): START 1088 bytes, WRITE the
    /// full 6196 bytes, COMPLETE/CANCEL the 36-byte header. Names longer than 259 UTF-16 units
    /// and data longer than 6144 bytes throw.
    public func encode() throws(WireError) -> [UInt8] {
        switch self {
        case .startCopy(let start):
            for (name, value) in [("file_name", start.fileName), ("path_name", start.pathName)]
            where value.utf16.count >= Self.maxPathUnits {
                throw .invalidField(
                    structure: "hv_start_fcopy", field: name,
                    reason: "\(value.utf16.count) UTF-16 units do not fit \(Self.maxPathUnits) with the NUL")
            }
            var w = ByteWriter(size: Self.startSize)
            w.u32(operation.rawValue, at: 0)
            w.utf16String(start.fileName, at: 36, units: Self.maxPathUnits)
            w.utf16String(start.pathName, at: 556, units: Self.maxPathUnits)
            w.u32(start.flags.rawValue, at: 1076)
            w.u64(start.fileSize, at: 1080)
            return w.bytes
        case .writeToFile(let offset, let data):
            if data.count > Self.maxDataFragment {
                throw .invalidField(structure: "hv_do_fcopy", field: "size", reason: "\(data.count) > \(Self.maxDataFragment)")
            }
            var out = [UInt8](repeating: 0, count: 52)
            var w = ByteWriter(bytes: out)
            w.u32(operation.rawValue, at: 0)
            w.u64(offset, at: 40)
            w.u32(UInt32(data.count), at: 48)
            out = w.bytes
            out.reserveCapacity(Self.writeSize)
            out.append(contentsOf: data)
            out.append(contentsOf: repeatElement(0, count: Self.writeSize - out.count))
            return out
        case .complete, .cancel:
            var w = ByteWriter(size: Self.headerSize)
            w.u32(operation.rawValue, at: 0)
            return w.bytes
        }
    }
}
