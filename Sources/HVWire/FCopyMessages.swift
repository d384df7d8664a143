/// The file copy messages of `/dev/vmbus/hv_fcopy` (kernels ≤ 6.9; PROTOCOL.md §4.1–4.2).
///
/// On the char device the kernel converts the host's UTF-16 names to UTF-8 and stores the bytes
/// inside the `__u16 file_name[W_MAX_PATH]` arrays (520 bytes each).
public enum FCopyLayout {
    public static let headerSize = 36
    public static let operation = 0
    public static let serviceID0 = 4
    public static let serviceID1 = 20
    // hv_start_fcopy (1088 bytes)
    public static let startSize = 1088
    public static let fileName = 36
    public static let pathName = 556
    public static let nameBytes = 520  // W_MAX_PATH u16 units
    public static let copyFlags = 1076
    public static let fileSize = 1080
    // hv_do_fcopy (6196 bytes)
    public static let writeSize = 6196
    public static let writePad = 36
    public static let writeOffset = 40
    public static let writeLength = 48
    public static let writeData = 52
    public static let dataFragment = 6144
    /// Replies are a bare s32 status.
    public static let replySize = 4
    /// W_MAX_PATH: code units per name.
    public static let maxPathUnits = 260
}

public enum FCopyOperation: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case startFileCopy = 0, writeToFile = 1, complete = 2, cancel = 3

    public var description: String {
        switch self {
        case .startFileCopy: return "START_FILE_COPY"
        case .writeToFile: return "WRITE_TO_FILE"
        case .complete: return "COMPLETE_FCOPY"
        case .cancel: return "CANCEL_FCOPY"
        }
    }
}

/// `copy_flags` of START_FILE_COPY.
public struct FCopyFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// OVER_WRITE: replace an existing file.
    public static let overwrite = FCopyFlags(rawValue: 0x1)
    /// CREATE_PATH: create missing directories.
    public static let createPath = FCopyFlags(rawValue: 0x2)
}

/// START_FILE_COPY: where to put the file and how large it will be.
public struct FCopyStart: Sendable, Equatable {
    public var fileName: String
    public var pathName: String
    public var flags: FCopyFlags
    public var fileSize: UInt64

    public init(fileName: String, pathName: String, flags: FCopyFlags, fileSize: UInt64) {
        self.fileName = fileName
        self.pathName = pathName
        self.flags = flags
        self.fileSize = fileSize
    }
}

/// WRITE_TO_FILE: one fragment (≤ 6144 bytes) at a file offset.
public struct FCopyWrite: Sendable, Equatable {
    public var offset: UInt64
    /// A slice of the received message: no copy on the hot path.
    public var data: ArraySlice<UInt8>

    public init(offset: UInt64, data: ArraySlice<UInt8>) {
        self.offset = offset
        self.data = data
    }
}

/// One request from the kernel on `/dev/vmbus/hv_fcopy`.
public enum FCopyRequest: Sendable, Equatable {
    case start(FCopyStart)
    case write(FCopyWrite)
    case complete
    case cancel

    public var operation: FCopyOperation {
        switch self {
        case .start: return .startFileCopy
        case .write: return .writeToFile
        case .complete: return .complete
        case .cancel: return .cancel
        }
    }

    /// Decodes a kernel → daemon message. START must be exactly 1088 bytes and WRITE exactly
    /// 6196 (the kernel always sends those sizes); COMPLETE and CANCEL are raw host bytes of any
    /// length ≥ 4. Names must be NUL-terminated, valid UTF-8; a WRITE's size must be ≤ 6144.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> FCopyRequest {
        let r = ByteReader(bytes, structure: "hv_fcopy_hdr")
        try r.require(4)
        let raw = try r.u32(at: FCopyLayout.operation)
        guard let op = FCopyOperation(rawValue: raw) else {
            throw .unknownCode(structure: r.structure, field: "operation", value: raw)
        }
        switch op {
        case .startFileCopy:
            let s = ByteReader(bytes, structure: "hv_start_fcopy")
            try s.require(FCopyLayout.startSize)
            try s.requireAtMost(FCopyLayout.startSize)
            return .start(FCopyStart(
                fileName: try s.utf8String(at: FCopyLayout.fileName, width: FCopyLayout.nameBytes, field: "file_name"),
                pathName: try s.utf8String(at: FCopyLayout.pathName, width: FCopyLayout.nameBytes, field: "path_name"),
                flags: FCopyFlags(rawValue: try s.u32(at: FCopyLayout.copyFlags)),
                fileSize: try s.u64(at: FCopyLayout.fileSize)))
        case .writeToFile:
            let s = ByteReader(bytes, structure: "hv_do_fcopy")
            try s.require(FCopyLayout.writeSize)
            try s.requireAtMost(FCopyLayout.writeSize)
            let size = try s.u32(at: FCopyLayout.writeLength)
            guard size <= UInt32(FCopyLayout.dataFragment) else {
                throw .invalidField(structure: s.structure, field: "size", reason: "\(size) exceeds DATA_FRAGMENT 6144")
            }
            return .write(FCopyWrite(offset: try s.u64(at: FCopyLayout.writeOffset),
                                     data: try s.slice(at: FCopyLayout.writeData, count: Int(size))))
        case .complete:
            return .complete
        case .cancel:
            return .cancel
        }
    }

    /// Encodes the message the kernel would send (emulator side). Names are cut where the
    /// kernel cuts them: it converts each into at most W_MAX_PATH − 1 = 259 UTF-8 bytes (not the
    /// field's 519), never inside a character, and the zeroed field supplies the NUL.
    public func encode() -> [UInt8] {
        switch self {
        case .start(let s):
            var w = ByteWriter(size: FCopyLayout.startSize)
            w.u32(FCopyOperation.startFileCopy.rawValue, at: FCopyLayout.operation)
            w.cString(Array(s.fileName.utf8), at: FCopyLayout.fileName, width: FCopyLayout.maxPathUnits)
            w.cString(Array(s.pathName.utf8), at: FCopyLayout.pathName, width: FCopyLayout.maxPathUnits)
            w.u32(s.flags.rawValue, at: FCopyLayout.copyFlags)
            w.u64(s.fileSize, at: FCopyLayout.fileSize)
            return w.bytes
        case .write(let f):
            var w = ByteWriter(size: FCopyLayout.writeSize)
            w.u32(FCopyOperation.writeToFile.rawValue, at: FCopyLayout.operation)
            w.u64(f.offset, at: FCopyLayout.writeOffset)
            let n = min(f.data.count, FCopyLayout.dataFragment)
            w.u32(UInt32(n), at: FCopyLayout.writeLength)
            w.copy(f.data.prefix(n), at: FCopyLayout.writeData)
            return w.bytes
        case .complete, .cancel:
            // The kernel relays the host's raw message from the fcopy header on; the header is
            // what matters (36 bytes).
            var w = ByteWriter(size: FCopyLayout.headerSize)
            w.u32(operation.rawValue, at: FCopyLayout.operation)
            return w.bytes
        }
    }
}

/// The 4-byte status reply (an s32 HRESULT).
public enum FCopyReply {
    public static func encode(_ status: HResult) -> [UInt8] {
        // Every fragment of a copy is answered S_OK: share one array instead of allocating one
        // per reply.
        if status == .ok { return okBytes }
        return encodeUncached(status)
    }

    private static let okBytes = encodeUncached(.ok)

    private static func encodeUncached(_ status: HResult) -> [UInt8] {
        var w = ByteWriter(size: FCopyLayout.replySize)
        w.u32(status.rawValue, at: 0)
        return w.bytes
    }

    /// Emulator side: the kernel accepts only 4-byte writes.
    public static func decode(_ bytes: [UInt8]) throws(WireError) -> HResult {
        let r = ByteReader(bytes, structure: "fcopy reply")
        try r.require(FCopyLayout.replySize)
        try r.requireAtMost(FCopyLayout.replySize)
        return HResult(try r.u32(at: 0))
    }
}

/// The fcopy registration: the daemon writes a 4-byte int 1 (FCOPY_CURRENT_VERSION); the kernel
/// answers with 4 bytes, u32 1.
public enum FCopyRegistration {
    public static let current: UInt32 = 1
    public static let legacy: UInt32 = 0

    public static func message(version: UInt32 = current) -> [UInt8] {
        var w = ByteWriter(size: 4)
        w.u32(version, at: 0)
        return w.bytes
    }

    public static func decodeMessage(_ bytes: [UInt8]) throws(WireError) -> UInt32 {
        let r = ByteReader(bytes, structure: "fcopy registration")
        try r.require(4)
        try r.requireAtMost(4)
        let v = try r.u32(at: 0)
        guard v == current || v == legacy else { throw .unknownCode(structure: r.structure, field: "version", value: v) }
        return v
    }

    public static func reply(version: UInt32 = current) -> [UInt8] { message(version: version) }

    public static func decodeReply(_ bytes: [UInt8], expecting version: UInt32 = current) throws(WireError) -> UInt32 {
        let r = ByteReader(bytes, structure: "fcopy registration reply")
        try r.require(4)
        try r.requireAtMost(4)
        let v = try r.u32(at: 0)
        guard v == version else {
            throw .invalidField(structure: r.structure, field: "version", reason: "expected \(version), got \(v)")
        }
        return v
    }
}
