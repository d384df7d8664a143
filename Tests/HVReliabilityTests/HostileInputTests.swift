import Foundation
import HVEmulator
import HVFileCopy
import HVServiceKit
import HVSystem
import HVTesting
import HVVSS
import HVWire
import Testing

// The hostile-input matrix: crafted host messages sent through the emulated kernel device to
// the real services (in process, behind the real channel runner). Each case asserts the exact
// HRESULT the host sees and that nothing was written where it must not be.

/// fcopy behind the emulator: copies allowed only into `in`; `outside/keep` must never change.
private final class FCopyRig: @unchecked Sendable {
    let dir: TempDir
    let inbox: String
    let outside: String
    let host: EmulatedHost
    let service: FileCopyService
    let runner: RelayChannelRunner

    init() async throws {
        dir = try TempDir("hvrel-hostile-")
        inbox = dir.path + "/in"
        outside = dir.path + "/outside"
        for d in [inbox, outside] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: false) }
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: outside + "/keep"))
        host = try EmulatedHost(root: dir.path, devices: [.fcopy])
        try host.start()
        service = FileCopyService(configuration: FileCopyConfiguration(allowedRoots: [inbox], fsync: false),
                                  environment: testEnvironment(root: dir.path))
        runner = try RelayChannelRunner(service: service, environment: testEnvironment(root: dir.path), status: StatusBoard(),
                                        settings: fastRunnerSettings())
        try runner.start()
        #expect(await host.fcopy.device.waitForRegistration(count: 1, timeout: .seconds(10)))
    }

    func stop() {
        runner.stop()
        host.stop()
    }

    func start(_ name: String, path: String? = nil, flags: FCopyFlags = [], size: UInt64 = 10) async -> HResult {
        await host.fcopy.send(.start(FCopyStart(fileName: name, pathName: path ?? inbox, flags: flags, fileSize: size)), "START_FILE_COPY")
    }

    func write(_ bytes: [UInt8], at offset: UInt64) async -> HResult {
        await host.fcopy.send(.write(FCopyWrite(offset: offset, data: bytes[...])), "WRITE_TO_FILE")
    }

    /// Nothing outside the inbox changed, and the inbox holds exactly `inboxFiles`.
    func expectUntouched(inbox inboxFiles: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(tree(outside) == ["keep"], sourceLocation: sourceLocation)
        #expect(FileManager.default.contents(atPath: outside + "/keep") == Data([1, 2, 3]), sourceLocation: sourceLocation)
        #expect(tree(inbox) == inboxFiles, sourceLocation: sourceLocation)
        let top = Set(tree(dir.path).filter { !$0.contains("/") })
        #expect(top.isSubset(of: ["in", "outside", "dev", "state", "run", "etc"]), "\(top)", sourceLocation: sourceLocation)
    }
}

/// A START message with raw name fields (for strings without NUL and invalid UTF-8).
private func rawStart(fileName: [UInt8], pathName: [UInt8], size: UInt64 = 1) -> [UInt8] {
    var w = ByteWriter(size: FCopyLayout.startSize)
    w.u32(FCopyOperation.startFileCopy.rawValue, at: FCopyLayout.operation)
    w.copy(fileName.prefix(FCopyLayout.nameBytes), at: FCopyLayout.fileName)
    w.copy(pathName.prefix(FCopyLayout.nameBytes), at: FCopyLayout.pathName)
    w.u64(size, at: FCopyLayout.fileSize)
    return w.bytes
}

@Suite("Hostile input: file copy")
struct FileCopyHostileTests {
    @Test("names that try to leave the destination are invalid arguments", arguments: [
        "../escape", "..", ".", "a/b", "/etc/passwd", "", "x/../../outside/keep",
    ])
    func escapingNames(name: String) async throws {
        let rig = try await FCopyRig()
        defer { rig.stop() }
        #expect(await rig.start(name, flags: [.overwrite]) == .invalidArgument)
        rig.expectUntouched()
    }

    @Test("paths with '..', outside the allowed root, or relative are refused")
    func escapingPaths() async throws {
        let rig = try await FCopyRig()
        defer { rig.stop() }
        #expect(await rig.start("f", path: rig.inbox + "/../outside") == .invalidArgument)
        #expect(await rig.start("keep", path: rig.outside, flags: [.overwrite]) == .fail)
        #expect(await rig.start("passwd", path: "/etc", flags: [.overwrite]) == .fail)
        // A relative path is taken from / (as the reference daemon, running in /, would): /in
        // is outside the allowed root.
        #expect(await rig.start("f", path: "in") == .fail)
        rig.expectUntouched()
    }

    @Test("a symlink in the path or as the target is never followed")
    func symlinks() async throws {
        let rig = try await FCopyRig()
        defer { rig.stop() }
        try FileManager.default.createSymbolicLink(atPath: rig.inbox + "/dirlink", withDestinationPath: rig.outside)
        try FileManager.default.createSymbolicLink(atPath: rig.inbox + "/filelink", withDestinationPath: rig.outside + "/keep")
        #expect(await rig.start("keep", path: rig.inbox + "/dirlink", flags: [.overwrite]) == .fail)
        #expect(await rig.start("new", path: rig.inbox + "/dirlink/sub", flags: [.createPath]) == .fail)
        #expect(await rig.start("filelink") == .alreadyExists)
        // With OVER_WRITE the link is refused at START or at COMPLETE; either way it survives.
        let st = await rig.start("filelink", flags: [.overwrite], size: 2)
        if st == .ok {
            #expect(await rig.write([9, 9], at: 0) == .ok)
            #expect(await rig.host.fcopy.send(.complete, "COMPLETE_FCOPY") == .fail)
        } else {
            #expect(st == .fail)
        }
        rig.expectUntouched(inbox: ["dirlink", "filelink"])
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: rig.inbox + "/filelink") == rig.outside + "/keep")
    }

    @Test("device files and FIFOs are never written", .enabled(if: getuid() == 0, "needs root: mknod"))
    func deviceFiles() async throws {
        let rig = try await FCopyRig()
        defer { rig.stop() }
        #expect(mknod(rig.inbox + "/null", S_IFCHR | 0o600, dev_t(0x103)) == 0)
        #expect(mkfifo(rig.inbox + "/fifo", 0o600) == 0)
        for name in ["null", "fifo"] {
            #expect(await rig.start(name) == .alreadyExists, "\(name)")
            let st = await rig.start(name, flags: [.overwrite], size: 1)
            if st == .ok {
                #expect(await rig.write([1], at: 0) == .ok)
                #expect(await rig.host.fcopy.send(.complete, "COMPLETE_FCOPY") == .fail, "\(name)")
            } else {
                #expect(st == .fail, "\(name)")
            }
        }
        rig.expectUntouched(inbox: ["fifo", "null"])
    }

    @Test("fragments past the announced size are refused and end the copy; overlapping ones overwrite")
    func fragments() async throws {
        let rig = try await FCopyRig()
        defer { rig.stop() }
        #expect(await rig.start("past", size: 10) == .ok)
        #expect(await rig.write([1, 2, 3], at: 8) == .invalidArgument)
        #expect(await rig.write([1], at: 0) == .fail)  // the copy ended with the bad fragment
        #expect(await rig.host.fcopy.send(.complete, "COMPLETE_FCOPY") == .fail)
        #expect(await rig.start("far", size: 10) == .ok)
        #expect(await rig.write([1], at: UInt64.max) == .invalidArgument)
        rig.expectUntouched()

        #expect(await rig.start("overlap", size: 6) == .ok)
        #expect(await rig.write([1, 1, 1, 1], at: 0) == .ok)
        #expect(await rig.write([2, 2, 2, 2], at: 2) == .ok)
        #expect(await rig.host.fcopy.send(.complete, "COMPLETE_FCOPY") == .ok)
        #expect(FileManager.default.contents(atPath: rig.inbox + "/overlap") == Data([1, 1, 2, 2, 2, 2]))
        // Fewer bytes than announced: nothing is installed.
        #expect(await rig.start("short", size: 6) == .ok)
        #expect(await rig.write([1, 1], at: 0) == .ok)
        #expect(await rig.host.fcopy.send(.complete, "COMPLETE_FCOPY") == .fail)
        rig.expectUntouched(inbox: ["overlap"])
    }

    @Test("sequence errors: WRITE or COMPLETE without START, duplicate START, unknown operations")
    func sequences() async throws {
        let rig = try await FCopyRig()
        defer { rig.stop() }
        #expect(await rig.write([1], at: 0) == .fail)
        #expect(await rig.host.fcopy.send(.complete, "COMPLETE_FCOPY") == .fail)
        #expect(await rig.host.fcopy.send(.cancel, "CANCEL_FCOPY") == .ok)
        // A second START abandons the first copy (its temporary file goes) and starts anew.
        #expect(await rig.start("first", size: 2) == .ok)
        #expect(await rig.write([1, 1], at: 0) == .ok)
        #expect(await rig.start("second", size: 1) == .ok)
        #expect(await rig.write([5], at: 0) == .ok)
        #expect(await rig.host.fcopy.send(.complete, "COMPLETE_FCOPY") == .ok)
        #expect(FileManager.default.contents(atPath: rig.inbox + "/second") == Data([5]))
        for op: UInt32 in [4, 5, 99, 0xFFFF_FFFF] {
            var m = [UInt8](repeating: 0, count: FCopyLayout.startSize)
            m.withUnsafeMutableBytes { $0.storeBytes(of: op.littleEndian, as: UInt32.self) }
            #expect(await rig.host.fcopy.sendRaw(m, "OP \(op)") == .fail, "op \(op)")
        }
        rig.expectUntouched(inbox: ["second"])
    }

    @Test("strings without NUL and invalid UTF-8 in names are invalid arguments")
    func badStrings() async throws {
        let rig = try await FCopyRig()
        defer { rig.stop() }
        let path = Array(rig.inbox.utf8)
        let cases: [[UInt8]] = [
            rawStart(fileName: [UInt8](repeating: 0x61, count: FCopyLayout.nameBytes), pathName: path),
            rawStart(fileName: Array("ok".utf8), pathName: [UInt8](repeating: 0x2F, count: FCopyLayout.nameBytes)),
            rawStart(fileName: [0xC3, 0x28, 0], pathName: path),
            rawStart(fileName: [0xED, 0xA0, 0x80, 0], pathName: path),  // a UTF-16 surrogate in UTF-8
            rawStart(fileName: [0x66, 0], pathName: path + [0xFF, 0]),
        ]
        for (i, m) in cases.enumerated() {
            #expect(await rig.host.fcopy.sendRaw(m, "START_FILE_COPY") == .invalidArgument, "case \(i)")
        }
        rig.expectUntouched()
    }

    @Test("messages of every wrong length are answered E_FAIL and leave nothing")
    func wrongLengths() async throws {
        let rig = try await FCopyRig()
        defer { rig.stop() }
        let start = FCopyRequest.start(FCopyStart(fileName: "len", pathName: rig.inbox, flags: [], fileSize: 1)).encode()
        let write = FCopyRequest.write(FCopyWrite(offset: 0, data: [1][...])).encode()
        for n in [0, 1, 3, 35, 36, 1000, 1087, 1089, 2000, 6196, 8000] {
            var m = Array(start.prefix(n))
            if n > start.count { m += [UInt8](repeating: 0, count: n - start.count) }
            #expect(await rig.host.fcopy.sendRaw(m, "START len \(n)") == .fail, "START of \(n) bytes")
        }
        for n in [0, 3, 36, 52, 1088, 6195, 6197, 8000] {
            var m = Array(write.prefix(n))
            if n > write.count { m += [UInt8](repeating: 0, count: n - write.count) }
            #expect(await rig.host.fcopy.sendRaw(m, "WRITE len \(n)") == .fail, "WRITE of \(n) bytes")
        }
        rig.expectUntouched()
    }
}

@Suite("Hostile input: VSS")
struct VSSHostileTests {
    private func rig() async throws -> (TempDir, EmulatedHost, VSSService, RelayChannelRunner) {
        let dir = try TempDir("hvrel-vss-hostile-")
        let host = try EmulatedHost(root: dir.path, devices: [.vss])
        try host.start()
        // Emulated with no allow-list: FREEZE is refused, nothing real is ever frozen.
        let service = VSSService(environment: testEnvironment(root: dir.path),
                                 configuration: VSSConfiguration(hooksDirectory: dir.path + "/none"), logGate: LogGate())
        let runner = try RelayChannelRunner(service: service, environment: testEnvironment(root: dir.path), status: StatusBoard(),
                                            settings: fastRunnerSettings())
        try runner.start()
        #expect(await host.vss.device.waitForRegistration(count: 1, timeout: .seconds(10)))
        return (dir, host, service, runner)
    }

    @Test("unknown operation codes are answered S_OK; FREEZE without an allow-list E_FAIL")
    func unknownOperations() async throws {
        let (dir, host, service, runner) = try await rig()
        defer { runner.stop(); host.stop(); service.shutdown(); _ = dir }
        for op: UInt8 in [3, 4, 8, 9, 42, 200, 255] {
            #expect(await host.vss.request(rawOperation: op) == .ok, "op \(op)")
        }
        #expect(await host.vss.freeze() == .fail)
        #expect(await host.vss.thaw() == .ok)
        #expect(!service.status().isFrozen)
    }

    @Test("VSS messages of 1…11 bytes are E_FAIL; longer ones are read as the kernel's; an empty one resets the channel")
    func wrongLengths() async throws {
        let (dir, host, service, runner) = try await rig()
        defer { runner.stop(); host.stop(); service.shutdown(); _ = dir }
        let thaw = VSSRequest(operation: .thaw).encode()
        // A zero-length read is end-of-file on the relay: the daemon reopens and re-registers.
        let empty = await host.vss.device.submit(operation: "THAW len 0", bytes: [])
        #expect(empty.kernelStatus == .fail)
        #expect(await host.vss.device.waitForRegistration(count: 2, timeout: .seconds(10)), "\(host.events)")
        for n in 1..<12 {
            let out = await host.vss.device.submit(operation: "THAW len \(n)", bytes: Array(thaw.prefix(n)))
            guard case .replied(let bytes) = out else {
                Issue.record("length \(n): \(out)")
                continue
            }
            #expect(try VSSReply.decode(bytes).status == .fail, "length \(n)")
        }
        let out = await host.vss.device.submit(operation: "THAW long", bytes: thaw + [UInt8](repeating: 0xEE, count: 100))
        if case .replied(let bytes) = out { #expect(try VSSReply.decode(bytes).status == .ok) } else { Issue.record("\(out)") }
    }
}

@Suite("Hostile input: UTF-16 names on the VMBus file-copy channel")
struct UTF16NameTests {
    /// A START body with `unit` written as the first UTF-16 unit of the file name (and, when
    /// `terminate` is false, no NUL anywhere in the field).
    private func startBody(firstUnit unit: UInt16, terminate: Bool = true) throws -> [UInt8] {
        let start = FCopyWireMessage.startCopy(.init(fileName: "a", pathName: "C:\\in", flags: [], fileSize: 1))
        var body = try start.encode()
        let nameOffset = 36
        body[nameOffset] = UInt8(unit & 0xFF)
        body[nameOffset + 1] = UInt8(unit >> 8)
        if !terminate {
            for i in stride(from: nameOffset, to: nameOffset + 520, by: 2) where i > nameOffset {
                body[i] = 0x62
                body[i + 1] = 0
            }
        }
        return body
    }

    @Test("lone surrogates and unterminated names are refused as invalid fields", arguments: [UInt16(0xD800), 0xDBFF, 0xDC00, 0xDFFF])
    func loneSurrogates(unit: UInt16) throws {
        #expect(throws: WireError.self) { _ = try FCopyWireMessage.decode(body: try startBody(firstUnit: unit)) }
    }

    @Test("a name without a NUL in its 260 units is refused; a valid one decodes")
    func unterminated() throws {
        #expect(throws: WireError.self) { _ = try FCopyWireMessage.decode(body: try startBody(firstUnit: 0x61, terminate: false)) }
        guard case .startCopy(let s) = try FCopyWireMessage.decode(body: try startBody(firstUnit: 0x7A)) else {
            Issue.record("not a START")
            return
        }
        #expect(s.fileName == "z")
    }
}
