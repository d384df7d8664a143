import HVSystem
import HVWire

/// The host's file copy over the fcopy VMBus ring (kernels ≥ 6.10): each message is an IC
/// request (ICMSGTYPE_FCOPY, UTF-16 names) written into the host→guest ring of a `UIOHost`;
/// the status the host sees is the `status` of the guest's echoed IC header.
///
/// `send` blocks its caller for one ring round trip (microseconds while a guest answers, at
/// most `timeoutMilliseconds`); `copy` therefore runs on its own thread, never on the
/// cooperative pool.
public final class FileCopyUIOHost: FileCopyHostTransport, @unchecked Sendable {
    public typealias JobResult = FileCopyHost.JobResult
    public typealias Fault = FileCopyHost.Fault

    public let channel: UIOHost
    /// How long one request may wait for its answer (the host's own timeout).
    public let timeoutMilliseconds: Int32
    /// Send WRITE bodies only as long as their data (52 + size bytes) instead of the full 6196:
    /// varies packet sizes so ring wrap-around lands at many offsets (tests).
    public let compactWrites: Bool

    public init(channel: UIOHost, timeout: Duration = .seconds(30), compactWrites: Bool = false) {
        self.channel = channel
        timeoutMilliseconds = Int32(clamping: nanoseconds(timeout) / 1_000_000)
        self.compactWrites = compactWrites
    }

    /// Creates the fcopy device (sysfs files, `dev/uioN`, ring memory) under `deviceRoot`.
    public convenience init(deviceRoot: String, uioIndex: Int = 0, timeout: Duration = .seconds(30), compactWrites: Bool = false)
        throws(UIOHostError)
    {
        self.init(channel: try UIOHost(deviceRoot: deviceRoot, configuration: .fcopy(uioIndex: uioIndex)), timeout: timeout,
                  compactWrites: compactWrites)
    }

    /// Copies `data` to `directory`/`name` in the guest (see `FileCopyHost.copy`).
    public func copy(_ data: [UInt8], toDirectory directory: String, name: String, overwrite: Bool = false,
                     createFullPath: Bool = false, fault: Fault? = nil, fragmentSizes: [Int] = []) async -> JobResult {
        let executor: ThreadTaskExecutor
        do { executor = try ThreadTaskExecutor(name: "emu-fcopy-copy") } catch {
            return JobResult(state: .exception, errorCode: .fail, failedStep: "emulator: \(error)", bytes: 0, microseconds: 0)
        }
        let result = await withTaskExecutorPreference(executor) {
            await FileCopyDriver.copy(data, toDirectory: directory, name: name, overwrite: overwrite, createFullPath: createFullPath,
                                      fault: fault, fragmentSizes: fragmentSizes, over: self)
        }
        // Leave the executor's thread before joining it (a thread cannot join itself).
        await Task.yield()
        executor.shutdown()
        return result
    }

    public func send(_ message: FileCopyHostMessage, detail: String) async -> HResult {
        sendNow(message)
    }

    /// Sends one message and returns the status the host sees (E_FAIL when the guest is gone or
    /// does not answer in time, as for a host whose request timed out).
    public func sendNow(_ message: FileCopyHostMessage) -> HResult {
        guard let body = try? encode(message) else { return .invalidArgument }
        return sendBody(body)
    }

    /// Sends an fcopy body as it is (malformed-input tests) and returns the status.
    public func sendBody(_ body: [UInt8]) -> HResult {
        let request = channel.makeRequest(body: body)
        guard let response = try? channel.send(icMessage: request, timeoutMilliseconds: timeoutMilliseconds),
            let header = try? ICMessageHeader.decode(from: response)
        else { return .fail }
        return header.status
    }

    /// Fault injection: the guest's device connection is closed (as a rescind looks to it).
    public func disconnect(reason: String) { channel.dropGuest() }

    /// Waits until a guest has connected `count` times in total and negotiated.
    public func waitUntilReady(count: Int = 1, timeout: Duration = .seconds(10)) async -> Bool {
        let clock = ContinuousClock()
        let end = clock.now + timeout
        func ready() -> Bool { channel.connectionCount >= count && channel.negotiatedVersions != nil }
        while clock.now < end {
            if ready() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return ready()
    }

    func encode(_ message: FileCopyHostMessage) throws(WireError) -> [UInt8] {
        switch message {
        case .start(let directory, let name, let overwrite, let createPath, let size):
            var flags: FCopyWireMessage.CopyFlags = []
            if overwrite { flags.insert(.overwrite) }
            if createPath { flags.insert(.createPath) }
            return try FCopyWireMessage.startCopy(.init(fileName: name, pathName: directory, flags: flags, fileSize: size)).encode()
        case .write(let offset, let data, let declaredSize):
            var body = try FCopyWireMessage.writeToFile(offset: offset, data: data).encode()
            if compactWrites { body.removeLast(body.count - (52 + data.count)) }
            if let declaredSize { patchU32(&body, at: 48, declaredSize) }
            return body
        case .complete: return try FCopyWireMessage.complete.encode()
        case .cancel: return try FCopyWireMessage.cancel.encode()
        }
    }
}
