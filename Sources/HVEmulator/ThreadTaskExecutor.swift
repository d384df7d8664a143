import HVSystem

/// A task executor backed by one OS thread: async code that blocks (a UIO ring round trip
/// waits in `poll`) runs there instead of on Swift's small cooperative pool, which other tasks
/// — often the very ones that would unblock it — need (COMMON pitfall: two pool threads here).
///
/// Jobs run in FIFO order. `shutdown()` lets the thread finish what is queued and exit.
final class ThreadTaskExecutor: TaskExecutor, @unchecked Sendable {
    private let queue = Locked<(jobs: [UnownedJob], stopping: Bool)>(([], false))
    private let wake: EventFD
    private var thread: OSThread?

    init(name: String) throws(SystemError) {
        wake = try EventFD()
        thread = try OSThread(name: name) { [self] in run() }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        queue.withLock { $0.jobs.append(unowned) }
        wake.signal()
    }

    private func run() {
        while true {
            let (jobs, stopping) = queue.withLock { q -> ([UnownedJob], Bool) in
                defer { q.jobs.removeAll(keepingCapacity: true) }
                return (q.jobs, q.stopping)
            }
            for job in jobs { job.runSynchronously(on: asUnownedTaskExecutor()) }
            if jobs.isEmpty {
                if stopping { return }
                _ = try? poll([(wake.fd, .readable)], timeoutMilliseconds: -1)
                wake.drain()
            }
        }
    }

    /// Stops the thread once its queue is empty and waits for it.
    func shutdown() {
        queue.withLock { $0.stopping = true }
        wake.signal()
        thread?.join()
        thread = nil
    }
}
