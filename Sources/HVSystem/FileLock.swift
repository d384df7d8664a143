import CHVLinux
import Glibc

/// A whole-file lock that excludes both kinds of lockers found around the KVP pool files.
///
/// The reference daemon (and tools written after it) take POSIX record locks (`fcntl`);
/// cloud-init and azure-init take `flock` locks. The two kinds do not see each other, so we take
/// both: the POSIX lock first, then `flock`, always in that order (no deadlock between our own
/// processes), and release them together in reverse order.
///
/// POSIX locks belong to the process, not the descriptor: closing *any* descriptor of the same
/// file in this process drops them. Code holding a `FileLock` must not open and close the same
/// file elsewhere in the process meanwhile. `flock` locks belong to the open file description,
/// so two descriptors in one process (tests, the CLI next to the daemon) still exclude each other.
public final class FileLock {
    public enum Kind: Sendable {
        /// Readers: `F_RDLCK` + `LOCK_SH` (works on descriptors opened read-only).
        case shared
        /// Writers: `F_WRLCK` + `LOCK_EX` (needs a descriptor opened for writing).
        case exclusive
    }

    /// Kept alive with the lock: if the descriptor were closed (its last reference dropped),
    /// the kernel would release both locks behind our back.
    private let descriptor: Descriptor
    private let fd: Int32
    private var held: Bool

    /// Blocks until both locks are held.
    public init(_ descriptor: Descriptor, _ kind: Kind) throws(SystemError) {
        let fd = descriptor.fd
        let posixType: Int32 = kind == .exclusive ? 2 : 1
        _ = try retryOnInterrupt("fcntl(F_SETLKW) \(descriptor)") { chv_posix_lock_whole_file(fd, posixType, 1) }
        let flockOp = kind == .exclusive ? LOCK_EX : LOCK_SH
        while chv_flock(fd, flockOp) != 0 {
            let e = chv_errno()
            if e == EINTR { continue }
            _ = chv_posix_lock_whole_file(fd, 0, 0)
            throw SystemError("flock \(descriptor)", errno: e)
        }
        self.descriptor = descriptor
        self.fd = fd
        held = true
    }

    /// Releases both locks (also done on deinit).
    public func release() {
        guard held else { return }
        held = false
        _ = chv_flock(fd, LOCK_UN)
        _ = chv_posix_lock_whole_file(fd, 0, 0)
    }

    deinit {
        if held {
            _ = chv_flock(fd, LOCK_UN)
            _ = chv_posix_lock_whole_file(fd, 0, 0)
        }
    }
}
