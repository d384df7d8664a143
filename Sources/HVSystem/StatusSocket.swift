import CHVLinux
import Glibc

/// Path operations the status socket needs (the socket file's mode, and removing it on stop).
public enum SocketFile {
    /// Sets the permission bits of the file at `path` (fchmod on a socket descriptor does not
    /// change the socket file, so this goes by path right after bind).
    public static func setMode(_ path: String, _ mode: mode_t) throws(SystemError) {
        if chmod(path, mode) < 0 { throw SystemError.last("chmod \(path)") }
    }

    /// Removes `path` if it exists (ENOENT is not an error).
    public static func remove(_ path: String) throws(SystemError) {
        if unlink(path) < 0 && chv_errno() != ENOENT { throw SystemError.last("unlink \(path)") }
    }

}
