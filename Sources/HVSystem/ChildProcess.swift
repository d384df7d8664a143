import Glibc

/// A child process started with `posix_spawn` (no shell). Used by the emulator's demo and tests
/// to run `hvguestd`; ended only by PID, by whoever started it.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    public let executable: String
    private let exit = Locked<Int32?>(nil)

    /// Starts `executable` with `arguments` (argv[1…]). `environment` nil = inherit.
    /// Output goes to the parent's stdout/stderr unless `outputFile` is given (both streams).
    public init(executable: String, arguments: [String], environment env: [String]? = nil,
                outputFile: String? = nil) throws(SystemError) {
        self.executable = executable
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let outputFile {
            posix_spawn_file_actions_addopen(&actions, 1, outputFile, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // The child must not inherit blocked signals (hvguestd relies on SIGTERM reaching sigwait
        // only because it blocks them itself).
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var envStrings: [UnsafeMutablePointer<CChar>?]?
        if let env { envStrings = env.map { strdup($0) } + [nil] }
        defer { envStrings?.forEach { free($0) } }

        var child: pid_t = 0
        let r: Int32
        if var e = envStrings {
            r = posix_spawn(&child, executable, &actions, &attr, argv, &e)
        } else {
            r = posix_spawn(&child, executable, &actions, &attr, argv, environ)
        }
        if r != 0 { throw SystemError("posix_spawn \(executable)", errno: r) }
        pid = child
    }

    /// Sends a signal to the child (only ever our own child, by PID).
    public func signal(_ sig: Int32) {
        if exit.withLock({ $0 }) == nil { kill(pid, sig) }
    }

    /// Non-blocking check; returns the wait status once the child has exited.
    public func poll() -> Int32? {
        if let e = exit.withLock({ $0 }) { return e }
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid {
            exit.withLock { $0 = status }
            return status
        }
        return nil
    }

    public var isRunning: Bool { poll() == nil }

    /// Waits up to `milliseconds` for the child to exit; returns its wait status or nil.
    @discardableResult
    public func wait(milliseconds: Int) -> Int32? {
        let end = monotonicNanoseconds() + UInt64(milliseconds) * 1_000_000
        while true {
            if let s = poll() { return s }
            if monotonicNanoseconds() >= end { return nil }
            sleepMilliseconds(5)
        }
    }

    /// SIGTERM, wait up to `graceMilliseconds`, then SIGKILL and reap. Returns the wait status.
    @discardableResult
    public func terminate(graceMilliseconds: Int = 5_000) -> Int32 {
        signal(SIGTERM)
        if let s = wait(milliseconds: graceMilliseconds) { return s }
        signal(SIGKILL)
        return wait(milliseconds: 5_000) ?? -1
    }

    /// The exit code if the child exited normally.
    public static func exitCode(_ status: Int32) -> Int32? {
        (status & 0x7f) == 0 ? (status >> 8) & 0xff : nil
    }

    /// The signal that ended the child, if any.
    public static func terminatingSignal(_ status: Int32) -> Int32? {
        let s = status & 0x7f
        return s != 0 && s != 0x7f ? s : nil
    }
}

/// Path of the running executable (`/proc/self/exe`).
public func currentExecutablePath() -> String? {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    guard n > 0 else { return nil }
    return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Creates a fresh private directory from a template ending in `XXXXXX`.
public func makeTemporaryDirectory(prefix: String = "/tmp/hvguest-") throws(SystemError) -> String {
    var template = Array((prefix + "XXXXXX").utf8CString)
    guard mkdtemp(&template) != nil else { throw SystemError.last("mkdtemp \(prefix)XXXXXX") }
    return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Removes a directory tree (no symlinks followed). Used by the demo and tests for their own
/// temporary directories only.
public func removeTree(_ path: String) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    if (st.st_mode & S_IFMT) == S_IFDIR {
        for n in (try? directoryEntryNames(path)) ?? [] { removeTree(path + "/" + n) }
        rmdir(path)
    } else {
        unlink(path)
    }
}

/// For a child made with `fork()` that does not `exec` (tests: a writer blocked on a frozen
/// filesystem, a process killed mid-storm): closes every descriptor from 3 up, except `keep`. Without it the child holds a copy of every descriptor the parent had open —
/// close-on-exec does not apply without an exec — including other tests' sockets, so a peer
/// that closes its end is not seen as gone until the child exits. Only system calls, no
/// allocation: safe right after `fork()` in a threaded process.
public func closeInheritedDescriptors(keeping keep: Int32 = -1) {
    var limit = rlimit()
    let top: Int32 = getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Int32(clamping: min(limit.rlim_cur, 1 << 16)) : 1024
    var fd: Int32 = 3
    while fd < top {
        if fd != keep { close(fd) }
        fd += 1
    }
}
