import Foundation
import Glibc
import HVEmulator
import HVServiceKit
import HVSystem
import HVWire
import Testing

@testable import HVFileCopy

/// Answers every fcopy request with S_OK and does nothing: the emulator's ceiling.
final class NullFileCopyService: RelayService {
    let name = ServiceName.fcopy
    let devicePath = "dev/vmbus/hv_fcopy"
    let receiveCapacity = 8192
    func registrationMessage() -> [UInt8] { FCopyRegistration.message() }
    func registrationCompleted(reply: [UInt8]) throws -> String { "version \(try FCopyRegistration.decodeReply(reply))" }
    func handle(request: [UInt8]) -> RelayReply {
        RelayReply(bytes: FCopyReply.encode(.ok), operation: "NULL", status: .ok)
    }
    func channelReset(reason: String) {}
}

/// Throughput of 256 MiB copies over the emulated relay device: the real service against a null
/// responder. Opt-in (`HVGUEST_BENCH=1`); prints MB/s and the ratio.
@Suite(.serialized) struct BenchmarkTests {
    static let enabled = ProcessInfo.processInfo.environment["HVGUEST_BENCH"] == "1"

    func throughput(_ makeService: (ServiceEnvironment, String) -> any RelayService, fsync: Bool) async throws -> Double {
        let scratch = try Scratch()
        try scratch.mkdir("root")
        try scratch.mkdir("dest")
        let host = try EmulatedHost(root: scratch.sub("root"), devices: [.fcopy])
        try host.start()
        let environment = ServiceEnvironment(
            deviceRoot: scratch.sub("root"), stateDirectory: scratch.sub("root/s"), runtimeDirectory: scratch.sub("root/r"),
            configDirectory: scratch.sub("root/e"), logger: LogRecorder().logger)
        let runner = try RelayChannelRunner(service: makeService(environment, scratch.sub("dest")), environment: environment, status: StatusBoard())
        try runner.start()
        defer {
            runner.stop()
            host.stop()
        }
        _ = await host.fcopy.device.waitForRegistration()
        let data = pseudoRandomBytes(256 * 1_048_576)
        let job = await host.fcopy.copy(data, toDirectory: scratch.sub("dest"), name: "bench")
        #expect(job.state == .completed)
        return Double(data.count) / Double(job.microseconds)
    }

    @Test(.enabled(if: enabled, "set HVGUEST_BENCH=1 to run"))
    func fileCopyAgainstNullResponder() async throws {
        // Alternate the runs and keep the best of each: the machine is shared and small.
        var best: [String: Double] = [:]
        for _ in 0..<3 {
            best["null", default: 0] = max(best["null", default: 0], try await throughput({ _, _ in NullFileCopyService() }, fsync: false))
            for fsync in [false, true] {
                let real = try await throughput({ env, dest in
                    FileCopyService(configuration: FileCopyConfiguration(allowedRoots: [dest], fsync: fsync), environment: env)
                }, fsync: fsync)
                best["fsync \(fsync)", default: 0] = max(best["fsync \(fsync)", default: 0], real)
            }
        }
        let null = best["null", default: 1]
        for key in ["fsync false", "fsync true"] {
            let real = best[key, default: 0]
            print("fcopy bench: null \(Int(null)) MB/s, service (\(key)) \(Int(real)) MB/s = \(Int(real / null * 100)) %")
        }
    }

    /// The engine alone, fragments of 6144 bytes straight from memory: its own cost per fragment.
    @Test(.enabled(if: enabled, "set HVGUEST_BENCH=1 to run"))
    func engineAlone() throws {
        let scratch = try Scratch()
        let data = pseudoRandomBytes(256 * 1_048_576)
        for fsync in [false, true] {
            let engine = makeEngine(FileCopyConfiguration(fsync: fsync))
            let t0 = monotonicNanoseconds()
            #expect(copy(engine, data, to: scratch.path, name: "e\(fsync)").status == .ok)
            let us = Double(monotonicNanoseconds() - t0) / 1000
            let fragments = Double(data.count / 6144)
            print("fcopy bench: engine alone (fsync \(fsync)) \(Int(Double(data.count) / us)) MB/s, \(us / fragments) µs per fragment")
        }
    }

    /// `FileCopyService.handle` on pre-encoded WRITE messages: decode + engine + reply.
    @Test(.enabled(if: enabled, "set HVGUEST_BENCH=1 to run"))
    func serviceHandleAlone() throws {
        let scratch = try Scratch()
        let size = 64 * 1_048_576
        let data = pseudoRandomBytes(size)
        var messages: [[UInt8]] = []
        var offset = 0
        while offset < size {
            let n = min(6144, size - offset)
            messages.append(writeMessage(offset: UInt64(offset), data[offset..<(offset + n)]))
            offset += n
        }
        let service = FileCopyService(engine: makeEngine(FileCopyConfiguration(fsync: false)))
        #expect(service.handle(request: startMessage(path: scratch.path, name: "h", size: UInt64(size))).status == .ok)
        let t0 = monotonicNanoseconds()
        for m in messages { _ = service.handle(request: m) }
        let us = Double(monotonicNanoseconds() - t0) / 1000
        #expect(service.handle(request: FCopyRequest.complete.encode()).status == .ok)
        print("fcopy bench: service.handle WRITE \(us / Double(messages.count)) µs per fragment")
    }
}
