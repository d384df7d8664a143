import Glibc
import HVServiceKit
import HVSystem
import HVWire
import Logging

/// The file-copy service of the UIO ceiling: answers every request with success at once and
/// writes nothing (a null sink behind our own ring runner).
final class NullFileCopyUIOService: UIOService {
    let name = ServiceName.fcopy
    /// The fcopy VMBus class (as `FileCopyUIOService.fcopyClassID`).
    let classID = "34d14be3-dee4-41c8-9ae7-6b174977c192"
    let versions = ICServiceVersions.fcopy

    func handle(header: ICMessageHeader, payload: inout [UInt8]) -> ICReply? {
        ICReply(operation: "NULL", status: .ok)
    }

    func channelReset(reason: String) {}
}

/// `hvguest-bench null-uio --root DIR`: the UIO null sink as a process of its own, run by the
/// driver like any daemon under test; exits on SIGTERM.
enum NullUIOResponder {
    static func run(root: String) throws {
        // Blocked before any thread starts, so only sigwait sees them.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGINT)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
        var logger = Logger(label: "null-uio")
        logger.logLevel = .critical
        let environment = ServiceEnvironment(deviceRoot: root, stateDirectory: root + "/null-uio", runtimeDirectory: root + "/null-uio/run",
                                             configDirectory: root, logger: logger)
        let runner = try UIOChannelRunner(service: NullFileCopyUIOService(), environment: environment, status: StatusBoard(),
                                          settings: UIOChannelRunner.Settings())
        try runner.start()
        var received: Int32 = 0
        while sigwait(&signals, &received) != 0 {}
        runner.stop()
    }
}
