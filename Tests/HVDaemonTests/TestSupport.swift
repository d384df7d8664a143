import Glibc
import HVEmulator
import HVServiceKit
import HVSystem
import Logging

/// A temporary directory removed when the scope ends.
final class TempDir {
    let path: String
    init(_ prefix: String = "hvguest-test-") throws {
        path = try makeTemporaryDirectory(prefix: "/tmp/" + prefix)
    }
    deinit { removeTree(path) }
}

func testLogger(_ label: String = "test") -> Logger {
    var l = Logger(label: label, factory: { _ in SwiftLogNoOpLogHandler() })
    l.logLevel = .critical
    return l
}

func testEnvironment(root: String) -> ServiceEnvironment {
    ServiceEnvironment(deviceRoot: root, stateDirectory: root + "/state", runtimeDirectory: root + "/run",
                       configDirectory: root + "/etc", logger: testLogger())
}

/// Fast settings so tests never wait long.
func fastRunnerSettings() -> RelayChannelRunner.Settings {
    var s = RelayChannelRunner.Settings()
    s.devicePollMilliseconds = 20
    s.initialBackoffMilliseconds = 10
    s.maximumBackoffMilliseconds = 200
    s.registrationTimeoutMilliseconds = 1000
    return s
}

/// Polls `condition` until true or the timeout passes.
func eventually(timeout: Duration = .seconds(5), _ condition: () -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let end = clock.now + timeout
    while clock.now < end {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

/// Waits for `descriptor` to become readable without blocking a cooperative thread (tests run
/// in parallel on a 2-thread pool; a blocking poll there can starve the very task that would
/// make the descriptor readable).
func awaitReadable(_ descriptor: Descriptor, timeout: Duration = .seconds(5)) async -> Bool {
    let clock = ContinuousClock()
    let end = clock.now + timeout
    while clock.now < end {
        if let ev = try? poll([(descriptor.fd, .readable)], timeoutMilliseconds: 0), !ev[0].isEmpty { return true }
        try? await Task.sleep(for: .milliseconds(1))
    }
    return false
}

/// Receives one message once readable; nil on timeout.
func receiveMessage(_ descriptor: Descriptor, capacity: Int = 65536, timeout: Duration = .seconds(5)) async throws -> ReceivedMessage? {
    guard await awaitReadable(descriptor, timeout: timeout) else { return nil }
    return try descriptor.receive(capacity: capacity)
}
