import HVServiceKit
import HVSystem
import Logging

// Shared helpers for the test targets. Tests run in parallel on a small cooperative pool (two
// threads on a 2-core machine): never block it for long. Timeouts are generous (30 s): a wait
// returns as soon as its condition holds, and a loaded CI machine can be very slow. Use `awaitReadable` / `receiveMessage`
// instead of a blocking poll or recv, and keep blocking waits on OS threads.

/// A temporary directory, removed (with everything in it) when the object goes away.
public final class TempDir: Sendable {
    public let path: String
    public init(_ prefix: String = "hvguest-test-") throws {
        path = try makeTemporaryDirectory(prefix: "/tmp/" + prefix)
    }
    deinit { removeTree(path) }
}

/// A logger that drops everything (tests assert on state, not on log text).
public func silentLogger(_ label: String = "test") -> Logger {
    var l = Logger(label: label, factory: { _ in SwiftLogNoOpLogHandler() })
    l.logLevel = .critical
    return l
}

/// A service environment rooted in a test directory: emulated (device root ≠ /).
public func testEnvironment(root: String, logger: Logger = silentLogger()) -> ServiceEnvironment {
    ServiceEnvironment(deviceRoot: root, stateDirectory: root + "/state", runtimeDirectory: root + "/run",
                       configDirectory: root + "/etc", logger: logger)
}

/// Channel-runner timing for tests: quick polls and back-offs.
public func fastRunnerSettings() -> RelayChannelRunner.Settings {
    var s = RelayChannelRunner.Settings()
    s.devicePollMilliseconds = 20
    s.initialBackoffMilliseconds = 10
    s.maximumBackoffMilliseconds = 200
    s.registrationTimeoutMilliseconds = 1000
    return s
}

/// Polls `condition` until it holds or the timeout passes; returns its last value.
public func eventually(timeout: Duration = .seconds(30), _ condition: () -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let end = clock.now + timeout
    while clock.now < end {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

/// Waits for `descriptor` to become readable without blocking a cooperative thread.
public func awaitReadable(_ descriptor: Descriptor, timeout: Duration = .seconds(30)) async -> Bool {
    let clock = ContinuousClock()
    let end = clock.now + timeout
    while clock.now < end {
        if let ev = try? poll([(descriptor.fd, .readable)], timeoutMilliseconds: 0), !ev[0].isEmpty { return true }
        try? await Task.sleep(for: .milliseconds(1))
    }
    return false
}

/// Receives one message once readable; nil on timeout.
public func receiveMessage(_ descriptor: Descriptor, capacity: Int = 65536, timeout: Duration = .seconds(30)) async throws -> ReceivedMessage? {
    guard await awaitReadable(descriptor, timeout: timeout) else { return nil }
    return try descriptor.receive(capacity: capacity)
}
