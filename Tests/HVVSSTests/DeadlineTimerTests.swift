import HVSystem
import HVTesting
import Testing

@testable import HVVSS

/// The thaw deadline waits on a timerfd: arming and disarming must not need a wake-up of its
/// thread, and a re-arm must replace the earlier deadline (generation included).
@Suite struct DeadlineTimerTests {
    private final class Fired: Sendable {
        let generations = Locked<[UInt64]>([])
    }

    @Test func firesOnceWithItsGeneration() async throws {
        let fired = Fired()
        let timer = try DeadlineTimer(name: "test-deadline") { g in fired.generations.withLock { $0.append(g) } }
        defer { timer.stop() }
        try timer.arm(afterNanoseconds: 20_000_000, generation: 7)
        #expect(await eventually(timeout: .seconds(10)) { !fired.generations.current.isEmpty })
        try await Task.sleep(for: .milliseconds(100))
        #expect(fired.generations.current == [7], "one expiry, with the generation it was armed with")
    }

    @Test func reArmReplacesTheEarlierDeadline() async throws {
        let fired = Fired()
        let timer = try DeadlineTimer(name: "test-deadline") { g in fired.generations.withLock { $0.append(g) } }
        defer { timer.stop() }
        // Far away first, then soon: the soon one must fire (the thread was sleeping on the
        // far one and nothing signalled it).
        try timer.arm(afterNanoseconds: 3_600_000_000_000, generation: 1)
        try timer.arm(afterNanoseconds: 20_000_000, generation: 2)
        #expect(await eventually(timeout: .seconds(10)) { !fired.generations.current.isEmpty })
        #expect(fired.generations.current == [2])
        // Soon first, then far away: the soon one must not fire.
        try timer.arm(afterNanoseconds: 30_000_000, generation: 3)
        try timer.arm(afterNanoseconds: 3_600_000_000_000, generation: 4)
        try await Task.sleep(for: .milliseconds(200))
        #expect(fired.generations.current == [2], "a replaced deadline does not fire")
    }

    @Test func disarmedDeadlineNeverFires() async throws {
        let fired = Fired()
        let timer = try DeadlineTimer(name: "test-deadline") { g in fired.generations.withLock { $0.append(g) } }
        defer { timer.stop() }
        try timer.arm(afterNanoseconds: 30_000_000, generation: 1)
        timer.disarm()
        try await Task.sleep(for: .milliseconds(200))
        #expect(fired.generations.current.isEmpty)
        // Still usable after a disarm.
        try timer.arm(afterNanoseconds: 10_000_000, generation: 2)
        #expect(await eventually(timeout: .seconds(10)) { fired.generations.current == [2] })
    }

    @Test func stopJoinsEvenWhenArmed() throws {
        let fired = Fired()
        let timer = try DeadlineTimer(name: "test-deadline") { g in fired.generations.withLock { $0.append(g) } }
        try timer.arm(afterNanoseconds: 3_600_000_000_000, generation: 1)
        // Returns (joins the thread) although the thread waits on a timerfd an hour away: the
        // stop eventfd wakes it. A hang here would end in the test run's time limit.
        timer.stop()
        #expect(fired.generations.current.isEmpty, "stopping is not an expiry")
    }
}
