import CHVLinux
import Glibc

/// How a spawned program ended.
public struct SpawnResult: Sendable, Equatable {
    public enum Termination: Sendable, Equatable {
        /// Exited with this status (0 = success).
        case exited(Int32)
        /// Killed by this signal (SIGKILL after a timeout, or anything else).
        case signaled(Int32)
    }
    public var termination: Termination
    /// True when we killed the program's process group because it overran its time limit.
    public var timedOut: Bool
    /// Standard output and standard error, interleaved, at most `outputLimit` bytes.
    public var output: [UInt8]
    /// True when the program wrote more than `outputLimit` bytes (the rest was discarded).
    public var outputTruncated: Bool
    public var durationNanoseconds: UInt64

    public var succeeded: Bool { termination == .exited(0) && !timedOut }
}

/// Runs programs (hooks) with `posix_spawn`, a time limit and bounded captured output.
public enum Spawn {
    /// Runs `executable` with `arguments` (argv[1...]) and exactly `environment` (`KEY=value`).
    ///
    /// The program gets stdin from /dev/null, stdout and stderr into one pipe, no other
    /// descriptors, default signal
    /// dispositions and an empty signal mask (the daemon blocks signals for its own use), and its
    /// own process group. When it overruns `timeoutMilliseconds`, the whole group gets SIGKILL,
    /// so helpers it started die with it. Once the program itself exits, helpers it left running
    /// in the background are not waited for (a hook may deliberately leave one holding a lock);
    /// their output after that is not captured.
    public static func run(
        executable: String, arguments: [String], environment: [String],
        timeoutMilliseconds: Int, outputLimit: Int = 64 * 1024
    ) throws(SystemError) -> SpawnResult {
        let start = monotonicNanoseconds()
        var pipeFDs: [Int32] = [-1, -1]
        if chv_pipe_cloexec(&pipeFDs) != 0 { throw SystemError.last("pipe2") }
        let readEnd = Descriptor(adopting: pipeFDs[0])
        var writeEnd: Int32 = pipeFDs[1]
        defer { if writeEnd >= 0 { close(writeEnd) } }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)
        // Descriptors opened without O_CLOEXEC elsewhere in the process (libraries) must not
        // leak into hooks: a hook's long-lived helper would keep them open.
        chv_spawn_add_closefrom(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var pid: pid_t = 0
        let argv = [executable] + arguments
        var r: Int32 = 0
        // ETXTBSY: someone (a package upgrade; another thread's fork in tests) briefly holds the
        // file open for writing. It clears within milliseconds, so retry a few times.
        for attempt in 0..<20 {
            r = withCStrings(argv) { cArgv in
                withCStrings(environment) { cEnv in
                    posix_spawn(&pid, executable, &actions, &attributes, cArgv, cEnv)
                }
            }
            if r != ETXTBSY || attempt == 19 { break }
            sleepMilliseconds(10)
        }
        if r != 0 { throw SystemError("posix_spawn \(executable)", errno: r) }
        close(writeEnd)
        writeEnd = -1

        let deadline = start &+ UInt64(max(0, timeoutMilliseconds)) &* 1_000_000
        var output: [UInt8] = []
        var truncated = false
        var pipeOpen = true
        var exitStatus: Int32?
        var exitedAt: UInt64 = 0
        var timedOut = false
        var chunk = [UInt8](repeating: 0, count: 4096)

        while true {
            let now = monotonicNanoseconds()
            if exitStatus == nil {
                var status: Int32 = 0
                let w = waitpid(pid, &status, WNOHANG)
                if w == pid {
                    exitStatus = status
                    exitedAt = now
                }
            }
            if let _ = exitStatus {
                // Output written just before exit is still in the pipe; collect it for a short
                // while, but never wait on background helpers that inherited the pipe.
                if !pipeOpen || now >= exitedAt &+ 200_000_000 { break }
            } else if now >= deadline {
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                var status: Int32 = 0
                _ = try? retryOnInterrupt("waitpid") { waitpid(pid, &status, 0) }
                exitStatus = status
                timedOut = true
                break
            }
            if pipeOpen {
                var pfd = pollfd(fd: readEnd.fd, events: Int16(POLLIN), revents: 0)
                let p = Glibc.poll(&pfd, 1, 20)
                if p > 0 {
                    let n = chunk.withUnsafeMutableBytes { Glibc.read(readEnd.fd, $0.baseAddress, 4096) }
                    if n > 0 {
                        let room = outputLimit - output.count
                        if n <= room {
                            output += chunk[0..<n]
                        } else {
                            if room > 0 { output += chunk[0..<room] }
                            truncated = true
                        }
                    } else if n == 0 || (n < 0 && chv_errno() != EINTR && chv_errno() != EAGAIN) {
                        pipeOpen = false
                    }
                }
            } else {
                sleepMilliseconds(10)
            }
        }

        let status = exitStatus ?? 0
        let termination: SpawnResult.Termination
        // WIFEXITED / WEXITSTATUS / WTERMSIG are macros; these are their glibc definitions.
        if status & 0x7f == 0 {
            termination = .exited((status >> 8) & 0xff)
        } else {
            termination = .signaled(status & 0x7f)
        }
        return SpawnResult(
            termination: termination, timedOut: timedOut, output: output, outputTruncated: truncated,
            durationNanoseconds: monotonicNanoseconds() &- start)
    }

    private static func withCStrings<R>(
        _ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R
    ) -> R {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for p in pointers { free(p) } }
        return body(pointers)
    }
}
