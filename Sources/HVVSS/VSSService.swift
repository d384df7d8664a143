import HVServiceKit
import HVSystem
import HVWire
import Logging

/// The kernel's registration answer was not the 4-byte u32 129.
public struct VSSRegistrationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reply: [UInt8]
    public var description: String { "VSS registration: expected 4 bytes u32 129, got \(reply.count) bytes \(reply.prefix(16))" }
}

/// The VSS service on `/dev/vmbus/hv_vss` (PROTOCOL.md §1, §3; docs/VSS.md).
///
/// FREEZE selects mounts (`MountSelector`), then hands them to the `FreezeEngine`; THAW thaws;
/// HOT_BACKUP and the ops the kernel normally answers itself get S_OK. The device is reopened
/// by the channel after errors; every (re-)registration first thaws anything still frozen.
public final class VSSService: RelayService {
    public let name = ServiceName.vss
    public let devicePath = "dev/vmbus/hv_vss"
    /// The kernel relays 12-byte `hv_vss_msg`s; the host's FREEZE can be up to 6,260 bytes and
    /// AUTO_RECOVER 12,500 bytes on the VMBus side, so leave room in case a kernel ever passes
    /// more through. Trailing bytes are ignored.
    public let receiveCapacity = 16 * 1024

    public let environment: ServiceEnvironment
    public let configuration: VSSConfiguration
    public let engine: FreezeEngine
    private let mounts: MountSelectionCache
    private var logger: Logger { environment.logger }

    /// - Parameters:
    ///   - readMountTable: defaults to parsing `/proc/self/mountinfo`.
    ///   - inspector: loop detection; defaults to the real `/sys`.
    ///   - makeFreezer: defaults to `LiveFreezer` permitted exactly the selected mountpoints
    ///     (and, when emulated, only allow-listed ones, never `/`).
    ///   - hooks: defaults to the executables in `configuration.hooksDirectory`.
    public init(
        environment: ServiceEnvironment, configuration: VSSConfiguration,
        readMountTable: (@Sendable () throws -> MountTable)? = nil,
        inspector: (any BlockDeviceInspector)? = nil,
        makeFreezer: (@Sendable ([String]) -> any Freezer)? = nil,
        hooks: (any HookRunner)? = nil,
        logGate: LogGate = .shared
    ) {
        self.environment = environment
        self.configuration = configuration
        let emulated = environment.isEmulated
        let selector = MountSelector(
            configuration: configuration, isEmulated: emulated, inspector: inspector ?? SysfsBlockDeviceInspector())
        mounts = MountSelectionCache(
            source: readMountTable.map { .reader($0) } ?? .watched(ChangeWatchedFile(path: "/proc/self/mountinfo")),
            selector: selector)
        let allowList: Set<String>? = emulated ? Set(configuration.mountpoints) : nil
        engine = FreezeEngine(
            runtimeDirectory: environment.runtimeDirectory,
            hooks: hooks
                ?? DirectoryHookRunner(directory: configuration.hooksDirectory, timeoutSeconds: configuration.hookTimeoutSeconds),
            failOnHookError: configuration.failOnHookError, thawDeadlineSeconds: configuration.thawDeadlineSeconds,
            logger: environment.logger, logGate: logGate,
            makeFreezer: makeFreezer ?? { LiveFreezer(permitted: Set($0), allowList: allowList, allowRoot: !emulated) })
    }

    // MARK: RelayService

    public func registrationMessage() -> [UInt8] {
        // PROTOCOL.md §1.7: on every (re)open, thaw first whatever may still be frozen (this
        // run's freeze, or a record left by a run that died frozen).
        let r = engine.recover()
        if r.hadSession && !r.failures.isEmpty {
            logger.error("VSS: could not thaw everything before registering: \(r.failures.joined(separator: "; "))")
        }
        return VSSRegistration.message()
    }

    public func registrationCompleted(reply: [UInt8]) throws -> String {
        do throws(WireError) {
            _ = try VSSRegistration.decodeReply(reply)
        } catch {
            throw VSSRegistrationError(reply: reply)
        }
        // Read and select now, so that the first FREEZE finds the work done unless a mount
        // changed in between (an error here is reported by that FREEZE).
        _ = try? mounts.current()
        return "REGISTER1 (129)"
    }

    public func handle(request: [UInt8]) -> RelayReply {
        let message: VSSRequest
        do throws(WireError) { message = try VSSRequest.decode(request) } catch {
            return reply("INVALID", .fail, detail: error.description)
        }
        let op = message.rawOperation
        let flags = message.flags
        guard let operation = VSSOperation(rawValue: op) else {
            // Only FREEZE, THAW and HOT_BACKUP are relayed today; a newer kernel relaying
            // something new would be a notification we can't act on. Like the reference, answer
            // S_OK rather than fail backups that would otherwise work.
            logger.warning("VSS: unknown operation \(op) (flags 0x\(String(flags, radix: 16))), answering S_OK")
            return reply("OP_\(op)", .ok, detail: "unknown operation, answered S_OK")
        }
        switch operation {
        case .freeze: return freeze()
        case .thaw:
            let o = engine.thaw(reason: .hostRequest)
            let detail = o.failures.isEmpty ? "thawed \(o.thawed.count)" : o.failures.joined(separator: "; ")
            return reply(operation.description, o.status, detail: detail)
        case .hotBackup:
            // Nothing to prepare; the kernel sets no-auto-recovery itself (PROTOCOL.md V2: it
            // cannot see our answer's op byte, so that flag is not ours to influence).
            return reply(operation.description, .ok)
        case .create, .delete, .getDMInfo, .backupComplete, .autoRecover:
            return reply(operation.description, .ok, detail: "normally answered by the kernel")
        case .register, .register1:
            return reply(operation.description, .ok, detail: "registration op as a request, ignored")
        }
    }

    public func channelReset(reason: String) {
        // The kernel already failed the pending request; filesystems must not stay frozen
        // waiting for a THAW that will never come on this connection.
        if engine.isFrozen { engine.thaw(reason: .channelReset(reason)) }
        // The daemon resets every channel when it stops (SIGTERM): let the thaw hooks finish
        // before the process goes away.
        engine.waitForHooks()
    }

    // MARK: Daemon hooks

    /// SIGTERM / service stop: thaw first (hooks run synchronously), then stop the timer.
    @discardableResult
    public func shutdown() -> ThawOutcome {
        let o = engine.thaw(reason: .shutdown)
        engine.waitForHooks()
        engine.stop()
        return o
    }

    public func status() -> VSSStatus { engine.status() }

    // MARK: FREEZE

    private func freeze() -> RelayReply {
        let table: MountTable
        let selected: Result<MountSelection, MountSelectionError>
        do { (table, selected) = try mounts.current() } catch {
            return reply("FREEZE", .fail, detail: "cannot read the mount table: \(error)")
        }
        let selection: MountSelection
        switch selected {
        case .success(let s): selection = s
        case .failure(let error):
            logger.error("VSS: \(error)")
            return reply("FREEZE", .fail, detail: error.description)
        }
        // Logged before anything is frozen.
        for r in table.rejected { logger.warning("VSS: \(r), skipped") }
        for s in selection.skipped { logger.debug("VSS: not freezing \(s.mountPoint): \(s.reason)") }
        for m in selection.missingAllowListed { logger.warning("VSS: allow-listed \(m) is not mounted, skipped") }
        logger.info("VSS: freezing \(selection.targets.count) filesystem(s): \(selection.targets.map(\.description).joined(separator: ", "))")
        let o = engine.freeze(selection.targets)
        let detail = o.status == .ok ? "frozen \(o.frozen.joined(separator: ", "))" : (o.failure ?? "failed")
        return reply("FREEZE", o.status, detail: detail)
    }

    private func reply(_ operation: String, _ status: HResult, detail: String? = nil) -> RelayReply {
        RelayReply(bytes: VSSReply(status: status).encode(), operation: operation, status: status, detail: detail)
    }
}

/// The mount table and the selection made from it, recomputed only when the table changed.
///
/// With the live `/proc/self/mountinfo` the kernel says when a mount changed (`ChangeWatchedFile`),
/// so a FREEZE with an unchanged table neither reads, parses nor selects (bench/NOTES.md: that was
/// most of the daemon's own time inside the freeze window). An injected reader (tests, fuzzing)
/// has no change signal: it is read and selected on every call.
final class MountSelectionCache: Sendable {
    enum Source: Sendable {
        case watched(ChangeWatchedFile)
        case reader(@Sendable () throws -> MountTable)
    }
    typealias Selected = (table: MountTable, selection: Result<MountSelection, MountSelectionError>)

    private let source: Source
    private let selector: MountSelector
    private let cached = Locked<Selected?>(nil)

    init(source: Source, selector: MountSelector) {
        self.source = source
        self.selector = selector
    }

    func current() throws -> Selected {
        let table: MountTable
        switch source {
        case .reader(let read):
            table = try read()
        case .watched(let file):
            guard let (bytes, _) = try file.readIfChanged() else {
                if let hit = cached.current { return hit }
                // Unreachable in practice (the first read always returns bytes); read again.
                file.close()
                return try current()
            }
            table = MountTable.parse(String(decoding: bytes, as: UTF8.self))
        }
        let selected: Selected
        do throws(MountSelectionError) { selected = (table, .success(try selector.select(from: table))) } catch {
            selected = (table, .failure(error))
        }
        cached.withLock { $0 = selected }
        return selected
    }

}
