import HVServiceKit
import HVWire
import Testing

@testable import HVFileCopy

func startMessage(path: String, name: String, flags: FCopyFlags = [], size: UInt64) -> [UInt8] {
    FCopyRequest.start(FCopyStart(fileName: name, pathName: path, flags: flags, fileSize: size)).encode()
}

func writeMessage(offset: UInt64, _ data: ArraySlice<UInt8>) -> [UInt8] {
    FCopyRequest.write(FCopyWrite(offset: offset, data: data)).encode()
}

@Suite struct ServiceTests {
    @Test func registration() throws {
        let service = FileCopyService(engine: makeEngine())
        #expect(service.name == .fcopy)
        #expect(service.devicePath == "dev/vmbus/hv_fcopy")
        #expect(service.registrationMessage() == [1, 0, 0, 0])
        #expect(try service.registrationCompleted(reply: [1, 0, 0, 0]) == "version 1")
        #expect(throws: (any Error).self) { try service.registrationCompleted(reply: [0, 0, 0, 0]) }
        #expect(throws: (any Error).self) { try service.registrationCompleted(reply: [1, 0]) }
    }

    @Test func copyThroughTheCharDeviceMessages() throws {
        let scratch = try Scratch()
        let service = FileCopyService(engine: makeEngine())
        let data = pseudoRandomBytes(6145 + 6144)
        let start = service.handle(request: startMessage(path: scratch.path + "/子", name: "😀.bin", flags: [.createPath], size: UInt64(data.count)))
        #expect(start.bytes == [0, 0, 0, 0])
        #expect(start.operation == "START_FILE_COPY")
        #expect(start.status == .ok)
        var offset = 0
        while offset < data.count {
            let n = min(6144, data.count - offset)
            let reply = service.handle(request: writeMessage(offset: UInt64(offset), data[offset..<(offset + n)]))
            #expect(reply.bytes == [0, 0, 0, 0])
            #expect(reply.operation == "WRITE_TO_FILE")
            offset += n
        }
        // The kernel relays COMPLETE as the host's raw bytes: longer than the header.
        var complete = FCopyRequest.complete.encode()
        complete += [UInt8](repeating: 0xAB, count: 28)
        let done = service.handle(request: complete)
        #expect(done.bytes == [0, 0, 0, 0])
        #expect(done.operation == "COMPLETE_FCOPY")
        #expect(scratch.read("子/😀.bin") == data)
        #expect(scratch.names("子") == ["😀.bin"])
    }

    @Test func repliesCarryTheEngineHResults() throws {
        let scratch = try Scratch()
        try scratch.write("exists", [1])
        let service = FileCopyService(engine: makeEngine())
        let exists = service.handle(request: startMessage(path: scratch.path, name: "exists", size: 1))
        #expect(exists.bytes == [0x50, 0x00, 0x07, 0x80])  // HV_ERROR_ALREADY_EXISTS
        #expect(exists.status == .alreadyExists)
        let missing = service.handle(request: startMessage(path: scratch.sub("nope"), name: "f", size: 1))
        #expect(missing.bytes == [0x05, 0x40, 0x00, 0x80])  // HV_E_FAIL
        let dotdot = service.handle(request: startMessage(path: scratch.sub(".."), name: "f", size: 1))
        #expect(dotdot.bytes == [0x57, 0x00, 0x07, 0x80])  // HV_INVALIDARG
        let cancel = service.handle(request: FCopyRequest.cancel.encode())
        #expect(cancel.bytes == [0, 0, 0, 0])
        #expect(cancel.operation == "CANCEL_FCOPY")
    }

    @Test func undecodableRequestsAreAnswered() throws {
        let scratch = try Scratch()
        let service = FileCopyService(engine: makeEngine())
        let unknown = service.handle(request: [7, 0, 0, 0] + [UInt8](repeating: 0, count: 60))
        #expect(unknown.bytes == HResult.fail.littleEndianBytes)
        #expect(unknown.operation == "UNKNOWN(7)")
        #expect(service.handle(request: [0, 0]).status == .fail)
        #expect(service.handle(request: []).status == .fail)
        #expect(service.handle(request: Array(startMessage(path: "/", name: "f", size: 1).prefix(500))).status == .fail)

        // Invalid UTF-8 in file_name → E_INVALIDARG.
        var bad = startMessage(path: scratch.path, name: "abc", size: 1)
        bad[FCopyLayout.fileName + 1] = 0xFF
        let invalid = service.handle(request: bad)
        #expect(invalid.status == .invalidArgument)
        #expect(invalid.bytes == [0x57, 0x00, 0x07, 0x80])
        #expect(scratch.names() == [])

        // An oversized fragment ends the copy in progress and leaves nothing.
        #expect(service.handle(request: startMessage(path: scratch.path, name: "f", size: 10_000)).status == .ok)
        #expect(service.handle(request: writeMessage(offset: 0, [1, 2, 3])).status == .ok)
        var oversized = writeMessage(offset: 3, [4])
        oversized[FCopyLayout.writeLength] = 0x01
        oversized[FCopyLayout.writeLength + 1] = 0x19  // 0x1901 = 6401 > 6144
        #expect(service.handle(request: oversized).status == .invalidArgument)
        #expect(!service.engine.isActive)
        #expect(scratch.names() == [])
    }

    @Test func channelResetRemovesThePartialCopy() throws {
        let scratch = try Scratch()
        let service = FileCopyService(engine: makeEngine())
        #expect(service.handle(request: startMessage(path: scratch.path, name: "f", size: 100_000)).status == .ok)
        #expect(service.handle(request: writeMessage(offset: 0, pseudoRandomBytes(6144)[...])).status == .ok)
        #expect(scratch.names().count == 1)
        service.channelReset(reason: "device closed")
        #expect(scratch.names() == [])
        #expect(service.handle(request: writeMessage(offset: 6144, [1])).status == .fail)
    }
}

@Suite struct ServiceGarbageTests {
    /// Whole, truncated, oversized and random messages: always a 4-byte answer, never a trap,
    /// never a file outside the allowed root.
    @Test func garbageIsAnsweredNeverTrapped() throws {
        let scratch = try Scratch()
        try scratch.mkdir("allowed")
        let service = FileCopyService(engine: makeEngine(FileCopyConfiguration(allowedRoots: [scratch.sub("allowed")])))
        var generator = SystemRandomNumberGenerator()
        let valid = [
            startMessage(path: scratch.sub("allowed"), name: "f", flags: [.overwrite], size: 9000),
            writeMessage(offset: 0, pseudoRandomBytes(6144)[...]),
            FCopyRequest.complete.encode(), FCopyRequest.cancel.encode(),
        ]
        for round in 0..<3000 {
            var message: [UInt8]
            switch round % 4 {
            case 0:  // a valid message cut short or padded
                let base = valid[Int.random(in: 0..<valid.count, using: &generator)]
                let n = Int.random(in: 0...(base.count + 64), using: &generator)
                message = Array(base.prefix(n)) + [UInt8](repeating: 0x41, count: max(0, n - base.count))
            case 1:  // a valid message with random bytes flipped
                message = valid[Int.random(in: 0..<valid.count, using: &generator)]
                for _ in 0..<8 where !message.isEmpty {
                    message[Int.random(in: 0..<message.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                }
            default:  // noise with a plausible operation
                message = (0..<Int.random(in: 0...7000, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
                if message.count >= 4 { message[0] = UInt8.random(in: 0...4, using: &generator); message[1] = 0; message[2] = 0; message[3] = 0 }
            }
            let reply = service.handle(request: message)
            #expect(reply.bytes.count == 4)
            #expect(reply.bytes == FCopyReply.encode(reply.status))
        }
        service.channelReset(reason: "test over")
        #expect(scratch.tree().allSatisfy { $0 == "allowed" || $0.hasPrefix("allowed/") })
        #expect(scratch.names("allowed").allSatisfy { !FileCopyEngine.isTemporaryName($0) })
    }
}

extension HResult {
    var littleEndianBytes: [UInt8] { FCopyReply.encode(self) }
}
