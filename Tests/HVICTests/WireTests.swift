import HVWire
import Testing

@Suite struct ICWireTests {
    @Test func shutdownMessageGoldenBytes() throws {
        let m = ShutdownMessage(reasonCode: 0x0102_0304, timeoutSeconds: 30, flags: [.force, .reboot], displayMessage: "Hé")
        let bytes = m.encode()
        #expect(bytes.count == 2060)
        #expect(
            Array(bytes[0..<16]) == [
                0x04, 0x03, 0x02, 0x01,  // reason_code
                0x1E, 0x00, 0x00, 0x00,  // timeout_seconds 30
                0x03, 0x00, 0x00, 0x00,  // flags force|reboot
                0x48, 0x00, 0xE9, 0x00,  // "H", "é" as UTF-16LE
            ])
        #expect(bytes[16] == 0 && bytes[17] == 0)  // NUL unit
        #expect(try ShutdownMessage.decode(body: bytes[...]) == m)
    }

    @Test func shutdownMessageIsStrictAboutSizeButLenientAboutText() throws {
        let good = ShutdownMessage(flags: [], displayMessage: "x").encode()
        #expect(throws: WireError.self) { try ShutdownMessage.decode(body: good[0..<2059]) }
        // A display message that fills the field without a NUL, or with an unpaired surrogate,
        // is still a valid request: the text is only logged.
        var full = good
        for i in stride(from: 12, to: 2060, by: 2) {
            full[i] = 0x41
            full[i + 1] = 0
        }
        #expect(try ShutdownMessage.decode(body: full[...]).displayMessage.count == 1024)
        var surrogate = good
        surrogate[12] = 0x00
        surrogate[13] = 0xD8
        #expect(try ShutdownMessage.decode(body: surrogate[...]).displayMessage == "\u{FFFD}")
        // Padding after the struct (ring alignment) is ignored.
        #expect(try ShutdownMessage.decode(body: (good + [0, 0, 0, 0])[...]).flags == [])
    }

    @Test func shutdownFlagsDescribeThemselves() {
        #expect(ShutdownFlags([]).description == "poweroff")
        #expect(ShutdownFlags([.force, .hibernate]).description == "force+hibernate")
        #expect(ShutdownFlags(rawValue: 0x11).description == "force+0x10")
    }

    @Test func timeSyncV3GoldenBytes() throws {
        let m = TimeSyncMessage(parentTime: 0x0102_0304_0506_0708, childTime: 9, roundTripTime: 10, flags: .sample)
        let bytes = m.encode()
        #expect(
            bytes == [
                0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,  // parenttime
                9, 0, 0, 0, 0, 0, 0, 0,  // childtime
                10, 0, 0, 0, 0, 0, 0, 0,  // roundtriptime
                2,  // flags SAMPLE
            ])
        #expect(try TimeSyncMessage.decode(body: bytes[...]) == m)
        #expect(throws: WireError.self) { try TimeSyncMessage.decode(body: bytes[0..<24]) }
    }

    @Test func timeSyncV4GoldenBytes() throws {
        let m = TimeSyncReferenceMessage(parentTime: 1, vmReferenceTime: 0xAABB, flags: .sync, leapFlags: -1, stratum: 3)
        let bytes = m.encode()
        #expect(
            bytes == [
                1, 0, 0, 0, 0, 0, 0, 0,  // parenttime
                0xBB, 0xAA, 0, 0, 0, 0, 0, 0,  // vmreferencetime
                1,  // flags SYNC
                0xFF,  // leapflags -1
                3,  // stratum
                0, 0, 0,  // reserved
            ])
        #expect(try TimeSyncReferenceMessage.decode(body: bytes[...]) == m)
        #expect(throws: WireError.self) { try TimeSyncReferenceMessage.decode(body: bytes[0..<21]) }
    }

    @Test func timeSyncFlagsNames() {
        #expect(TimeSyncFlags.probe.description == "PROBE")
        #expect(TimeSyncFlags.sync.description == "SYNC")
        #expect(TimeSyncFlags.sample.description == "SAMPLE")
    }

    @Test func fileTimeConversions() {
        #expect(FileTime.unixNanoseconds(116_444_736_000_000_000) == 0)
        #expect(FileTime.unixNanoseconds(116_444_736_000_000_001) == 100)
        #expect(FileTime.unixNanoseconds(116_444_735_999_999_999) == -100)
        #expect(FileTime.unixNanoseconds(UInt64.max) == nil)
        #expect(FileTime.ticks(unixNanoseconds: 1_700_000_000_123_456_789) == 116_444_736_000_000_000 + 17_000_000_001_234_567)
        // Int64.min ns is in 1677, still after 1601.
        #expect(FileTime.ticks(unixNanoseconds: Int64.min) == 116_444_736_000_000_000 - 92_233_720_368_547_758)
    }

    @Test func heartbeatGoldenBytesAndIncrement() throws {
        let bytes = HeartbeatMessage(sequenceNumber: 0x1122).encode()
        #expect(bytes.count == 40)
        #expect(Array(bytes[0..<8]) == [0x22, 0x11, 0, 0, 0, 0, 0, 0])
        #expect(bytes[8...].allSatisfy { $0 == 0 })
        var payload = [UInt8](repeating: 0, count: 28) + HeartbeatMessage(sequenceNumber: .max).encode()
        #expect(try HeartbeatMessage.incrementSequence(inPayload: &payload) == 0)  // wraps, never traps
        #expect(Array(payload[28..<36]) == [0, 0, 0, 0, 0, 0, 0, 0])
        // The kernel needs only the sequence number.
        var short = [UInt8](repeating: 0, count: 28) + [5, 0, 0, 0, 0, 0, 0, 0]
        #expect(try HeartbeatMessage.incrementSequence(inPayload: &short) == 6)
        var tooShort = [UInt8](repeating: 0, count: 35)
        #expect(throws: WireError.self) { try HeartbeatMessage.incrementSequence(inPayload: &tooShort) }
    }
}
