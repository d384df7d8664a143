import HVServiceKit
import HVSystem
import HVWire
import Logging

/// Why filesystems are being thawed.
public enum ThawReason: Sendable, Equatable, CustomStringConvertible {
    /// The host sent THAW.
    case hostRequest
    /// No THAW arrived within `thaw_deadline_seconds` of the end of the freeze.
    case deadline(seconds: Double)
    /// The channel closed or failed while frozen (the kernel failed the host's request).
    case channelReset(String)
    /// The daemon is stopping (SIGTERM).
    case shutdown
    /// A frozen record was found at start-up or on re-registration (a previous run died frozen).
    case recovery
    /// FREEZE arrived while still frozen: start over.
    case freezeAgain

    public var description: String {
        switch self {
        case .hostRequest: return "host sent THAW"
        case .deadline(let s): return "no THAW within \(Int(s)) s of the freeze (auto-thaw deadline)"
        case .channelReset(let why): return "channel reset while frozen (\(why))"
        case .shutdown: return "daemon stopping"
        case .recovery: return "frozen record left by a previous run"
        case .freezeAgain: return "FREEZE while already frozen"
        }
    }
}

/// The result of a FREEZE.
public struct FreezeOutcome: Sendable, Equatable {
    public var status: HResult
    /// Mountpoints frozen (including ones that were already frozen), in freeze order.
    public var frozen: [String]
    /// Mountpoints whose FIFREEZE said EBUSY (already frozen; counted as success, thawed later).
    public var alreadyFrozen: [String]
    /// What failed, when `status` is not S_OK.
    public var failure: String?
    /// Mountpoints thawed again because a later freeze (or the record) failed.
    public var rolledBack: [String]
    public var hooks: [HookResult]
}

/// The result of a thaw.
public struct ThawOutcome: Sendable, Equatable {
    public var status: HResult
    public var reason: ThawReason
    /// In thaw order (reverse of freeze order).
    public var thawed: [String]
    /// FITHAW said EINVAL: it was not frozen (already thawed by someone, or a second mount).
    public var notFrozen: [String]
    public var failures: [String]
    /// Thaw hooks run synchronously (shutdown, recovery); others run after the reply.
    public var hooks: [HookResult]
    /// False when there was nothing of ours to thaw.
    public var hadSession = false
}

/// What `hvguestctl status` shows for VSS.
public struct VSSStatus: Sendable, Equatable {
    public var isFrozen: Bool
    public var frozenMountpoints: [String]
    public var lastFreeze: String?
    public var lastThaw: String?
    /// Set when the daemon thawed without a THAW from the host (deadline, reset, shutdown, recovery).
    public var lastUnrequestedThaw: String?
    public var lastHooks: [HookResult]
    /// Monotonic ns when the current freeze began (nil when not frozen).
    public var frozenSince: UInt64? = nil
    /// How long the last completed freeze held the filesystems, in milliseconds.
    public var lastFrozenMilliseconds: Int? = nil
}

/// The freeze discipline (docs/VSS.md):
///
/// 1. `freeze` hooks in name order (a failure fails the backup unless configured otherwise);
/// 2. the frozen record, durably, **before** the first FIFREEZE;
/// 3. log output held in memory (`LogGate`) — nothing of ours writes to disk while frozen;
/// 4. FIFREEZE in order; EBUSY counts as success; any other failure thaws everything already
///    frozen, in reverse, and the host gets E_FAIL;
/// 5. on success the auto-thaw deadline is armed.
///
/// Thaw is the mirror image: FITHAW in reverse order (EINVAL = not frozen = fine), log output
/// released, the record removed once everything thawed, then `thaw` hooks in reverse order.
///
/// Every operation runs under one lock, so the host's THAW, the deadline timer, a channel
/// reset and SIGTERM can race safely: whoever comes second finds nothing frozen.
public final class FreezeEngine: Sendable {
    private struct State {
        /// A freeze session is open (FREEZE succeeded, no thaw yet), even with nothing to freeze.
        var active = false
        var frozen: [String] = []
        var freezer: (any Freezer)?
        var generation: UInt64 = 0
        var hookThread: OSThread?
        var status = VSSStatus(isFrozen: false, frozenMountpoints: [], lastHooks: [])
    }

    public let runtimeDirectory: String
    public let hooks: any HookRunner
    public let failOnHookError: Bool
    public let thawDeadlineSeconds: Double
    private let makeFreezer: @Sendable ([String]) -> any Freezer
    private let logGate: LogGate
    private let logger: Logger
    private let state = Locked(State())
    private let timer = Locked<DeadlineTimer?>(nil)

    /// - Parameter makeFreezer: builds the freezer for one FREEZE from the mountpoints selected
    ///   for it (the live one refuses anything else).
    public init(
        runtimeDirectory: String, hooks: any HookRunner, failOnHookError: Bool, thawDeadlineSeconds: Double,
        logger: Logger, logGate: LogGate = .shared, makeFreezer: @escaping @Sendable ([String]) -> any Freezer
    ) {
        self.runtimeDirectory = runtimeDirectory
        self.hooks = hooks
        self.failOnHookError = failOnHookError
        self.thawDeadlineSeconds = thawDeadlineSeconds
        self.makeFreezer = makeFreezer
        self.logGate = logGate
        self.logger = logger
    }

    deinit { timer.withLock { $0 }?.stop() }

    public var isFrozen: Bool { state.withLock { $0.active } }
    public func status() -> VSSStatus { state.withLock { $0.status } }

    /// Waits for hooks running in the background (thaw hooks after a reply).
    public func waitForHooks() {
        let t = state.withLock { s -> OSThread? in
            defer { s.hookThread = nil }
            return s.hookThread
        }
        t?.join()
    }

    /// Stops the deadline timer thread (after a final thaw).
    public func stop() { timer.withLock { $0 }?.stop() }

    // MARK: Freeze

    public func freeze(_ targets: [FreezeTarget]) -> FreezeOutcome {
        var previous: ThawOutcome?
        if isFrozen { previous = thaw(reason: .freezeAgain) }
        waitForHooks()
        let outcome = state.withLock { s in freezeLocked(targets, &s) }
        if let previous, previous.status != .ok {
            logger.warning("VSS: thaw before a repeated FREEZE failed: \(previous.failures.joined(separator: "; "))")
        }
        log(outcome)
        return outcome
    }

    private func freezeLocked(_ targets: [FreezeTarget], _ s: inout State) -> FreezeOutcome {
        let mountPoints = targets.map(\.mountPoint)
        var outcome = FreezeOutcome(status: .ok, frozen: [], alreadyFrozen: [], failure: nil, rolledBack: [], hooks: [])
        s.status.lastHooks = []

        // 1. freeze hooks, in name order.
        let names = hooks.hookNames()
        var ran: [String] = []
        for name in names {
            let r = hooks.run(name, phase: .freeze, mountPoints: mountPoints)
            outcome.hooks.append(r)
            ran.append(name)
            if !r.outcome.isSuccess && failOnHookError {
                outcome.failure = "freeze hook \(name) failed: \(r.outcome)"
                break
            }
        }
        if outcome.failure != nil {
            return failFreeze(&outcome, hooksRun: ran, mountPoints: mountPoints, &s)
        }

        // 2. the record, before anything is frozen: if we die from here on, the next start
        // (or thaw-all) knows what to thaw. No record, no freeze.
        do throws(SystemError) {
            try FrozenRecord.write(mountPoints, runtimeDirectory: runtimeDirectory)
        } catch {
            outcome.failure = "cannot write the frozen record: \(error)"
            return failFreeze(&outcome, hooksRun: ran, mountPoints: mountPoints, &s)
        }

        // 3. + 4. hold logs, freeze in order.
        let freezer = makeFreezer(mountPoints)
        logGate.hold()
        var frozen: [String] = []
        for m in mountPoints {
            do throws(FreezerError) {
                switch try freezer.freeze(m) {
                case .frozen: break
                case .alreadyFrozen: outcome.alreadyFrozen.append(m)
                }
                frozen.append(m)
            } catch {
                outcome.failure = "freeze \(m): \(error)"
                break
            }
        }
        if outcome.failure != nil {
            // Partial failure: thaw what we froze, newest first, then let logs out.
            var allThawed = true
            for m in frozen.reversed() {
                do throws(FreezerError) {
                    _ = try freezer.thaw(m)
                    outcome.rolledBack.append(m)
                } catch {
                    allThawed = false
                    outcome.failure! += "; thaw \(m) after the failure: \(error)"
                }
            }
            logGate.release()
            if allThawed { try? FrozenRecord.remove(runtimeDirectory: runtimeDirectory) }
            return failFreeze(&outcome, hooksRun: ran, mountPoints: mountPoints, &s)
        }

        // 5. frozen: remember, arm the deadline.
        s.active = true
        s.frozen = frozen
        s.freezer = freezer
        s.generation &+= 1
        outcome.frozen = frozen
        s.status.isFrozen = true
        s.status.frozenMountpoints = frozen
        s.status.lastFreeze = "frozen: \(frozen.joined(separator: ", "))"
        s.status.frozenSince = monotonicNanoseconds()
        s.status.lastHooks = outcome.hooks
        armDeadline(generation: s.generation)
        return outcome
    }

    private func failFreeze(
        _ outcome: inout FreezeOutcome, hooksRun: [String], mountPoints: [String], _ s: inout State
    ) -> FreezeOutcome {
        outcome.status = .fail
        for name in hooksRun.reversed() {
            outcome.hooks.append(hooks.run(name, phase: .freezeFail, mountPoints: mountPoints))
        }
        s.status.lastFreeze = "failed: \(outcome.failure ?? "?")"
        s.status.lastHooks = outcome.hooks
        return outcome
    }

    private func armDeadline(generation: UInt64) {
        let nanoseconds = UInt64(thawDeadlineSeconds * 1e9)
        let seconds = thawDeadlineSeconds
        var failure: SystemError?
        timer.withLock { t in
            do throws(SystemError) {
                if t == nil {
                    t = try DeadlineTimer(name: "hv-vss-deadline") { [weak self] g in
                        self?.deadlineExpired(generation: g, seconds: seconds)
                    }
                }
                try t?.arm(afterNanoseconds: nanoseconds, generation: generation)
            } catch {
                failure = error
            }
        }
        if let failure {
            // Still frozen and answering S_OK is right (the host will THAW); the safety net is
            // gone, so say so once the logs flow again.
            logGate.submit { [logger] in logger.error("VSS: cannot arm the auto-thaw deadline: \(failure)") }
        }
    }

    private func deadlineExpired(generation: UInt64, seconds: Double) {
        let current = state.withLock { $0.generation == generation && $0.active }
        guard current else { return }
        _ = thaw(reason: .deadline(seconds: seconds), onlyGeneration: generation)
    }

    // MARK: Thaw

    /// Thaws what this engine froze. Not frozen: nothing to do, S_OK (the kernel sends a fake
    /// THAW before hibernation; a duplicate THAW must not fail).
    @discardableResult
    public func thaw(reason: ThawReason) -> ThawOutcome { thaw(reason: reason, onlyGeneration: nil) }

    private func thaw(reason: ThawReason, onlyGeneration: UInt64?) -> ThawOutcome {
        let synchronousHooks = reason == .shutdown || reason == .recovery
        // One hook thread at a time: the previous thaw's hooks finish before new ones start.
        waitForHooks()
        var outcome = state.withLock { s -> ThawOutcome in
            var o = ThawOutcome(status: .ok, reason: reason, thawed: [], notFrozen: [], failures: [], hooks: [])
            if let g = onlyGeneration, g != s.generation { return o }
            guard s.active, let freezer = s.freezer else { return o }
            o.hadSession = true
            timer.withLock { $0 }?.disarm()
            let mountPoints = s.frozen
            for m in mountPoints.reversed() {
                do throws(FreezerError) {
                    switch try freezer.thaw(m) {
                    case .thawed: o.thawed.append(m)
                    case .notFrozen: o.notFrozen.append(m)
                    }
                } catch {
                    o.failures.append("thaw \(m): \(error)")
                }
            }
            logGate.release()
            // Keep the record if anything may still be frozen, so thaw-all can retry.
            if o.failures.isEmpty {
                do throws(SystemError) { try FrozenRecord.remove(runtimeDirectory: runtimeDirectory) } catch {
                    o.failures.append("remove frozen record: \(error)")
                }
            } else {
                o.status = .fail
            }
            s.active = false
            s.frozen = []
            s.freezer = nil
            s.status.isFrozen = false
            s.status.frozenMountpoints = []
            if let since = s.status.frozenSince {
                s.status.lastFrozenMilliseconds = Int((monotonicNanoseconds() &- since) / 1_000_000)
            }
            s.status.frozenSince = nil
            s.status.lastThaw = "\(reason): " + (o.failures.isEmpty ? "thawed" : o.failures.joined(separator: "; "))
            if reason != .hostRequest { s.status.lastUnrequestedThaw = s.status.lastThaw }
            if synchronousHooks {
                for name in hooks.hookNames().reversed() {
                    o.hooks.append(hooks.run(name, phase: .thaw, mountPoints: mountPoints))
                }
                s.status.lastHooks = o.hooks
            } else {
                // THAW has only 30 s in the kernel; the filesystems are already thawed, so the
                // hooks' result cannot change the answer: run them after replying.
                s.hookThread = startThawHooks(mountPoints: mountPoints)
            }
            return o
        }
        if !outcome.hadSession {
            // Nothing was frozen by us; a record left by an earlier run may still need thawing.
            if reason == .hostRequest || reason == .recovery { outcome = recoverFromRecord(outcome) }
            return outcome
        }
        log(outcome)
        return outcome
    }

    private func startThawHooks(mountPoints: [String]) -> OSThread? {
        let names = hooks.hookNames()
        if names.isEmpty { return nil }
        let hooks = self.hooks
        let logger = self.logger
        let state = self.state
        let run: @Sendable () -> Void = {
            var results: [HookResult] = []
            for name in names.reversed() {
                let r = hooks.run(name, phase: .thaw, mountPoints: mountPoints)
                results.append(r)
                FreezeEngine.log(r, logger: logger)
            }
            state.withLock { $0.status.lastHooks = results }
        }
        do throws(SystemError) {
            return try OSThread(name: "hv-vss-hooks", run)
        } catch {
            run()
            return nil
        }
    }

    /// Thaws what a frozen record lists (a previous run died while frozen). Used at start-up,
    /// on every (re-)registration, and for a THAW that finds nothing frozen by this run.
    private func recoverFromRecord(_ base: ThawOutcome) -> ThawOutcome {
        let recorded: [String]?
        do throws(SystemError) { recorded = try FrozenRecord.read(runtimeDirectory: runtimeDirectory) } catch {
            var o = base
            o.status = .fail
            o.failures.append("read frozen record: \(error)")
            return o
        }
        guard let recorded else { return base }
        let report = VSSRecovery.thawAll(
            runtimeDirectory: runtimeDirectory, freezer: makeFreezer(recorded), hooks: hooks, recorded: recorded)
        var o = base
        o.hadSession = true
        o.thawed = report.thawed
        o.notFrozen = report.notFrozen
        o.failures = report.failures
        o.hooks = report.hooks
        o.status = report.failures.isEmpty ? .ok : .fail
        state.withLock {
            $0.status.lastThaw = "\(ThawReason.recovery): " + (o.failures.isEmpty ? "thawed" : o.failures.joined(separator: "; "))
            $0.status.lastUnrequestedThaw = $0.status.lastThaw
        }
        log(o)
        return o
    }

    /// At start-up and after every reopen of the device: thaw whatever a previous run (or
    /// connection) left frozen.
    @discardableResult
    public func recover() -> ThawOutcome {
        if isFrozen { return thaw(reason: .channelReset("re-registration")) }
        return thaw(reason: .recovery)
    }

    // MARK: Logging (only ever called with log output released)

    private func log(_ o: FreezeOutcome) {
        let logger = self.logger
        if o.status == .ok {
            var line = "VSS: frozen \(o.frozen.count) filesystem(s): \(o.frozen.joined(separator: ", "))"
            if !o.alreadyFrozen.isEmpty { line += "; already frozen before: \(o.alreadyFrozen.joined(separator: ", "))" }
            let message = line
            // Filesystems are frozen now: everything goes through the gate and comes out after thaw.
            logGate.submit {
                for h in o.hooks { FreezeEngine.log(h, logger: logger) }
                logger.notice("\(message)")
            }
        } else {
            for h in o.hooks { Self.log(h, logger: logger) }
            var line = "VSS: freeze failed: \(o.failure ?? "?")"
            if !o.rolledBack.isEmpty { line += "; thawed again: \(o.rolledBack.joined(separator: ", "))" }
            logger.error("\(line)")
        }
    }

    private func log(_ o: ThawOutcome) {
        let what = "thawed \(o.thawed.count) filesystem(s) (\(o.reason))"
        if o.failures.isEmpty {
            if o.reason == .hostRequest {
                logger.notice("VSS: \(what)")
            } else {
                logger.warning("VSS: \(what)")
            }
        } else {
            logger.error("VSS: \(what); failures: \(o.failures.joined(separator: "; "))")
        }
        for h in o.hooks { Self.log(h, logger: logger) }
    }

    static func log(_ h: HookResult, logger: Logger) {
        let output = h.output.isEmpty ? "" : " output: \(h.output)"
        if h.outcome.isSuccess {
            logger.info("VSS: \(h)\(output)")
        } else {
            logger.warning("VSS: \(h)\(output)")
        }
    }
}
