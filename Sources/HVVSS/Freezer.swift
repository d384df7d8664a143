import HVSystem

/// Why a freeze or thaw did not happen.
public enum FreezerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The freezer was asked for a mountpoint it is not permitted to touch (a bug upstream, or
    /// `/` when emulated); nothing was done.
    case refused(mountPoint: String, reason: String)
    case failed(SystemError)

    public var description: String {
        switch self {
        case .refused(let m, let r): return "refused to touch \(m): \(r)"
        case .failed(let e): return e.description
        }
    }
}

/// Freezes and thaws one filesystem through its mountpoint.
public protocol Freezer: Sendable {
    func freeze(_ mountPoint: String) throws(FreezerError) -> FilesystemFreeze.FreezeResult
    func thaw(_ mountPoint: String) throws(FreezerError) -> FilesystemFreeze.ThawResult
}

/// The real FIFREEZE/FITHAW, limited to an explicit permit list.
///
/// Each FREEZE builds one from the mount selector's output, so a bug elsewhere cannot widen
/// what gets frozen; when emulated the allow-list is a second, independent fence, and `/` is
/// refused outright.
public struct LiveFreezer: Freezer {
    public let permitted: Set<String>
    /// When non-nil (emulated), a mountpoint must also be listed here.
    public let allowList: Set<String>?
    public let allowRoot: Bool

    public init(permitted: Set<String>, allowList: Set<String>?, allowRoot: Bool) {
        self.permitted = permitted
        self.allowList = allowList
        self.allowRoot = allowRoot
    }

    private func check(_ mountPoint: String) throws(FreezerError) {
        guard permitted.contains(mountPoint) else {
            throw .refused(mountPoint: mountPoint, reason: "not selected for this freeze")
        }
        if let allowList, !allowList.contains(mountPoint) {
            throw .refused(mountPoint: mountPoint, reason: "not in the [vss] mountpoints allow-list")
        }
        if mountPoint == "/" && !allowRoot {
            throw .refused(mountPoint: mountPoint, reason: "/ is never frozen when emulated")
        }
    }

    public func freeze(_ mountPoint: String) throws(FreezerError) -> FilesystemFreeze.FreezeResult {
        try check(mountPoint)
        do throws(SystemError) { return try FilesystemFreeze.freeze(mountPoint) } catch { throw .failed(error) }
    }

    public func thaw(_ mountPoint: String) throws(FreezerError) -> FilesystemFreeze.ThawResult {
        try check(mountPoint)
        do throws(SystemError) { return try FilesystemFreeze.thaw(mountPoint) } catch { throw .failed(error) }
    }
}

/// A freezer that touches nothing: it records calls and returns scripted results (tests, and
/// the daemon's dry runs).
public final class RecordingFreezer: Freezer {
    public enum Call: Sendable, Equatable {
        case freeze(String)
        case thaw(String)
    }

    private struct State {
        var calls: [Call] = []
        var frozen: Set<String> = []
    }
    private let state = Locked(State())
    /// errno to fail FIFREEZE with, per mountpoint (EBUSY gives `.alreadyFrozen`).
    public let freezeErrors: [String: Int32]
    /// errno to fail FITHAW with, per mountpoint (EINVAL gives `.notFrozen`).
    public let thawErrors: [String: Int32]
    /// Called before each call is recorded (e.g. to check the frozen record exists).
    public let observe: (@Sendable (Call) -> Void)?

    public init(
        freezeErrors: [String: Int32] = [:], thawErrors: [String: Int32] = [:],
        observe: (@Sendable (Call) -> Void)? = nil
    ) {
        self.freezeErrors = freezeErrors
        self.thawErrors = thawErrors
        self.observe = observe
    }

    public var calls: [Call] { state.withLock { $0.calls } }
    /// Mountpoints this fake currently considers frozen.
    public var frozen: Set<String> { state.withLock { $0.frozen } }

    public func freeze(_ mountPoint: String) throws(FreezerError) -> FilesystemFreeze.FreezeResult {
        observe?(.freeze(mountPoint))
        let alreadyFrozen = state.withLock { s -> Bool in
            s.calls.append(.freeze(mountPoint))
            return s.frozen.contains(mountPoint)
        }
        if let e = freezeErrors[mountPoint] {
            if e == 16 /* EBUSY */ { return .alreadyFrozen }
            throw .failed(SystemError("FIFREEZE \(mountPoint)", errno: e))
        }
        if alreadyFrozen { return .alreadyFrozen }
        state.withLock { _ = $0.frozen.insert(mountPoint) }
        return .frozen
    }

    public func thaw(_ mountPoint: String) throws(FreezerError) -> FilesystemFreeze.ThawResult {
        observe?(.thaw(mountPoint))
        let wasFrozen = state.withLock { s -> Bool in
            s.calls.append(.thaw(mountPoint))
            return s.frozen.remove(mountPoint) != nil
        }
        if let e = thawErrors[mountPoint] {
            if e == 22 /* EINVAL */ { return .notFrozen }
            throw .failed(SystemError("FITHAW \(mountPoint)", errno: e))
        }
        return wasFrozen ? .thawed : .notFrozen
    }
}
