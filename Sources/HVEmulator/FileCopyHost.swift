import HVSystem
import HVWire

/// One file-copy message from the host, before a transport encodes it (the relay's UTF-8
/// kernel messages or the ring's UTF-16 IC messages).
public enum FileCopyHostMessage: Sendable, Equatable {
    case start(directory: String, name: String, overwrite: Bool, createPath: Bool, size: UInt64)
    /// `declaredSize` overrides the `size` field on the wire (fault injection: > 6144).
    case write(offset: UInt64, data: ArraySlice<UInt8>, declaredSize: UInt32? = nil)
    case complete
    case cancel

    public var operation: String {
        switch self {
        case .start: return "START_FILE_COPY"
        case .write: return "WRITE_TO_FILE"
        case .complete: return "COMPLETE_FCOPY"
        case .cancel: return "CANCEL_FCOPY"
        }
    }
}

/// What the copy driver needs from a transport: send one message and return the status the
/// host sees, or drop the guest's connection.
public protocol FileCopyHostTransport: Sendable {
    func send(_ message: FileCopyHostMessage, detail: String) async -> HResult
    func disconnect(reason: String)
}

/// The host's file copy (`Msvm_GuestFileService.CopyFilesToGuest`, `Copy-VMFile`) over the
/// kernel relay device `/dev/vmbus/hv_fcopy` or, when `uio` is set, over the fcopy VMBus ring
/// (`dev/uio0`). `copy` behaves the same on both.
public final class FileCopyHost: HostService, @unchecked Sendable {
    /// The ring transport, when this host serves file copy through uio_hv_generic.
    public let uio: FileCopyUIOHost?

    init(device: RelayDeviceEmulator?, uio: FileCopyUIOHost? = nil) {
        self.uio = uio
        super.init(device: device)
    }

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
        /// Send a first fragment whose `size` field says 6145 (more than DATA_FRAGMENT).
        case oversizedFragment
    }

    /// The transport `copy` uses.
    public var transport: any FileCopyHostTransport {
        if let uio { return uio }
        return RelayFileCopyTransport(device: device)
    }

    /// Copies `data` to `directory`/`name` in the guest, fragment by fragment (6144 bytes, or
    /// the sizes in `fragmentSizes`, cycled), then COMPLETE. On a failed step the host sends
    /// CANCEL_FCOPY, as Hyper-V does.
    public func copy(_ data: [UInt8], toDirectory directory: String, name: String, overwrite: Bool = false,
                     createFullPath: Bool = false, fault: Fault? = nil, fragmentSizes: [Int] = []) async -> JobResult {
        if let uio {
            return await uio.copy(data, toDirectory: directory, name: name, overwrite: overwrite, createFullPath: createFullPath,
                                  fault: fault, fragmentSizes: fragmentSizes)
        }
        return await FileCopyDriver.copy(data, toDirectory: directory, name: name, overwrite: overwrite,
                                         createFullPath: createFullPath, fault: fault, fragmentSizes: fragmentSizes,
                                         over: RelayFileCopyTransport(device: device))
    }

    /// Waits until a guest is ready for copies: registered `count` times in total on the relay
    /// device, or connected `count` times and negotiated on the ring.
    public func waitUntilReady(count: Int = 1, timeout: Duration = .seconds(10)) async -> Bool {
        if let uio { return await uio.waitUntilReady(count: count, timeout: timeout) }
        return await device.waitForRegistration(count: count, timeout: timeout)
    }

    /// Sends one relay message and returns the status the host sees.
    public func send(_ request: FCopyRequest, _ name: String, detail: String = "") async -> HResult {
        await sendRaw(request.encode(), name, detail: detail)
    }

    public func sendRaw(_ bytes: [UInt8], _ name: String, detail: String = "") async -> HResult {
        await RelayFileCopyTransport(device: device).sendRaw(bytes, name, detail: detail)
    }
}

/// File-copy messages through the kernel relay (UTF-8 names, 4-byte HRESULT replies).
struct RelayFileCopyTransport: FileCopyHostTransport {
    let device: RelayDeviceEmulator

    func send(_ message: FileCopyHostMessage, detail: String) async -> HResult {
        await sendRaw(Self.encode(message), message.operation, detail: detail)
    }

    func sendRaw(_ bytes: [UInt8], _ name: String, detail: String) async -> HResult {
        switch await device.submit(operation: name, detail: detail, bytes: bytes) {
        case .replied(let r): return (try? FCopyReply.decode(r)) ?? .fail
        case .kernelAnswered(let h, _): return h
        }
    }

    func disconnect(reason: String) { device.dropConnection(reason: reason) }

    static func encode(_ message: FileCopyHostMessage) -> [UInt8] {
        switch message {
        case .start(let directory, let name, let overwrite, let createPath, let size):
            var flags: FCopyFlags = []
            if overwrite { flags.insert(.overwrite) }
            if createPath { flags.insert(.createPath) }
            return FCopyRequest.start(FCopyStart(fileName: name, pathName: directory, flags: flags, fileSize: size)).encode()
        case .write(let offset, let data, let declaredSize):
            var bytes = FCopyRequest.write(FCopyWrite(offset: offset, data: data)).encode()
            if let declaredSize { patchU32(&bytes, at: FCopyLayout.writeLength, declaredSize) }
            return bytes
        case .complete: return FCopyRequest.complete.encode()
        case .cancel: return FCopyRequest.cancel.encode()
        }
    }
}

func patchU32(_ bytes: inout [UInt8], at offset: Int, _ value: UInt32) {
    guard offset >= 0, offset + 4 <= bytes.count else { return }
    for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))) }
}

/// The host's side of one Copy-VMFile, written once for both transports.
public enum FileCopyDriver {
    public typealias JobResult = FileCopyHost.JobResult
    public typealias Fault = FileCopyHost.Fault

    public static func copy(_ data: [UInt8], toDirectory directory: String, name: String, overwrite: Bool = false,
                            createFullPath: Bool = false, fault: Fault? = nil, fragmentSizes: [Int] = [],
                            over transport: some FileCopyHostTransport) async -> JobResult {
        let t0 = monotonicNanoseconds()
        func elapsed() -> UInt64 { (monotonicNanoseconds() - t0) / 1000 }
        func cancelled(_ offset: Int) async -> JobResult {
            _ = await transport.send(.cancel, detail: "")
            return JobResult(state: .exception, errorCode: .fail, failedStep: "cancelled by the host", bytes: UInt64(offset),
                             microseconds: elapsed())
        }
        func fail(_ step: String, _ h: HResult) async -> JobResult {
            _ = await transport.send(.cancel, detail: "")
            return JobResult(state: .exception, errorCode: h, failedStep: step, bytes: 0, microseconds: elapsed())
        }
        let st = await transport.send(
            .start(directory: directory, name: name, overwrite: overwrite, createPath: createFullPath, size: UInt64(data.count)),
            detail: "\(directory)/\(name) (\(data.count) bytes)")
        guard st.isSuccess else { return await fail("START_FILE_COPY", st) }
        let sizes = fragmentSizes.map { min(max($0, 1), FCopyLayout.dataFragment) }
        var offset = 0
        var fragments = 0
        while offset < data.count {
            switch fault {
            case .cancelAfter(let n) where n == fragments:
                return await cancelled(offset)
            case .disconnectAfter(let n) where n == fragments:
                transport.disconnect(reason: "fault injection: disconnect during copy")
                return JobResult(state: .exception, errorCode: .fail, failedStep: "disconnected", bytes: UInt64(offset),
                                 microseconds: elapsed())
            default: break
            }
            let wanted = sizes.isEmpty ? FCopyLayout.dataFragment : sizes[fragments % sizes.count]
            let n = min(wanted, data.count - offset)
            var at = UInt64(offset)
            var declared: UInt32?
            if fragments == 0 {
                if fault == .offsetPastEnd { at = UInt64(data.count) + 1 }
                if fault == .oversizedFragment { declared = UInt32(FCopyLayout.dataFragment + 1) }
            }
            let ws = await transport.send(.write(offset: at, data: data[offset..<(offset + n)], declaredSize: declared), detail: "")
            guard ws.isSuccess else { return await fail("WRITE_TO_FILE at \(at)", ws) }
            offset += n
            fragments += 1
        }
        if case .cancelAfter(let n) = fault, n >= fragments { return await cancelled(offset) }
        let cs = await transport.send(.complete, detail: "")
        guard cs.isSuccess else { return await fail("COMPLETE_FCOPY", cs) }
        return JobResult(state: .completed, errorCode: .ok, failedStep: nil, bytes: UInt64(data.count), microseconds: elapsed())
    }
}
