import HVServiceKit
import HVWire

/// File copy over the fcopy VMBus channel bound to uio_hv_generic (kernels ≥ 6.10,
/// PROTOCOL.md §4.4), or the emulator's stand-in. The runner answers negotiation (framework
/// 3.0, message 1.1); this decodes each `FCopyWireMessage` (UTF-16 names), drives the same
/// `FileCopyEngine` as the relay service and returns the HRESULT for the echoed IC header.
public final class FileCopyUIOService: UIOService {
    /// HV_FCOPY_GUID: the fcopy channel's class (sysfs `class_id`).
    public static let fcopyClassID = "34d14be3-dee4-41c8-9ae7-6b174977c192"

    public let name = ServiceName.fcopy
    public let classID = FileCopyUIOService.fcopyClassID
    public let versions = ICServiceVersions.fcopy
    public let engine: FileCopyEngine

    public init(engine: FileCopyEngine) {
        self.engine = engine
    }

    public convenience init(configuration: FileCopyConfiguration, environment: ServiceEnvironment) {
        self.init(engine: FileCopyEngine(configuration: configuration, environment: environment))
    }

    /// One request: the response is the request echoed with the status in its IC header (the
    /// host reads nothing else from it). Always answers.
    public func handle(header: ICMessageHeader, payload: inout [UInt8]) -> ICReply? {
        let outcome: FileCopyOutcome
        let operation: String
        // Decoded in a nested scope so the fragment slice (which shares `payload`'s storage) is
        // released before the runner edits the header in place: no copy-on-write per fragment.
        do throws(WireError) {
            switch try FCopyWireMessage.decode(fromPayload: payload) {
            case .writeToFile(let offset, let data):
                operation = "WRITE_TO_FILE"
                outcome = engine.write(offset: offset, data: data)
            case .startCopy(let start):
                operation = "START_FILE_COPY"
                outcome = engine.start(
                    path: start.pathName, name: start.fileName, flags: FileCopyFlags(rawValue: start.flags.rawValue),
                    size: start.fileSize)
            case .complete:
                operation = "COMPLETE_FCOPY"
                outcome = engine.complete()
            case .cancel:
                operation = "CANCEL_FCOPY"
                outcome = engine.cancel()
            }
        } catch {
            return refuse(payload, error)
        }
        return ICReply(operation: operation, status: outcome.status, detail: outcome.detail.isEmpty ? nil : outcome.detail)
    }

    /// An undecodable request still gets an answer: E_INVALIDARG for a bad field (invalid
    /// UTF-16, an unterminated name, a fragment `size` above 6144), E_FAIL for an unknown
    /// operation or a message of the wrong size. A broken START or WRITE also ends the copy in
    /// progress: its data can no longer be trusted to be complete.
    private func refuse(_ payload: [UInt8], _ error: WireError) -> ICReply {
        let status: HResult
        switch error {
        case .invalidField: status = .invalidArgument
        case .truncated, .oversized, .unknownCode: status = .fail
        }
        let raw = try? ByteReader(payload, structure: "hv_fcopy_hdr").u32(at: ICMessageHeader.size)
        let operation = raw.map { FCopyWireMessage.Operation(rawValue: $0) }
        let name: String
        switch operation {
        case .startCopy?: name = "START_FILE_COPY"
        case .writeToFile?: name = "WRITE_TO_FILE"
        case .complete?: name = "COMPLETE_FCOPY"
        case .cancel?: name = "CANCEL_FCOPY"
        default: name = raw.map { "UNKNOWN(\($0))" } ?? "UNKNOWN"
        }
        if operation == .startCopy || operation == .writeToFile {
            engine.abort(reason: "undecodable \(name)")
        }
        return ICReply(operation: name, status: status, detail: error.description)
    }

    public func channelReset(reason: String) {
        engine.abort(reason: reason)
    }
}
