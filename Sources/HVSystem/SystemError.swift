import CHVLinux
import Glibc

/// A failed system call: what we tried (with the path or object), and the errno.
///
/// Functions in HVSystem return or throw these and never log; callers decide what to say.
public struct SystemError: Error, Equatable, Sendable, CustomStringConvertible {
    public let operation: String
    public let errno: Int32

    public init(_ operation: String, errno: Int32) {
        self.operation = operation
        self.errno = errno
    }

    /// Captures the calling thread's errno right after a failed call.
    public static func last(_ operation: String) -> SystemError {
        SystemError(operation, errno: chv_errno())
    }

    public var message: String { String(cString: strerror(errno)) }
    public var description: String { "\(operation): \(message) (errno \(errno))" }
}

/// Runs a libc call returning -1 on failure, retrying on EINTR (`syscall(blocking:)` in
/// swift-nio's words). Throws `SystemError` for every other failure.
@inline(__always)
public func retryOnInterrupt<T: BinaryInteger>(_ operation: @autoclosure () -> String, _ call: () -> T) throws(SystemError) -> T {
    while true {
        let r = call()
        if r >= 0 { return r }
        let e = chv_errno()
        if e == EINTR { continue }
        throw SystemError(operation(), errno: e)
    }
}
