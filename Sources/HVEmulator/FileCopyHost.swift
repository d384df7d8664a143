import HVSystem
import HVWire

/// The host's file copy (`Msvm_GuestFileService.CopyFilesToGuest`, `Copy-VMFile`) over the
/// kernel relay device `/dev/vmbus/hv_fcopy`.
public final class FileCopyHost: HostService, @unchecked Sendable {
    /// What `Msvm_CopyFileToGuestJob` would report.
    public struct JobResult: Sendable, Equatable, CustomStringConvertible {
        public enum State: String, Sendable { case completed = "Completed", exception = "Exception" }
        public var state: State
        /// 0 on success, else the HRESULT of the step that failed.
        public var errorCode: HResult
        /// Which step failed (`START_FILE_COPY`, `WRITE_TO_FILE at 6144`, …), nil on success.
        public var failedStep: String?
        public var bytes: UInt64
        public var microseconds: UInt64

        public var description: String {
            if state == .completed {
                return "job Completed: \(bytes) bytes in \(formatMilliseconds(Double(microseconds) / 1000)) ms"
            }
            return "job Exception: \(failedStep ?? "?") failed with \(errorCode)"
        }
    }

    /// Fault injection for a copy.
    public enum Fault: Sendable, Equatable {
        /// Send CANCEL_FCOPY after this many fragments.
        case cancelAfter(fragments: Int)
        /// Drop the daemon's connection after this many fragments.
        case disconnectAfter(fragments: Int)
        /// Send one fragment whose offset lies past the announced size.
        case offsetPastEnd
    }

    /// Copies `data` to `directory`/`name` in the guest, fragment by fragment (6144 bytes), then
    /// COMPLETE. On a failed step the host sends CANCEL_FCOPY, as Hyper-V does.
    public func copy(_ data: [UInt8], toDirectory directory: String, name: String, overwrite: Bool = false,
                     createFullPath: Bool = false, fault: Fault? = nil) async -> JobResult {
        let t0 = monotonicNanoseconds()
        var flags: FCopyFlags = []
        if overwrite { flags.insert(.overwrite) }
        if createFullPath { flags.insert(.createPath) }
        func elapsed() -> UInt64 { (monotonicNanoseconds() - t0) / 1000 }
        func fail(_ step: String, _ h: HResult) async -> JobResult {
            if fault != .disconnectAfter(fragments: 0) {
                _ = await send(.cancel, "CANCEL_FCOPY")
            }
            return JobResult(state: .exception, errorCode: h, failedStep: step, bytes: 0, microseconds: elapsed())
        }
        let start = FCopyStart(fileName: name, pathName: directory, flags: flags, fileSize: UInt64(data.count))
        let st = await send(.start(start), "START_FILE_COPY", detail: "\(directory)/\(name) (\(data.count) bytes)")
        guard st.isSuccess else { return await fail("START_FILE_COPY", st) }
        var offset = 0
        var fragments = 0
        while offset < data.count {
            switch fault {
            case .cancelAfter(let n) where n == fragments:
                _ = await send(.cancel, "CANCEL_FCOPY")
                return JobResult(state: .exception, errorCode: .fail, failedStep: "cancelled by the host", bytes: UInt64(offset),
                                 microseconds: elapsed())
            case .disconnectAfter(let n) where n == fragments:
                device.dropConnection(reason: "fault injection: disconnect during copy")
                return JobResult(state: .exception, errorCode: .fail, failedStep: "disconnected", bytes: UInt64(offset),
                                 microseconds: elapsed())
            default: break
            }
            let n = min(FCopyLayout.dataFragment, data.count - offset)
            var at = UInt64(offset)
            if fault == .offsetPastEnd && fragments == 0 { at = UInt64(data.count) + 1 }
            let w = FCopyWrite(offset: at, data: data[offset..<(offset + n)])
            let ws = await send(.write(w), "WRITE_TO_FILE")
            guard ws.isSuccess else { return await fail("WRITE_TO_FILE at \(at)", ws) }
            offset += n
            fragments += 1
        }
        if case .cancelAfter(let n) = fault, n >= fragments {
            _ = await send(.cancel, "CANCEL_FCOPY")
            return JobResult(state: .exception, errorCode: .fail, failedStep: "cancelled by the host", bytes: UInt64(offset),
                             microseconds: elapsed())
        }
        let cs = await send(.complete, "COMPLETE_FCOPY")
        guard cs.isSuccess else { return await fail("COMPLETE_FCOPY", cs) }
        return JobResult(state: .completed, errorCode: .ok, failedStep: nil, bytes: UInt64(data.count), microseconds: elapsed())
    }

    /// Sends one message and returns the status the host sees.
    public func send(_ request: FCopyRequest, _ name: String, detail: String = "") async -> HResult {
        await sendRaw(request.encode(), name, detail: detail)
    }

    public func sendRaw(_ bytes: [UInt8], _ name: String, detail: String = "") async -> HResult {
        switch await device.submit(operation: name, detail: detail, bytes: bytes) {
        case .replied(let r): return (try? FCopyReply.decode(r)) ?? .fail
        case .kernelAnswered(let h, _): return h
        }
    }
}
