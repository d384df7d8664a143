import HVServiceKit
import HVWire

/// File copy over the kernel relay `/dev/vmbus/hv_fcopy` (kernels ≤ 6.9, PROTOCOL.md §4.2), or
/// its seqpacket stand-in. Decodes each request and hands it to the shared `FileCopyEngine`;
/// every reply is the 4-byte HRESULT the kernel forwards to the host.
public final class FileCopyService: RelayService {
    public let name = ServiceName.fcopy
    public let devicePath = "dev/vmbus/hv_fcopy"
    /// WRITE is 6196 bytes; COMPLETE/CANCEL are the host's raw packet (a little longer than
    /// their 36-byte header). Nothing on the fcopy channel comes near 8 KiB.
    public let receiveCapacity = 8192
    public let engine: FileCopyEngine

    public init(engine: FileCopyEngine) {
        self.engine = engine
    }

    public convenience init(configuration: FileCopyConfiguration, environment: ServiceEnvironment) {
        self.init(engine: FileCopyEngine(configuration: configuration, environment: environment))
    }

    public func registrationMessage() -> [UInt8] { FCopyRegistration.message() }

    public func registrationCompleted(reply: [UInt8]) throws -> String {
        "version \(try FCopyRegistration.decodeReply(reply))"
    }

    public func handle(request: [UInt8]) -> RelayReply {
        let decoded: FCopyRequest
        do throws(WireError) { decoded = try FCopyRequest.decode(request) } catch {
            return refuse(request, error)
        }
        let outcome: FileCopyOutcome
        switch decoded {
        case .start(let start):
            outcome = engine.start(
                path: start.pathName, name: start.fileName, flags: FileCopyFlags(rawValue: start.flags.rawValue),
                size: start.fileSize)
        case .write(let fragment):
            outcome = engine.write(offset: fragment.offset, data: fragment.data)
        case .complete:
            outcome = engine.complete()
        case .cancel:
            outcome = engine.cancel()
        }
        return RelayReply(
            bytes: FCopyReply.encode(outcome.status), operation: decoded.operation.description, status: outcome.status,
            detail: outcome.detail.isEmpty ? nil : outcome.detail)
    }

    /// An undecodable request still gets an answer: E_INVALIDARG for a bad field (invalid UTF-8,
    /// a name without NUL, an oversized fragment), E_FAIL for an unknown operation or a message
    /// of the wrong size. A broken START or WRITE also ends the copy in progress: its data can
    /// no longer be trusted to be complete.
    private func refuse(_ request: [UInt8], _ error: WireError) -> RelayReply {
        let status: HResult
        switch error {
        case .invalidField: status = .invalidArgument
        case .truncated, .oversized, .unknownCode: status = .fail
        }
        let raw = try? ByteReader(request, structure: "hv_fcopy_hdr").u32(at: FCopyLayout.operation)
        let operation = raw.flatMap { FCopyOperation(rawValue: $0) }
        if operation == .startFileCopy || operation == .writeToFile {
            engine.abort(reason: "undecodable \(operation?.description ?? "")")
        }
        return RelayReply(
            bytes: FCopyReply.encode(status),
            operation: operation?.description ?? raw.map { "UNKNOWN(\($0))" } ?? "UNKNOWN",
            status: status, detail: error.description)
    }

    public func channelReset(reason: String) {
        engine.abort(reason: reason)
    }
}
