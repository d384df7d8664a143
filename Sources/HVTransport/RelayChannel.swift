import Glibc
import HVSystem

/// Why a channel operation failed.
public enum TransportError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No device (or socket) at the path yet: wait for it to appear.
    case deviceMissing(path: String)
    /// The device exists but is not something we can use.
    case unsupportedDevice(path: String, kind: String)
    /// The peer (kernel side) closed the channel or reset it.
    case closed(String)
    /// A message larger than our buffer arrived (and was lost).
    case oversized(length: Int, capacity: Int)
    case system(SystemError)

    public var description: String {
        switch self {
        case .deviceMissing(let p): return "\(p) does not exist (no Hyper-V device yet, or the driver is not loaded)"
        case .unsupportedDevice(let p, let k): return "\(p) is a \(k), expected a character device or a seqpacket socket"
        case .closed(let why): return "channel closed: \(why)"
        case .oversized(let l, let c): return "message of \(l) bytes exceeds the \(c)-byte buffer"
        case .system(let e): return e.description
        }
    }
}

/// One message channel to the kernel side of a relay device: each `send` is one message
/// (one `write`), each `receive` returns exactly one message (one `read`).
///
/// The channel never blocks on its own: callers poll `pollDescriptor` (the kernel's `read`
/// ignores O_NONBLOCK, so "poll before read" is the only safe discipline).
public protocol MessageChannel: AnyObject, Sendable {
    /// The descriptor to poll for readability.
    var pollDescriptor: Int32 { get }
    /// Human description: path and transport kind.
    var description: String { get }
    func send(_ message: [UInt8]) throws(TransportError)
    /// Receives one message; call only after poll reported the descriptor readable.
    func receive() throws(TransportError) -> [UInt8]
    func close()
}

/// `/dev/vmbus/hv_*` as a real character device.
public final class CharacterDeviceChannel: MessageChannel, @unchecked Sendable {
    private let descriptor: Descriptor
    private let capacity: Int
    private let path: String

    init(path: String, capacity: Int) throws(TransportError) {
        do {
            descriptor = try Descriptor.open(path, flags: O_RDWR)
        } catch {
            throw error.errno == ENOENT ? .deviceMissing(path: path) : .system(error)
        }
        self.capacity = capacity
        self.path = path
    }

    public var pollDescriptor: Int32 { descriptor.fd }
    public var description: String { "\(path) (character device)" }

    public func send(_ message: [UInt8]) throws(TransportError) {
        do { try descriptor.writeMessage(message) } catch { throw Self.map(error) }
    }

    public func receive() throws(TransportError) -> [UInt8] {
        do {
            let m = try descriptor.read(max: capacity)
            // hv_utils_transport never returns 0 bytes for a message; treat it as a reset.
            if m.isEmpty { throw TransportError.closed("read returned no data") }
            return m
        } catch let e as SystemError {
            throw Self.map(e)
        } catch let e as TransportError {
            throw e
        } catch {
            throw .closed("\(error)")
        }
    }

    public func close() { descriptor.close() }

    /// EINVAL from the kernel means "not now / not that" (a reply after the kernel's timeout, a
    /// registration refused): the channel must be reopened and re-registered. EBADF: the
    /// driver is going away.
    static func map(_ e: SystemError) -> TransportError {
        switch e.errno {
        case EINVAL, EBADF, EIO, ENODEV: return .closed(e.description)
        default: return .system(e)
        }
    }
}

/// The seqpacket socket that stands in for a relay device (DESIGN.md, fake device layer 1).
public final class SeqPacketChannel: MessageChannel, @unchecked Sendable {
    private let descriptor: Descriptor
    private let capacity: Int
    private let path: String

    init(path: String, capacity: Int) throws(TransportError) {
        do {
            descriptor = try SeqPacket.connect(path)
        } catch {
            // A socket file with no listener behind it: the emulator is not (yet) running.
            if error.errno == ENOENT || error.errno == ECONNREFUSED { throw .deviceMissing(path: path) }
            throw .system(error)
        }
        self.capacity = capacity
        self.path = path
    }

    /// Wraps an already connected socket (tests).
    public init(connected: Descriptor, capacity: Int, label: String = "socketpair") {
        descriptor = connected
        self.capacity = capacity
        path = label
    }

    public var pollDescriptor: Int32 { descriptor.fd }
    public var description: String { "\(path) (seqpacket socket)" }

    public func send(_ message: [UInt8]) throws(TransportError) {
        do { try descriptor.send(message) } catch {
            throw error.errno == EPIPE || error.errno == ECONNRESET ? .closed(error.description) : .system(error)
        }
    }

    public func receive() throws(TransportError) -> [UInt8] {
        let r: ReceivedMessage
        do { r = try descriptor.receive(capacity: capacity) } catch {
            throw error.errno == ECONNRESET ? .closed(error.description) : .system(error)
        }
        switch r {
        case .message(let m): return m
        case .truncated(let length): throw .oversized(length: length, capacity: capacity)
        case .closed: throw .closed("the kernel side hung up")
        }
    }

    public func close() { descriptor.close() }
}

/// Opens the relay device at `path`, choosing the transport by file type.
public enum RelayTransport {
    /// - Parameter capacity: the largest message the kernel side may send.
    public static func open(path: String, capacity: Int) throws(TransportError) -> any MessageChannel {
        switch fileKind(path) {
        case .missing: throw .deviceMissing(path: path)
        case .characterDevice: return try CharacterDeviceChannel(path: path, capacity: capacity)
        case .socket: return try SeqPacketChannel(path: path, capacity: capacity)
        case .directory: throw .unsupportedDevice(path: path, kind: "directory")
        case .regular: throw .unsupportedDevice(path: path, kind: "regular file")
        case .other: throw .unsupportedDevice(path: path, kind: "special file")
        }
    }
}
