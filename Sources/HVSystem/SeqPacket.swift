import CHVLinux
import Glibc

/// `AF_UNIX` / `SOCK_SEQPACKET` sockets: the stand-in for `/dev/vmbus/*` and `/dev/uioN`
/// in the fake device layer (DESIGN.md). One `send` is one message; one `receive` returns
/// exactly one message, as a `read` of the character device would.
public enum SeqPacket {
    private static func makeAddress(_ path: String) throws(SystemError) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        if bytes.count >= capacity { throw SystemError("socket path too long: \(path)", errno: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        return addr
    }

    private static func newSocket() throws(SystemError) -> Descriptor {
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw SystemError.last("socket(AF_UNIX, SOCK_SEQPACKET)") }
        return Descriptor(adopting: fd)
    }

    /// Connects to the socket at `path`.
    public static func connect(_ path: String) throws(SystemError) -> Descriptor {
        let sock = try newSocket()
        var addr = try makeAddress(path)
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(sock.fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if r < 0 { throw SystemError.last("connect \(path)") }
        return sock
    }

    /// Binds and listens at `path` (an existing socket file there is replaced).
    public static func listen(_ path: String, backlog: Int32 = 8) throws(SystemError) -> Descriptor {
        let sock = try newSocket()
        var addr = try makeAddress(path)
        unlink(path)
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(sock.fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if r < 0 { throw SystemError.last("bind \(path)") }
        if Glibc.listen(sock.fd, backlog) < 0 { throw SystemError.last("listen \(path)") }
        return sock
    }

    /// Accepts one connection (blocking; poll first).
    public static func accept(_ listener: Descriptor) throws(SystemError) -> Descriptor {
        let fd = try retryOnInterrupt("accept") { chv_accept_cloexec(listener.fd) }
        return Descriptor(adopting: fd)
    }

    /// A connected pair (tests).
    public static func pair() throws(SystemError) -> (Descriptor, Descriptor) {
        var sv: [Int32] = [-1, -1]
        let r = socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &sv)
        if r < 0 { throw SystemError.last("socketpair") }
        return (Descriptor(adopting: sv[0]), Descriptor(adopting: sv[1]))
    }
}

/// One received message.
public enum ReceivedMessage: Sendable, Equatable {
    /// A whole message.
    case message([UInt8])
    /// A message longer than the buffer: `length` is its real size; its bytes are lost.
    case truncated(length: Int)
    /// The peer closed the connection.
    case closed
}

extension Descriptor {
    /// Sends one message; fails rather than sending part of it.
    public func send(_ bytes: [UInt8]) throws(SystemError) {
        let n = try retryOnInterrupt("send") {
            bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, bytes.count, Int32(MSG_NOSIGNAL)) }
        }
        if n != bytes.count { throw SystemError("send (short: \(n) of \(bytes.count))", errno: EIO) }
    }

    /// Receives one message of at most `capacity` bytes (larger ones are reported, not cut silently).
    public func receive(capacity: Int) throws(SystemError) -> ReceivedMessage {
        // Uninitialized buffer: zero-filling the capacity for every message cost more than the
        // recv itself (callgrind, bench/RESULTS.md); only the received bytes are kept.
        var n = 0
        var failure: SystemError?
        let buf = [UInt8](unsafeUninitializedCapacity: max(capacity, 1)) { b, count in
            do throws(SystemError) {
                n = try retryOnInterrupt("recv") { Glibc.recv(fd, b.baseAddress, capacity, Int32(MSG_TRUNC)) }
            } catch {
                failure = error
            }
            count = min(max(n, 0), capacity)
        }
        if let failure { throw failure }
        if n == 0 { return .closed }
        if n > capacity { return .truncated(length: n) }
        return .message(buf)
    }

    /// Sends one message carrying a file descriptor (SCM_RIGHTS).
    public func send(_ bytes: [UInt8], passing passed: Descriptor) throws(SystemError) {
        let n = bytes.withUnsafeBytes { chv_send_with_fd(fd, $0.baseAddress, bytes.count, passed.fd) }
        if n < 0 { throw SystemError.last("sendmsg(SCM_RIGHTS)") }
    }

    /// Receives one message and the descriptor that came with it, if any.
    public func receiveWithDescriptor(capacity: Int) throws(SystemError) -> (ReceivedMessage, Descriptor?) {
        var buf = [UInt8](repeating: 0, count: capacity)
        var passed: Int32 = -1
        var truncated: Int32 = 0
        let n = buf.withUnsafeMutableBytes { chv_recv_with_fd(fd, $0.baseAddress, capacity, &passed, &truncated) }
        if n < 0 { throw SystemError.last("recvmsg") }
        let d = passed >= 0 ? Descriptor(adopting: passed) : nil
        if n == 0 { return (.closed, d) }
        if truncated != 0 { return (.truncated(length: Int(n)), d) }
        buf.removeSubrange(Int(n)...)
        return (.message(buf), d)
    }
}
