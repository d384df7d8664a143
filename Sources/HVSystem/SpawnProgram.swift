import CHVLinux
import Glibc

/// How a program run by `spawnProgramAndWait` ended.
public enum ProgramExit: Sendable, Equatable {
    case exited(Int32)
    case signalled(Int32)
    /// Killed (SIGKILL) after the timeout.
    case timedOut
}

/// Runs an executable directly (`posix_spawn`, argv as given: no shell ever interprets
/// anything), with stdin from /dev/null, and waits for it at most `timeoutMilliseconds`.
public func spawnProgramAndWait(
    _ path: String, arguments: [String], environment: [String] = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"],
    timeoutMilliseconds: Int
) throws(SystemError) -> ProgramExit {
    let argv = ([path] + arguments).map { strdup($0) }
    let envp = environment.map { strdup($0) }
    defer {
        for p in argv { free(p) }
        for p in envp { free(p) }
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    var pid: pid_t = 0
    let r = (argv + [nil]).withUnsafeBufferPointer { a in
        (envp + [nil]).withUnsafeBufferPointer { e in
            posix_spawn(&pid, path, &actions, nil, UnsafeMutablePointer(mutating: a.baseAddress!), UnsafeMutablePointer(mutating: e.baseAddress!))
        }
    }
    if r != 0 { throw SystemError("posix_spawn \(path)", errno: r) }
    let deadline = monotonicNanoseconds() &+ UInt64(max(0, timeoutMilliseconds)) &* 1_000_000
    var status: Int32 = 0
    while true {
        let w = waitpid(pid, &status, WNOHANG)
        if w == pid { break }
        if w < 0 {
            let e = chv_errno()
            if e == EINTR { continue }
            throw SystemError("waitpid \(path)", errno: e)
        }
        if monotonicNanoseconds() >= deadline {
            kill(pid, SIGKILL)
            _ = waitpid(pid, &status, 0)
            return .timedOut
        }
        sleepMilliseconds(5)
    }
    // WIFEXITED / WEXITSTATUS / WTERMSIG are macros; decode the status word by hand.
    let signal = status & 0x7F
    if signal == 0 { return .exited((status >> 8) & 0xFF) }
    return .signalled(signal)
}
