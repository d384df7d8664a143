import HVFileCopy
import HVServiceKit
import HVSystem
import HVTransport

extension Daemon {
    func fileCopyRingExists(_ env: ServiceEnvironment) -> Bool { Self.fileCopyRingPresent(env) }

    /// The file-copy runner for whichever transport this kernel offers: `dev/vmbus/hv_fcopy`
    /// (kernels ≤ 6.9) → the relay service; else a VMBus device of the fcopy class (≥ 6.10)
    /// → the UIO service (binding it to uio_hv_generic if needed); else a runner that waits for
    /// either to appear. Both share one engine; stale temporaries are removed first.
    func makeFileCopyRunner(environment env: ServiceEnvironment) throws(SystemError) -> any ServiceRunner {
        let engine = FileCopyEngine(configuration: configuration.fcopy, environment: env)
        // A copy interrupted by a crash left a hidden temporary file; remove it before the
        // host can start a new copy (never a partial file at the destination).
        _ = engine.cleanStaleTemporaries()
        statusReporters.withLock { $0[.fcopy] = engine }
        let relaySettings = runnerSettings
        let board = status
        let relayPath = env.devicePath(FileCopyService(engine: engine).devicePath)
        let choose: @Sendable () throws(SystemError) -> (any ServiceRunner)? = { () throws(SystemError) in
            let logger = env.logger
            if fileKind(relayPath) != .missing {
                logger.info("file copy over the kernel relay \(relayPath)")
                return try RelayChannelRunner(service: FileCopyService(engine: engine), environment: env, status: board,
                                              settings: relaySettings)
            }
            if Self.fileCopyRingPresent(env) {
                logger.info("file copy over the fcopy VMBus channel (uio_hv_generic)")
                return try UIOChannelRunner(service: FileCopyUIOService(engine: engine), environment: env, status: board,
                                            settings: UIOChannelRunner.Settings(relaySettings))
            }
            return nil
        }
        if let runner = try choose() { return runner }
        return try DeferredRunner(
            name: .fcopy, waitingFor: "\(relayPath) or a VMBus device of class {\(FileCopyUIOService.fcopyClassID)}",
            pollMilliseconds: relaySettings.devicePollMilliseconds, status: board, choose: choose)
    }

    /// True when a VMBus device of the fcopy class exists under the device root (bound to
    /// uio_hv_generic or not).
    static func fileCopyRingPresent(_ env: ServiceEnvironment) -> Bool {
        do {
            _ = try UIODevice.find(classID: FileCopyUIOService.fcopyClassID, deviceRoot: env.deviceRoot)
            return true
        } catch .deviceNotFound {
            return false
        } catch {
            return true
        }
    }
}

/// A runner whose transport is not known yet: polls `choose` on its own thread until it names
/// a runner, then starts that one and hands over to it.
final class DeferredRunner: ServiceRunner, @unchecked Sendable {
    let serviceName: ServiceName
    private let waitingFor: String
    private let pollMilliseconds: Int32
    private let status: StatusBoard
    private let choose: @Sendable () throws(SystemError) -> (any ServiceRunner)?
    private let wake: EventFD
    private let stopping = Locked(false)
    private let chosen = Locked<(any ServiceRunner)?>(nil)
    private var thread: OSThread?

    init(name: ServiceName, waitingFor: String, pollMilliseconds: Int32, status: StatusBoard,
         choose: @escaping @Sendable () throws(SystemError) -> (any ServiceRunner)?) throws(SystemError) {
        serviceName = name
        self.waitingFor = waitingFor
        self.pollMilliseconds = pollMilliseconds
        self.status = status
        self.choose = choose
        wake = try EventFD()
    }

    func start() throws(SystemError) {
        status.update(serviceName) { $0.state = .waitingForDevice(waitingFor) }
        thread = try OSThread(name: "hv-\(serviceName.rawValue)-wait") { [self] in run() }
    }

    private func run() {
        while !stopping.withLock({ $0 }) {
            if let runner = try? choose() {
                // Decided under the lock so `stop` either sees the runner or prevents its start.
                let started = stopping.withLock { isStopping -> Bool in
                    if isStopping { return false }
                    guard (try? runner.start()) != nil else { return false }
                    chosen.withLock { $0 = runner }
                    return true
                }
                if started { return }
            }
            _ = try? poll([(wake.fd, .readable)], timeoutMilliseconds: pollMilliseconds)
        }
    }

    func stop() {
        stopping.withLock { $0 = true }
        wake.signal()
        thread?.join()
        thread = nil
        chosen.withLock { $0 }?.stop()
        if chosen.withLock({ $0 }) == nil { status.update(serviceName) { $0.state = .stopped } }
    }

    func busyNanoseconds() -> UInt64? { chosen.withLock { $0 }?.busyNanoseconds() }
}
