import HVEmulator
import HVServiceKit
import HVSystem
import HVTesting
import HVTransport

/// Runs blocking work (host requests wait for the guest) on its own OS thread, so the
/// cooperative pool is never blocked.
func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { (done: CheckedContinuation<T, Never>) in
        do {
            _ = try OSThread(name: "test-host") { done.resume(returning: body()) }
        } catch {
            preconditionFailure("cannot start a thread: \(error)")
        }
    }
}

func fastICSettings() -> ICChannelRunner.Settings {
    var s = ICChannelRunner.Settings()
    s.devicePollMilliseconds = 20
    s.initialBackoffMilliseconds = 10
    s.maximumBackoffMilliseconds = 200
    s.handshakeTimeoutMilliseconds = 2_000
    return s
}

/// A guest service running against an IC host in a temporary device root.
final class ICRig<Host: ICHost>: @unchecked Sendable {
    let dir: TempDir
    let host: Host
    let runner: ICChannelRunner
    let status = StatusBoard()

    init(makeHost: (String) throws -> Host, service: any ICService) throws {
        dir = try TempDir("hvguest-ic-")
        host = try makeHost(dir.path)
        try host.uio.startAcceptingInBackground()
        runner = try ICChannelRunner(
            service: service, environment: testEnvironment(root: dir.path), status: status,
            settings: fastICSettings())
        try runner.start()
    }

    deinit {
        runner.stop()
        host.uio.close()
    }
}
