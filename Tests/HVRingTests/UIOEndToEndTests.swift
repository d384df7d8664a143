import Foundation
import HVEmulator
import HVRing
import HVSystem
import HVTransport
import HVWire
import Testing

/// A temporary device root, removed when the test ends (even on failure).
final class TemporaryDeviceRoot: Sendable {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("hvguest-ring-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A guest that answers on its own OS thread, like the daemon's channel thread.
final class GuestLoop: @unchecked Sendable {
    let stop: EventFD
    let errors = Locked<[String]>([])
    let handled = Locked(0)
    private var thread: OSThread?

    /// Opens the channel (which blocks until the host accepts) and serves until stopped.
    init(deviceRoot: String, classID: String, supported: ICServiceVersions) throws {
        let stop = try EventFD()
        self.stop = stop
        let errors = self.errors
        let handled = self.handled
        thread = try OSThread(name: "guest-uio") {
            do {
                let channel = try UIOChannel.open(classID: classID, deviceRoot: deviceRoot)
                defer { channel.close() }
                try channel.serve(until: stop) { payload, _ in
                    handled.withLock { $0 += 1 }
                    guard let header = try? ICMessageHeader.decode(from: payload) else { return false }
                    if header.messageType == .negotiate {
                        guard let result = try? ICNegotiation.respond(to: payload, supported: supported) else { return false }
                        payload = result.response
                        return true
                    }
                    // Echo with every data byte inverted, so the host can tell the guest touched it.
                    for i in ICMessageHeader.size..<payload.count { payload[i] = ~payload[i] }
                    return (try? ICMessageHeader.markResponse(in: &payload, status: .ok)) != nil
                }
            } catch {
                errors.withLock { $0.append("\(error)") }
            }
        }
    }

    func finish() {
        stop.signal()
        thread?.join()
        thread = nil
    }

    deinit { finish() }
}

@Suite(.serialized) struct UIOEndToEndTests {
    static let fcopyClass = "34d14be3-dee4-41c8-9ae7-6b174977c192"

    @Test func emulatorCreatesTheSysfsTreeTheGuestFinds() throws {
        let root = try TemporaryDeviceRoot()
        let host = try UIOHost(deviceRoot: root.path, configuration: .fcopy(uioIndex: 3))
        defer { host.close() }
        let base = root.path + "/sys/bus/vmbus/devices/eb765408-105f-49b6-b4aa-c123b64d17d4"
        #expect(try String(contentsOfFile: base + "/class_id", encoding: .utf8) == "{34d14be3-dee4-41c8-9ae7-6b174977c192}\n")
        #expect(try String(contentsOfFile: base + "/device_id", encoding: .utf8) == "{eb765408-105f-49b6-b4aa-c123b64d17d4}\n")
        #expect(fileKind(base + "/uio/uio3") == .directory)
        #expect(try String(contentsOfFile: root.path + "/sys/class/uio/uio3/maps/map0/size", encoding: .utf8) == "0x000000000000a000\n")
        #expect(fileKind(root.path + "/dev/uio3") == .socket)

        let device = try UIODevice.find(classID: "{34D14BE3-DEE4-41C8-9AE7-6B174977C192}", deviceRoot: root.path)
        #expect(device == UIODevice(instance: "eb765408-105f-49b6-b4aa-c123b64d17d4", uioName: "uio3", map0Size: 0xA000))
        #expect(throws: UIOChannelError.deviceNotFound(classID: "0e0b6031-5213-4934-818b-38d90ced39db")) {
            try UIODevice.find(classID: "0e0b6031-5213-4934-818b-38d90ced39db", deviceRoot: root.path)
        }
    }

    @Test func unboundAndMalformedDevicesAreReported() throws {
        let root = try TemporaryDeviceRoot()
        let devices = root.path + "/sys/bus/vmbus/devices/"
        try FileManager.default.createDirectory(atPath: devices + "inst-a", withIntermediateDirectories: true)
        try "{0e0b6031-5213-4934-818b-38d90ced39db}\n".write(toFile: devices + "inst-a/class_id", atomically: false, encoding: .utf8)
        #expect(throws: UIOChannelError.notBound(instance: "inst-a")) {
            try UIODevice.find(classID: "0e0b6031-5213-4934-818b-38d90ced39db", deviceRoot: root.path)
        }
        try FileManager.default.createDirectory(atPath: devices + "inst-a/uio/uio7", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root.path + "/sys/class/uio/uio7/maps/map0", withIntermediateDirectories: true)
        try "4096\n".write(toFile: root.path + "/sys/class/uio/uio7/maps/map0/size", atomically: false, encoding: .utf8)
        #expect(throws: UIOChannelError.badAttribute(path: root.path + "/sys/class/uio/uio7/maps/map0/size", value: "4096")) {
            try UIODevice.find(classID: "0e0b6031-5213-4934-818b-38d90ced39db", deviceRoot: root.path)
        }
        try "0x4000\n".write(toFile: root.path + "/sys/class/uio/uio7/maps/map0/size", atomically: false, encoding: .utf8)
        #expect(try UIODevice.find(classID: "0e0b6031-5213-4934-818b-38d90ced39db", deviceRoot: root.path).map0Size == 0x4000)
        #expect(throws: UIOChannelError.deviceNotFound(classID: "abc")) { try UIODevice.find(classID: "abc", deviceRoot: root.path + "/nothing") }
    }

    @Test func negotiationAndThousandRoundTripsWrapTheRings() throws {
        let root = try TemporaryDeviceRoot()
        let host = try UIOHost(deviceRoot: root.path, configuration: .fcopy(uioIndex: 0))
        defer { host.close() }
        let guest = try GuestLoop(deviceRoot: root.path, classID: Self.fcopyClass, supported: .fcopy)
        defer { guest.finish() }

        try host.acceptGuest(timeoutMilliseconds: 5_000)
        let chosen = try host.negotiate(timeoutMilliseconds: 5_000)
        #expect(chosen.framework == ICVersion(3, 0))
        #expect(chosen.message == ICVersion(1, 1))

        var mismatches = 0
        var totalBytes = 0
        for i in 0..<1_000 {
            // 0…6223 bytes of body: up to a full fcopy WRITE, so the 16 KiB rings wrap often.
            let length = (i &* 1_237) % 6_196
            let body = (0..<length).map { UInt8(truncatingIfNeeded: $0 &+ i) }
            let request = host.makeRequest(body: body)
            let response = try host.send(icMessage: request, timeoutMilliseconds: 5_000)
            totalBytes += response.count
            let header = try ICMessageHeader.decode(from: response)
            let echoed = Array(response[ICMessageHeader.size...].prefix(length))
            if header.flags != [.transaction, .response] || header.status != .ok || header.messageType != .fcopy
                || echoed != body.map({ ~$0 }) || response.count != (28 + length + 7) & ~7
            {
                mismatches += 1
            }
        }
        #expect(mismatches == 0)
        // The data area is 0x4000 bytes; at least this many bytes went through each ring.
        #expect(totalBytes > 100 * 0x4000)
        guest.finish()
        #expect(guest.errors.current.isEmpty)
        #expect(guest.handled.current == 1_001)
    }

    @Test func guestDisconnectAndReconnect() throws {
        let root = try TemporaryDeviceRoot()
        let host = try UIOHost(deviceRoot: root.path, configuration: .fcopy(uioIndex: 1))
        defer { host.close() }

        var guest = try GuestLoop(deviceRoot: root.path, classID: Self.fcopyClass, supported: .fcopy)
        // send() accepts and negotiates on its own.
        let first = try host.send(icMessage: host.makeRequest(body: [1, 2, 3]), timeoutMilliseconds: 5_000)
        #expect(Array(first[28..<31]) == [0xFE, 0xFD, 0xFC])
        #expect(host.negotiatedVersions?.message == ICVersion(1, 1))
        guest.finish()
        #expect(guest.errors.current.isEmpty)

        // With the guest gone, a request times out waiting for a new guest.
        #expect(throws: UIOHostError.noGuest) {
            try host.send(icMessage: host.makeRequest(body: [4]), timeoutMilliseconds: 200)
        }
        #expect(host.isGuestConnected == false)
        #expect(host.negotiatedVersions == nil)

        guest = try GuestLoop(deviceRoot: root.path, classID: Self.fcopyClass, supported: .fcopy)
        let second = try host.send(icMessage: host.makeRequest(body: [9, 9]), timeoutMilliseconds: 5_000)
        #expect(Array(second[28..<30]) == [0xF6, 0xF6])
        #expect(host.connectionCount == 2)
        #expect(host.negotiatedVersions?.framework == ICVersion(3, 0))
        guest.finish()
        #expect(guest.errors.current.isEmpty)
    }

    @Test func negotiationMismatchIsReportedToTheHost() throws {
        let root = try TemporaryDeviceRoot()
        var configuration = UIOHost.Configuration.fcopy(uioIndex: 2)
        configuration.offeredVersions = ICServiceVersions(framework: [ICVersion(3, 0)], message: [ICVersion(2, 0)])
        let host = try UIOHost(deviceRoot: root.path, configuration: configuration)
        defer { host.close() }
        let guest = try GuestLoop(deviceRoot: root.path, classID: Self.fcopyClass, supported: .fcopy)
        defer { guest.finish() }
        try host.acceptGuest(timeoutMilliseconds: 5_000)
        #expect(throws: UIOHostError.negotiationFailed(status: .fail)) { try host.negotiate(timeoutMilliseconds: 5_000) }
    }

    @Test func unansweredRequestTimesOutAndGuestSeesStop() throws {
        let root = try TemporaryDeviceRoot()
        let host = try UIOHost(deviceRoot: root.path, configuration: .shutdown(uioIndex: 4))
        defer { host.close() }
        let opened = Locked<UIOChannel?>(nil)
        let opener = try OSThread(name: "guest-open") {
            opened.withLock { $0 = try? UIOChannel.open(classID: "0e0b6031-5213-4934-818b-38d90ced39db", deviceRoot: root.path) }
        }
        try host.acceptGuest(timeoutMilliseconds: 5_000)
        opener.join()
        let channel = try #require(opened.current)
        defer { channel.close() }
        #expect(channel.device.map0Size == 0xA000)
        #expect(channel.receiveRing.interruptMask == 0)

        // Nobody serves: the host times out, and the guest finds an interrupt and the packet.
        #expect(throws: UIOHostError.timedOut) { try host.sendRaw(payload: [1, 2, 3, 4], timeoutMilliseconds: 100) }
        let stop = try EventFD()
        #expect(try channel.waitForInterrupt(stop: stop, timeoutMilliseconds: 1_000) == .interrupt(count: 1))
        #expect(channel.receiveRing.interruptMask == 1)  // masked by the "kernel" before waking us
        var seen: [[UInt8]] = []
        #expect(try channel.processPendingPackets { payload, _ in
            seen.append(payload)
            return false
        } == 1)
        #expect(seen == [[1, 2, 3, 4, 0, 0, 0, 0]])
        #expect(channel.receiveRing.interruptMask == 0)
        #expect(try channel.waitForInterrupt(stop: stop, timeoutMilliseconds: 10) == .timedOut)
        stop.signal()
        #expect(try channel.waitForInterrupt(stop: stop, timeoutMilliseconds: 1_000) == .stopped)

        // The emulator going away is a disconnect for the guest.
        host.close()
        #expect(throws: UIOChannelError.disconnected) { try channel.waitForInterrupt(stop: nil, timeoutMilliseconds: 1_000) }
    }
}

@Suite(.serialized) struct UIOBackgroundAcceptTests {
    @Test func guestOpensWithoutWaitingForTheHostAndNegotiatesOnConnect() throws {
        let root = try TemporaryDeviceRoot()
        let host = try UIOHost(deviceRoot: root.path, configuration: .heartbeat(uioIndex: 5))
        defer { host.close() }
        try host.startAcceptingInBackground()

        let stop = try EventFD()
        let outcome = Locked<(negotiated: ICVersion?, malformed: Int, error: String?)>((nil, 0, nil))
        let guest = try OSThread(name: "guest-ic") {
            do {
                let channel = try UIOChannel.open(classID: "57164f39-9115-4e78-ab55-382f3bd5422d", deviceRoot: root.path)
                defer { channel.close() }
                var responder = ICResponder(versions: .heartbeat)
                try channel.serveIC(until: stop, responder: &responder) { payload, header in
                    // Heartbeat: increment seq_num (u64 at 28) and echo.
                    guard header.messageType == .heartbeat, payload.count >= 36 else { return false }
                    payload[28] &+= 1
                    return (try? ICMessageHeader.markResponse(in: &payload, status: .ok)) != nil
                }
                outcome.withLock { $0 = (responder.negotiated?.message, responder.malformedPackets, nil) }
            } catch {
                outcome.withLock { $0.error = "\(error)" }
            }
        }
        defer {
            stop.signal()
            guest.join()
        }

        // The acceptor negotiates by itself; wait for it.
        let deadline = monotonicNanoseconds() + 5_000_000_000
        while host.negotiatedVersions == nil && monotonicNanoseconds() < deadline { sleepMilliseconds(5) }
        #expect(host.negotiatedVersions?.framework == ICVersion(3, 0))
        #expect(host.negotiatedVersions?.message == ICVersion(3, 0))

        // A second opener is refused while the first holds the device.
        #expect(throws: UIOChannelError.self) {
            try UIOChannel.open(classID: "57164f39-9115-4e78-ab55-382f3bd5422d", deviceRoot: root.path, handshakeTimeoutMilliseconds: 2_000)
        }

        let response = try host.send(icMessage: host.makeRequest(body: [41] + [UInt8](repeating: 0, count: 39)), timeoutMilliseconds: 5_000)
        #expect(response[28] == 42)
        #expect(try ICMessageHeader.decode(from: response).flags == [.transaction, .response])
        // Too short for an IC header: dropped, not answered.
        #expect(throws: UIOHostError.timedOut) { try host.sendRaw(payload: [1, 2, 3], timeoutMilliseconds: 100) }

        stop.signal()
        guest.join()
        #expect(outcome.current.error == nil)
        #expect(outcome.current.negotiated == ICVersion(3, 0))
        #expect(outcome.current.malformed == 1)
        #expect(host.connectionCount == 1)
    }
}

@Suite(.serialized) struct UIOHandshakeTests {
    /// A hand-made fake device whose "kernel" sends `size` with `memorySize` bytes of memory
    /// (or no descriptor); returns what the guest's open threw.
    func openAgainstBadHandshake(size: UInt32, memorySize: Int?) throws -> UIOChannelError? {
        let root = try TemporaryDeviceRoot()
        let devices = root.path + "/sys/bus/vmbus/devices/inst/"
        try FileManager.default.createDirectory(atPath: devices + "uio/uio9", withIntermediateDirectories: true)
        try "{9527e630-d0ae-497b-adce-e80ab0175caf}\n".write(toFile: devices + "class_id", atomically: false, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: root.path + "/sys/class/uio/uio9/maps/map0", withIntermediateDirectories: true)
        try "0xa000\n".write(toFile: root.path + "/sys/class/uio/uio9/maps/map0/size", atomically: false, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: root.path + "/dev", withIntermediateDirectories: true)
        let listener = try SeqPacket.listen(root.path + "/dev/uio9")
        let failure = Locked<UIOChannelError?>(nil)
        let guest = try OSThread(name: "guest-bad") {
            do {
                _ = try UIOChannel.open(classID: "9527e630-d0ae-497b-adce-e80ab0175caf", deviceRoot: root.path, handshakeTimeoutMilliseconds: 2_000)
            } catch let error as UIOChannelError {
                failure.withLock { $0 = error }
            } catch {}
        }
        _ = try poll([(listener.fd, .readable)], timeoutMilliseconds: 2_000)
        let connection = try SeqPacket.accept(listener)
        let sizeBytes = (0..<4).map { UInt8(truncatingIfNeeded: size >> (8 * UInt32($0))) }
        if let memorySize {
            try connection.send(sizeBytes, passing: try SharedMemory.create(name: "bad", size: memorySize))
        } else {
            try connection.send(sizeBytes)
        }
        guest.join()
        return failure.current
    }

    @Test func sizeMismatchMissingDescriptorAndShortMemoryAreRefused() throws {
        let mismatch = try openAgainstBadHandshake(size: 0x8000, memorySize: 0x8000)
        #expect(mismatch == .handshake("shared memory is 32768 bytes, sysfs map0 says 40960"))
        let noDescriptor = try #require(try openAgainstBadHandshake(size: 0xA000, memorySize: nil))
        #expect(noDescriptor.description.contains("carries no descriptor"))
        let short = try #require(try openAgainstBadHandshake(size: 0xA000, memorySize: 0x1000))
        #expect(short.description.contains("is smaller than 40960 bytes"))
    }
}

/// Round-trip rate of fcopy-sized requests through emulator + UIOChannel: the transport's
/// ceiling for file copy. Opt-in (HV_RING_BENCH=1), best run with `-c release`.
@Suite struct UIOThroughputBenchmark {
    @Test(.enabled(if: environment("HV_RING_BENCH") != nil, "set HV_RING_BENCH=1 to measure"))
    func fcopySizedRoundTrips() throws {
        let root = try TemporaryDeviceRoot()
        let host = try UIOHost(deviceRoot: root.path, configuration: .fcopy(uioIndex: 6))
        defer { host.close() }
        let stop = try EventFD()
        let guest = try OSThread(name: "guest-bench") {
            guard let channel = try? UIOChannel.open(classID: UIOEndToEndTests.fcopyClass, deviceRoot: root.path) else { return }
            defer { channel.close() }
            var responder = ICResponder(versions: .fcopy)
            try? channel.serveIC(until: stop, responder: &responder) { payload, _ in
                (try? ICMessageHeader.markResponse(in: &payload, status: .ok)) != nil
            }
        }
        defer {
            stop.signal()
            guest.join()
        }
        try host.acceptGuest(timeoutMilliseconds: 5_000)
        try host.negotiate(timeoutMilliseconds: 5_000)
        let body = try FCopyWireMessage.writeToFile(offset: 0, data: [UInt8](repeating: 0x5A, count: 6144)[...]).encode()
        let request = host.makeRequest(body: body)
        let count = 20_000
        let start = monotonicNanoseconds()
        for _ in 0..<count { _ = try host.send(icMessage: request, timeoutMilliseconds: 5_000) }
        let seconds = Double(monotonicNanoseconds() - start) / 1e9
        let mbPerSecond = Double(count * 6144) / seconds / 1e6
        print("UIO fcopy-sized round trips: \(Int(Double(count) / seconds))/s, \(Int(mbPerSecond)) MB/s of file data")
        #expect(mbPerSecond > 10)
    }
}
