import Glibc
import HVServiceKit
import HVSystem
import HVWire
import Logging

/// `copy_flags` of START_FILE_COPY (`OVER_WRITE` 0x1, `CREATE_PATH` 0x2 in `linux/hyperv.h`).
public struct FileCopyFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Replace an existing regular file at the target.
    public static let overwrite = FileCopyFlags(rawValue: 0x1)
    /// Create missing directories of `path_name`.
    public static let createPath = FileCopyFlags(rawValue: 0x2)
}

/// The answer to one engine call: the HRESULT for the host and a reason for the logs.
public struct FileCopyOutcome: Sendable, Equatable, CustomStringConvertible {
    public var status: HResult
    public var detail: String

    public init(_ status: HResult, _ detail: String) {
        self.status = status
        self.detail = detail
    }

    public var description: String { "\(status): \(detail)" }
}

/// What `cleanStaleTemporaries` did.
public struct StaleTemporaryCleanup: Sendable, Equatable {
    /// Paths of the temporary files removed.
    public var removed: [String] = []
    /// Directories or files that could not be examined or removed, with the reason.
    public var problems: [String] = []
    /// True when the walk stopped at its directory limit.
    public var stoppedAtLimit = false
}

/// How the last copy ended (`hvguestctl status`).
public struct FileCopyRecord: Sendable, Equatable {
    public var target: String
    public var status: HResult
    public var detail: String
    public var bytes: UInt64
    public var durationMicroseconds: UInt64
    /// CLOCK_REALTIME seconds.
    public var finishedAt: Int
}

/// The file copy state machine shared by both transports (the `/dev/vmbus/hv_fcopy` relay and
/// the UIO channel). Transport-neutral and synchronous: the transports decode their messages
/// (UTF-8 or UTF-16 names — invalid text never reaches here) and call one method per request.
///
/// Safety rules (docs/FCOPY.md): data goes to a temporary file `.<name>.hvguest-XXXXXX` in the
/// destination directory and is renamed into place only on COMPLETE, after fsync, so a copy
/// that is cancelled, fails, or whose channel is lost never leaves a partial file at the
/// target; the destination directory is walked component by component without following any
/// symbolic link; existing targets other than regular files are never replaced.
public final class FileCopyEngine: Sendable {
    public let configuration: FileCopyConfiguration
    /// When true (device root not `/`), copies are refused unless `allowed_roots` is set.
    public let isEmulated: Bool
    private let logger: Logger
    private let state = Locked<ActiveCopy?>(nil)
    private let lastFinished = Locked<FileCopyRecord?>(nil)

    /// Consecutive fragments are gathered into one buffer of this size before each `pwrite`.
    public static let coalescingBufferSize = 1 << 20
    /// Permissions of the temporary file while data is arriving (nobody else may read it).
    static let temporaryFileMode: mode_t = 0o600
    static let temporaryMarker = ".hvguest-"
    static let temporarySuffixLength = 6
    /// Bytes of the target name kept in the temporary name (leaves room for the marker).
    static let temporaryNameBytes = 200

    public init(configuration: FileCopyConfiguration, isEmulated: Bool, logger: Logger) {
        self.configuration = configuration
        self.isEmulated = isEmulated
        self.logger = logger
    }

    public convenience init(configuration: FileCopyConfiguration, environment: ServiceEnvironment) {
        self.init(configuration: configuration, isEmulated: environment.isEmulated, logger: environment.logger)
    }

    /// The last copy that ended (installed, failed, cancelled or abandoned), for status.
    public var lastCopy: FileCopyRecord? { lastFinished.withLock { $0 } }

    /// Whether a copy is in progress.
    public var isActive: Bool { state.withLock { $0 != nil } }

    /// The target path of the copy in progress, if any.
    public var activeTarget: String? { state.withLock { $0?.destination.targetPath } }

    // MARK: START_FILE_COPY

    /// Starts a copy of `size` bytes to `path/name`. A copy still in progress is aborted first
    /// (the host only starts anew after giving up on the old one).
    public func start(path: String, name: String, flags: FileCopyFlags, size: UInt64) -> FileCopyOutcome {
        state.withLock { active in
            if let old = active {
                active = nil
                finish(old, FileCopyOutcome(.fail, "superseded by a new START_FILE_COPY"), operation: "START_FILE_COPY")
            }
            let started = monotonicNanoseconds()
            do throws(Refusal) {
                let copy = try prepare(path: path, name: name, flags: flags, size: size, started: started)
                active = copy
                return FileCopyOutcome(.ok, "copying \(size) bytes to \(copy.destination.targetPath)")
            } catch {
                let target = path.hasSuffix("/") ? path + name : path + "/" + name
                logFinished(target: target, bytes: 0, started: started, outcome: error.outcome, operation: "START_FILE_COPY")
                return error.outcome
            }
        }
    }

    /// A request the engine turns down, with the answer for the host.
    struct Refusal: Error {
        var outcome: FileCopyOutcome
        init(_ status: HResult, _ detail: String) { outcome = FileCopyOutcome(status, detail) }
    }

    private func prepare(
        path: String, name: String, flags: FileCopyFlags, size: UInt64, started: UInt64
    ) throws(Refusal) -> ActiveCopy {
        let destination: CopyDestination
        do throws(CopyDestinationError) { destination = try CopyDestination(path: path, fileName: name) } catch {
            throw Refusal(.invalidArgument, error.description)
        }
        guard size <= UInt64(Int64.max) else {
            throw Refusal(.invalidArgument, "file_size \(size) is not a possible file size")
        }
        if let refusal = allowListRefusal(destination) { throw Refusal(.fail, refusal) }

        let directory = try openDirectory(destination, create: flags.contains(.createPath))

        // Refused early so the host gets the answer before sending any data; checked again
        // at COMPLETE because the directory may change meanwhile.
        let existing: FileStatus?
        do throws(SystemError) { existing = try directory.status(of: destination.fileName) } catch {
            throw Refusal(.fail, error.description)
        }
        if let existing {
            if !flags.contains(.overwrite) {
                throw Refusal(.alreadyExists, "\(destination.targetPath) exists (\(existing.type)) and OVER_WRITE is not set")
            }
            if existing.type != .regular {
                throw Refusal(.fail, "\(destination.targetPath) is a \(existing.type); only regular files are overwritten")
            }
        }

        var lastError = SystemError("create temporary file", errno: EEXIST)
        for _ in 0..<16 {
            let temporary = Self.temporaryName(for: destination.fileName, suffix: Self.randomSuffix())
            do throws(SystemError) {
                let file = try directory.createExclusiveFile(temporary, mode: Self.temporaryFileMode)
                return ActiveCopy(
                    destination: destination, flags: flags, size: size, directory: directory,
                    temporaryName: temporary, file: file, started: started, startsWriteback: configuration.fsync)
            } catch {
                lastError = error
                if error.errno != EEXIST { break }
            }
        }
        throw Refusal(Self.status(for: lastError), "in \(destination.directoryPath): \(lastError)")
    }

    /// Why the destination is not allowed, or nil if it is.
    private func allowListRefusal(_ destination: CopyDestination) -> String? {
        let roots = configuration.allowedRoots
        if roots.isEmpty {
            return isEmulated ? "fcopy.allowed_roots is empty; emulated daemons copy only into configured roots" : nil
        }
        if roots.contains(where: { destination.isInside(root: $0) }) { return nil }
        return "\(destination.directoryPath) is outside fcopy.allowed_roots (\(roots.joined(separator: ", ")))"
    }

    /// Walks from `/` to the destination directory one component at a time with
    /// `O_NOFOLLOW|O_DIRECTORY`: a symbolic link anywhere on the way is refused, because a
    /// link in a world-writable directory is the classic way to make a root daemon write
    /// elsewhere. Missing components are created with CREATE_PATH.
    private func openDirectory(_ destination: CopyDestination, create: Bool) throws(Refusal) -> Descriptor {
        var current: Descriptor
        do throws(SystemError) { current = try Descriptor.openDirectory("/") } catch {
            throw Refusal(.fail, error.description)
        }
        var walked = ""
        for component in destination.directoryComponents {
            walked += "/" + component
            do throws(SystemError) {
                current = try current.openSubdirectory(component)
                continue
            } catch {
                switch error.errno {
                case ENOENT:
                    break  // created below, if allowed
                case ELOOP:
                    throw Refusal(.fail, "\(walked) is a symbolic link; links in the destination path are not followed")
                case ENOTDIR:
                    throw Refusal(.fail, "\(walked) is not a directory")
                default:
                    throw Refusal(Self.status(for: error), "\(walked): \(error)")
                }
            }
            guard create else {
                throw Refusal(.fail, "directory \(walked) does not exist and CREATE_PATH is not set")
            }
            do throws(SystemError) {
                var created = true
                do throws(SystemError) { try current.makeDirectory(component, mode: configuration.directoryMode) } catch {
                    // Created concurrently is fine: the open below checks what it is.
                    if error.errno != EEXIST { throw error }
                    created = false
                }
                current = try current.openSubdirectory(component)
                // mkdir applies the umask (the unit sets UMask=0027): give a directory we
                // created exactly the configured mode, as the file gets.
                if created { try current.changeMode(configuration.directoryMode) }
            } catch {
                let reason = error.errno == ELOOP ? "\(walked) is a symbolic link" : "\(walked): \(error)"
                throw Refusal(Self.status(for: error), reason)
            }
        }
        return current
    }

    // MARK: WRITE_TO_FILE

    /// Stores one fragment. Fragments must lie within the announced file size (the host sends
    /// the real size; anything past it is refused and the copy abandoned). Consecutive
    /// fragments are gathered in memory and written in large blocks, so an error such as a
    /// full disk may be reported by a later WRITE or by COMPLETE.
    public func write(offset: UInt64, data: UnsafeRawBufferPointer) -> FileCopyOutcome {
        state.withLock { active in
            guard let copy = active else { return FileCopyOutcome(.fail, "no file copy in progress") }
            let count = UInt64(data.count)
            guard offset <= copy.size, count <= copy.size - offset else {
                active = nil
                return finish(copy, FileCopyOutcome(
                    .invalidArgument,
                    "fragment of \(count) bytes at offset \(offset) lies past the announced size \(copy.size)"),
                    operation: "WRITE_TO_FILE")
            }
            do throws(SystemError) {
                try copy.store(data, at: offset)
                return FileCopyOutcome(.ok, "")  // no text per fragment: this is the hot path
            } catch {
                active = nil
                return finish(copy, FileCopyOutcome(Self.status(for: error), error.description), operation: "WRITE_TO_FILE")
            }
        }
    }

    public func write(offset: UInt64, data: ArraySlice<UInt8>) -> FileCopyOutcome {
        data.withUnsafeBytes { write(offset: offset, data: $0) }
    }

    public func write(offset: UInt64, data: [UInt8]) -> FileCopyOutcome {
        data.withUnsafeBytes { write(offset: offset, data: $0) }
    }

    // MARK: COMPLETE_FCOPY

    /// Writes what is buffered, checks every announced byte arrived, sets owner and mode,
    /// fsyncs, and renames the temporary file over the target (without OVER_WRITE only if the
    /// target still does not exist), then fsyncs the directory.
    public func complete() -> FileCopyOutcome {
        state.withLock { active in
            guard let copy = active else { return FileCopyOutcome(.fail, "COMPLETE_FCOPY without a file copy in progress") }
            active = nil
            return finish(copy, install(copy), operation: "COMPLETE_FCOPY")
        }
    }

    private func install(_ copy: ActiveCopy) -> FileCopyOutcome {
        let target = copy.destination.targetPath
        do throws(SystemError) {
            try copy.flush()
            guard copy.end == copy.size else {
                return FileCopyOutcome(.fail, "only \(copy.end) of \(copy.size) announced bytes arrived")
            }
            if configuration.owner != nil || configuration.group != nil {
                try copy.file.changeOwner(user: configuration.owner, group: configuration.group)
            }
            try copy.file.changeMode(configuration.fileMode)
            if configuration.fsync { try copy.file.sync() }
            let overwrite = copy.flags.contains(.overwrite)
            if overwrite, let existing = try copy.directory.status(of: copy.destination.fileName), existing.type != .regular {
                return FileCopyOutcome(.fail, "\(target) became a \(existing.type); only regular files are overwritten")
            }
            do throws(SystemError) {
                try copy.directory.rename(copy.temporaryName, to: copy.destination.fileName, replace: overwrite)
            } catch {
                if error.errno == EEXIST {
                    return FileCopyOutcome(.alreadyExists, "\(target) appeared during the copy and OVER_WRITE is not set")
                }
                throw error
            }
            copy.installed = true
            if configuration.fsync { try copy.directory.sync() }
            return FileCopyOutcome(.ok, "copied")
        } catch {
            return FileCopyOutcome(Self.status(for: error), error.description)
        }
    }

    // MARK: CANCEL_FCOPY and channel loss

    /// The host cancelled: the temporary file is removed. Without a copy in progress this is
    /// a no-op that succeeds (the host may cancel after a failed WRITE already ended it).
    public func cancel() -> FileCopyOutcome {
        state.withLock { active in
            guard let copy = active else { return FileCopyOutcome(.ok, "no file copy in progress") }
            active = nil
            _ = finish(copy, FileCopyOutcome(.fail, "cancelled by the host"), operation: "CANCEL_FCOPY")
            return FileCopyOutcome(.ok, "cancelled \(copy.destination.targetPath)")
        }
    }

    /// The channel was lost (device closed, reset, hibernation, daemon stopping): the copy in
    /// progress, if any, is abandoned and its temporary file removed.
    @discardableResult
    public func abort(reason: String) -> FileCopyOutcome {
        state.withLock { active in
            guard let copy = active else { return FileCopyOutcome(.ok, "no file copy in progress") }
            active = nil
            return finish(copy, FileCopyOutcome(.fail, "abandoned: \(reason)"), operation: "ABORT")
        }
    }

    // MARK: Ending a copy

    /// Closes the copy, removes the temporary file unless it was installed, logs the result
    /// and returns it (with a cleanup problem appended, if any).
    @discardableResult
    private func finish(_ copy: ActiveCopy, _ outcome: FileCopyOutcome, operation: String) -> FileCopyOutcome {
        var outcome = outcome
        copy.file.close()
        if !copy.installed {
            do throws(SystemError) { try copy.directory.removeFile(copy.temporaryName) } catch {
                outcome.detail += "; removing the temporary file \(copy.destination.directoryPath)/\(copy.temporaryName) failed: \(error)"
            }
        }
        copy.directory.close()
        logFinished(
            target: copy.destination.targetPath, bytes: copy.end, started: copy.started, outcome: outcome,
            operation: operation)
        return outcome
    }

    private func logFinished(target: String, bytes: UInt64, started: UInt64, outcome: FileCopyOutcome, operation: String) {
        let micros = (monotonicNanoseconds() &- started) / 1000
        let rate = Self.megabytesPerSecond(bytes: bytes, microseconds: micros)
        let metadata: Logger.Metadata = [
            LogField.service: "fcopy",
            LogField.operation: .string(operation),
            LogField.status: .string(outcome.status.description),
            LogField.durationMicroseconds: .string(String(micros)),
        ]
        let timing = "\(bytes) bytes in \(Self.milliseconds(micros)) ms (\(rate) MB/s)"
        lastFinished.withLock {
            $0 = FileCopyRecord(target: target, status: outcome.status, detail: outcome.detail, bytes: bytes,
                                durationMicroseconds: micros, finishedAt: time(nil))
        }
        if outcome.status.isSuccess {
            logger.info("copied \(target): \(timing)", metadata: metadata)
        } else {
            logger.warning("copy to \(target) failed: \(outcome.status): \(outcome.detail); \(timing)", metadata: metadata)
        }
    }

    static func milliseconds(_ micros: UInt64) -> String {
        "\(micros / 1000).\(micros % 1000 / 100)"
    }

    static func megabytesPerSecond(bytes: UInt64, microseconds: UInt64) -> String {
        guard microseconds > 0 else { return "-" }
        let tenths = Double(bytes) * 10 / Double(microseconds)  // bytes/µs = MB/s
        guard tenths.isFinite, tenths < 1e15 else { return "-" }
        let t = UInt64(tenths.rounded())
        return "\(t / 10).\(t % 10)"
    }

    /// HV_ERROR_DISK_FULL for a full file system or quota (the host shows "disk full"),
    /// HV_E_FAIL for anything else.
    static func status(for error: SystemError) -> HResult {
        error.errno == ENOSPC || error.errno == EDQUOT ? .diskFull : .fail
    }

    // MARK: Temporary names

    /// `.<name>.hvguest-XXXXXX`; the name part is cut (on a character boundary) so the result
    /// stays within NAME_MAX.
    static func temporaryName(for name: String, suffix: String) -> String {
        var kept = String.UnicodeScalarView()
        var bytes = 0
        for scalar in name.unicodeScalars {
            let width = UTF8.width(scalar)
            if bytes + width > temporaryNameBytes { break }
            kept.append(scalar)
            bytes += width
        }
        return "." + String(kept) + temporaryMarker + suffix
    }

    private static let suffixAlphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".utf8)

    static func randomSuffix() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        for _ in 0..<temporarySuffixLength {
            bytes.append(suffixAlphabet[Int.random(in: 0..<suffixAlphabet.count, using: &generator)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether `name` has the shape of our temporary files.
    static func isTemporaryName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        let marker = Array(temporaryMarker.utf8)
        let tail = marker.count + temporarySuffixLength
        guard bytes.count > tail, bytes[0] == UInt8(ascii: ".") else { return false }
        let markerStart = bytes.count - tail
        guard Array(bytes[markerStart..<(markerStart + marker.count)]) == marker else { return false }
        return bytes[(markerStart + marker.count)...].allSatisfy { suffixAlphabet.contains($0) }
    }

    // MARK: Crash leftovers

    /// Removes temporary files a crashed daemon left behind (`.<name>.hvguest-XXXXXX`, regular,
    /// mode 0600) anywhere below `roots`, without following symbolic links. The daemon calls it
    /// at start-up with `allowed_roots` (an empty list — copies allowed anywhere — is not
    /// scanned: walking the whole file system at every start is too costly).
    /// At most `directoryLimit` directories are visited.
    public static func cleanStaleTemporaries(in roots: [String], directoryLimit: Int = 10_000) -> StaleTemporaryCleanup {
        var report = StaleTemporaryCleanup()
        var visited = 0
        var pending: [(path: String, directory: Descriptor)] = []
        for root in roots {
            do throws(SystemError) { pending.append((root, try Descriptor.openDirectory(root))) } catch {
                if error.errno != ENOENT { report.problems.append("\(root): \(error)") }
            }
            while let (path, directory) = pending.popLast() {
                visited += 1
                if visited > directoryLimit {
                    report.stoppedAtLimit = true
                    return report
                }
                let entries: [DirectoryEntry]
                do throws(SystemError) { entries = try directory.entries() } catch {
                    report.problems.append("\(path): \(error)")
                    continue
                }
                let base = path == "/" ? "" : path
                for entry in entries {
                    var type = entry.type
                    if type == .unknown, let status = try? directory.status(of: entry.name) { type = status.type }
                    if type == .directory {
                        do throws(SystemError) {
                            pending.append((base + "/" + entry.name, try directory.openSubdirectory(entry.name)))
                        } catch {
                            report.problems.append("\(base)/\(entry.name): \(error)")
                        }
                    } else if type == .regular, isTemporaryName(entry.name) {
                        guard let status = try? directory.status(of: entry.name), status.type == .regular,
                            status.permissions == temporaryFileMode
                        else { continue }
                        do throws(SystemError) {
                            try directory.removeFile(entry.name)
                            report.removed.append(base + "/" + entry.name)
                        } catch {
                            report.problems.append("\(base)/\(entry.name): \(error)")
                        }
                    }
                }
            }
        }
        return report
    }

    /// `cleanStaleTemporaries(in: configuration.allowedRoots)`, logged.
    @discardableResult
    public func cleanStaleTemporaries() -> StaleTemporaryCleanup {
        let report = Self.cleanStaleTemporaries(in: configuration.allowedRoots)
        let metadata: Logger.Metadata = [LogField.service: "fcopy", LogField.operation: "CLEANUP"]
        for path in report.removed {
            logger.notice("removed \(path), left behind by an interrupted copy", metadata: metadata)
        }
        for problem in report.problems {
            logger.warning("cleaning up interrupted copies: \(problem), ignoring", metadata: metadata)
        }
        if report.stoppedAtLimit {
            logger.warning("cleaning up interrupted copies: stopped after too many directories", metadata: metadata)
        }
        return report
    }
}

/// One copy in progress: the open destination directory, the temporary file, and the
/// coalescing buffer.
final class ActiveCopy {
    let destination: CopyDestination
    let flags: FileCopyFlags
    /// The size the host announced; every fragment lies below it.
    let size: UInt64
    let directory: Descriptor
    let temporaryName: String
    let file: Descriptor
    let started: UInt64
    /// Start writeback after each block (when COMPLETE will fsync): the disk then works while
    /// fragments are still arriving, instead of all at once inside COMPLETE's fsync.
    let startsWriteback: Bool
    /// Gathers consecutive fragments; allocated at most once, no larger than the file.
    private let buffer: UnsafeMutableRawBufferPointer
    private var bufferStart: UInt64 = 0
    private var buffered = 0
    /// One past the highest byte received.
    private(set) var end: UInt64 = 0
    var installed = false

    init(
        destination: CopyDestination, flags: FileCopyFlags, size: UInt64, directory: Descriptor, temporaryName: String,
        file: Descriptor, started: UInt64, startsWriteback: Bool
    ) {
        self.destination = destination
        self.flags = flags
        self.size = size
        self.directory = directory
        self.temporaryName = temporaryName
        self.file = file
        self.started = started
        self.startsWriteback = startsWriteback
        let capacity = Int(min(UInt64(FileCopyEngine.coalescingBufferSize), size))
        buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 4096)
    }

    deinit { buffer.deallocate() }

    /// Appends to the buffer when `offset` continues it, otherwise writes the buffer out first.
    /// The caller has checked `offset + data.count <= size`.
    func store(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws(SystemError) {
        guard let source = data.baseAddress, data.count > 0 else { return }
        let continues = offset == bufferStart &+ UInt64(buffered)
        if !continues || buffered + data.count > buffer.count {
            try flush()
            bufferStart = offset
        }
        if data.count > buffer.count {
            try file.writeAll(data, at: Int64(offset))
            if startsWriteback { try writeBack(offset: offset, count: data.count) }
        } else if let base = buffer.baseAddress {
            (base + buffered).copyMemory(from: source, byteCount: data.count)
            buffered += data.count
            if buffered == buffer.count { try flush() }
        }
        end = max(end, offset + UInt64(data.count))
    }

    func flush() throws(SystemError) {
        guard buffered > 0 else { return }
        let pending = UnsafeRawBufferPointer(rebasing: buffer[0..<buffered])
        buffered = 0
        try file.writeAll(pending, at: Int64(bufferStart))
        if startsWriteback { try writeBack(offset: bufferStart, count: pending.count) }
        bufferStart &+= UInt64(pending.count)
    }

    private func writeBack(offset: UInt64, count: Int) throws(SystemError) {
        do throws(SystemError) { try file.startWriteback(offset: Int64(offset), count: Int64(count)) } catch {
            // Advisory: only a full disk is worth reporting now; anything else (not supported,
            // an I/O error) is left to COMPLETE's fsync to report.
            if error.errno == ENOSPC || error.errno == EDQUOT { throw error }
        }
    }
}
