import Glibc
import HVRing
import HVSystem
import Testing

/// Page-aligned zeroed memory for one or two rings, freed at the end of the test.
final class RingMemory: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let size: Int

    init(size: Int) {
        self.size = size
        base = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: size)
    }

    deinit { base.deallocate() }

    func ring() throws -> RingBuffer { try RingBuffer(base: base, size: size) }

    func u64(atData offset: Int) -> UInt64 { (base + 4096 + offset).loadUnaligned(as: UInt64.self) }
}

func pattern(_ count: Int, seed: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed &* 7 &+ 1) }
}

@Suite struct RingBufferTests {
    static let smallData = 256

    @Test("round trip starting at every 8-byte offset of the data area (wrap-around)",
          arguments: Array(stride(from: 0, to: 256, by: 8)))
    func wrapAroundAtEveryOffset(start: Int) throws {
        let memory = RingMemory(size: 4096 + Self.smallData)
        let ring = try memory.ring()
        for payloadLength in [0, 1, 7, 8, 13, 100, 200] {
            ring.writeIndex = UInt32(start)
            ring.readIndex = UInt32(start)
            let payload = pattern(payloadLength, seed: start)
            try ring.write(payload: payload, transactionID: 0x1122_3344_5566_7788 &+ UInt64(start))
            let footprint = try #require(RingBuffer.footprint(payloadLength: payloadLength))
            #expect(try ring.bytesToRead() == UInt32(footprint))
            #expect(ring.writeIndex == UInt32((start + footprint) % Self.smallData))
            // Trailer: the start write_index in the upper 32 bits, just before the new write_index.
            let trailerOffset = (start + footprint - 8) % Self.smallData
            #expect(memory.u64(atData: trailerOffset) == UInt64(start) << 32)

            var out: [UInt8] = []
            let result = try #require(try ring.read(into: &out))
            #expect(result.header.type == 6)
            #expect(result.header.offset8 == 2)
            #expect(result.header.transactionID == 0x1122_3344_5566_7788 &+ UInt64(start))
            let padded = (payloadLength + 7) & ~7
            #expect(result.payloadLength == padded)
            #expect(Array(out.prefix(payloadLength)) == payload)
            #expect(out.dropFirst(payloadLength).allSatisfy { $0 == 0 })
            #expect(ring.readIndex == ring.writeIndex)
            #expect(try ring.read(into: &out) == nil)
        }
    }

    @Test func descriptorPaddingAndTrailerBytes() throws {
        let memory = RingMemory(size: 4096 + 512)
        let ring = try memory.ring()
        // Poison the data area so padding must be written as zeros.
        (memory.base + 4096).initializeMemory(as: UInt8.self, repeating: 0xAA, count: 512)
        try ring.write(payload: [1, 2, 3, 4, 5], transactionID: 0xDEAD_BEEF, flags: 1)
        let bytes = Array(UnsafeRawBufferPointer(start: memory.base + 4096, count: 40))
        #expect(bytes == [
            0x06, 0x00,  // type VM_PKT_DATA_INBAND
            0x02, 0x00,  // offset8 = 2 (16-byte descriptor)
            0x03, 0x00,  // len8 = 3 (16 + 5 payload + 3 padding = 24 bytes)
            0x01, 0x00,  // flags (completion requested)
            0xEF, 0xBE, 0xAD, 0xDE, 0, 0, 0, 0,  // trans_id
            1, 2, 3, 4, 5,  // payload
            0, 0, 0,  // zero padding to 8
            0, 0, 0, 0, 0, 0, 0, 0,  // trailer: start write_index 0 << 32
            0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA,  // untouched
        ])
        #expect(ring.writeIndex == 32)
        try ring.write(payload: [9], transactionID: 2)
        #expect(memory.u64(atData: 32 + 24) == UInt64(32) << 32)
        #expect(RingBuffer.footprint(payloadLength: 0) == 24)
        #expect(RingBuffer.footprint(payloadLength: 6224) == 6248)  // fcopy WRITE (PROTOCOL §4.1)
        #expect(RingBuffer.footprint(payloadLength: 1116) == 1144)  // fcopy START
    }

    @Test func exactlyFullIsRefusedOneLessFits() throws {
        let memory = RingMemory(size: 4096 + Self.smallData)
        let ring = try memory.ring()
        // A packet as large as the whole data area can never be written (full ≠ empty).
        #expect(throws: RingError.packetTooLarge(payloadLength: 232)) {
            try ring.write(payload: [UInt8](repeating: 1, count: 232), transactionID: 1)
        }
        // 104 payload bytes → 16 + 104 + 8 = 128 bytes; 128 remain free afterwards.
        try ring.write(payload: [UInt8](repeating: 1, count: 104), transactionID: 1)
        #expect(try ring.bytesToWrite() == 128)
        // Another 128-byte packet would fill the ring exactly: refused, nothing written.
        #expect(throws: RingError.insufficientSpace(needed: 128, free: 128)) {
            try ring.write(payload: [UInt8](repeating: 2, count: 104), transactionID: 2)
        }
        #expect(ring.writeIndex == 128)
        // 96 payload bytes → 120 bytes < 128 free: fits, leaving 8 bytes free.
        try ring.write(payload: [UInt8](repeating: 2, count: 96), transactionID: 2)
        #expect(try ring.bytesToWrite() == 8)
        #expect(throws: RingError.insufficientSpace(needed: 24, free: 8)) {
            try ring.write(payload: [], transactionID: 3)
        }
        var out: [UInt8] = []
        #expect(try ring.read(into: &out)?.payloadLength == 104)
        #expect(try ring.read(into: &out)?.payloadLength == 96)
        #expect(try ring.bytesToWrite() == 256)
        #expect(throws: RingError.packetTooLarge(payloadLength: 600)) {
            try ring.write(payload: [UInt8](repeating: 0, count: 600), transactionID: 4)
        }
    }

    @Test func corruptIndicesThrow() throws {
        let memory = RingMemory(size: 4096 + Self.smallData)
        let ring = try memory.ring()
        var out: [UInt8] = []
        ring.writeIndex = 256
        #expect(throws: RingError.corruptIndex(field: "write_index", value: 256, dataSize: 256)) { try ring.read(into: &out) }
        ring.writeIndex = 0xFFFF_FFF8
        #expect(throws: RingError.corruptIndex(field: "write_index", value: 0xFFFF_FFF8, dataSize: 256)) {
            try ring.write(payload: [1], transactionID: 1)
        }
        ring.writeIndex = 12
        #expect(throws: RingError.corruptIndex(field: "write_index", value: 12, dataSize: 256)) { try ring.bytesToRead() }
        ring.writeIndex = 0
        ring.readIndex = 1000
        #expect(throws: RingError.corruptIndex(field: "read_index", value: 1000, dataSize: 256)) { try ring.read(into: &out) }
        #expect(throws: RingError.corruptIndex(field: "read_index", value: 1000, dataSize: 256)) {
            try ring.write(payload: [1], transactionID: 1)
        }
        #expect(throws: RingError.invalidRingSize(4096)) { try RingBuffer(base: memory.base, size: 4096) }
        #expect(throws: RingError.invalidRingSize(4096 + 100)) { try RingBuffer(base: memory.base, size: 4096 + 100) }
    }

    /// Writes a descriptor by hand at data offset 0 and publishes `published` bytes.
    func plant(_ memory: RingMemory, offset8: UInt16, length8: UInt16, published: UInt32) throws -> RingBuffer {
        let ring = try memory.ring()
        let word = UInt64(6) | UInt64(offset8) << 16 | UInt64(length8) << 32
        (memory.base + 4096).storeBytes(of: word.littleEndian, as: UInt64.self)
        ring.readIndex = 0
        ring.writeIndex = published
        return ring
    }

    @Test func corruptDescriptorsThrowAndLeaveTheRingAlone() throws {
        let memory = RingMemory(size: 4096 + Self.smallData)
        var out: [UInt8] = []
        // offset8 < 2: header shorter than the descriptor itself.
        var ring = try plant(memory, offset8: 1, length8: 4, published: 40)
        #expect(throws: RingError.corruptDescriptor(offset8: 1, length8: 4, readable: 40)) { try ring.read(into: &out) }
        // offset8 > len8: payload would have negative length.
        ring = try plant(memory, offset8: 5, length8: 4, published: 40)
        #expect(throws: RingError.corruptDescriptor(offset8: 5, length8: 4, readable: 40)) { try ring.read(into: &out) }
        // len8 beyond what the writer published (would read stale or foreign bytes).
        ring = try plant(memory, offset8: 2, length8: 40, published: 40)
        #expect(throws: RingError.corruptDescriptor(offset8: 2, length8: 40, readable: 40)) { try ring.read(into: &out) }
        // len8 larger than the ring itself.
        ring = try plant(memory, offset8: 2, length8: 0xFFFF, published: 248)
        #expect(throws: RingError.corruptDescriptor(offset8: 2, length8: 0xFFFF, readable: 248)) { try ring.peekHeader() }
        // Fewer readable bytes than a descriptor + trailer.
        ring = try plant(memory, offset8: 2, length8: 2, published: 16)
        #expect(throws: RingError.truncatedPacket(readable: 16)) { try ring.read(into: &out) }
        #expect(ring.readIndex == 0)
        // A valid one reads fine: 2 units header + 2 units payload + trailer = 40 bytes.
        ring = try plant(memory, offset8: 2, length8: 4, published: 40)
        #expect(try ring.read(into: &out)?.payloadLength == 16)
        #expect(ring.readIndex == 40)
    }

    @Test func smallCallerBufferKeepsThePacket() throws {
        let memory = RingMemory(size: 4096 + Self.smallData)
        let ring = try memory.ring()
        try ring.write(payload: pattern(40, seed: 1), transactionID: 9)
        let small = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 8)
        defer { small.deallocate() }
        #expect(throws: RingError.bufferTooSmall(needed: 40, capacity: 16)) { try ring.read(into: small) }
        let big = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 8)
        defer { big.deallocate() }
        let result = try #require(try ring.read(into: big))
        #expect(result.payloadLength == 40)
        #expect(Array(big.prefix(40)) == pattern(40, seed: 1))
    }

    @Test func interleavedWritesAndReadsKeepOrder() throws {
        let memory = RingMemory(size: 4096 + 1024)
        let ring = try memory.ring()
        var out: [UInt8] = []
        var written = 0
        var read = 0
        for round in 0..<500 {
            // Write up to three packets, then read up to two, so the ring keeps some backlog.
            for _ in 0..<3 {
                let p = pattern(written % 97, seed: written)
                do { try ring.write(payload: p, transactionID: UInt64(written)) } catch RingError.insufficientSpace { break }
                written += 1
            }
            for _ in 0..<(round % 3 == 0 ? 3 : 2) {
                guard let r = try ring.read(into: &out) else { break }
                #expect(r.header.transactionID == UInt64(read))
                #expect(Array(out.prefix(read % 97)) == pattern(read % 97, seed: read))
                read += 1
            }
        }
        while let r = try ring.read(into: &out) {
            #expect(r.header.transactionID == UInt64(read))
            read += 1
        }
        #expect(read == written)
        #expect(written > 1000)
    }

    @Test func signalRuleForWriter() throws {
        let memory = RingMemory(size: 4096 + 1024)
        let ring = try memory.ring()
        #expect(try ring.write(payload: [1], transactionID: 1) == true)  // empty before, unmasked
        #expect(try ring.write(payload: [2], transactionID: 2) == false)  // not empty before
        var out: [UInt8] = []
        _ = try ring.read(into: &out)
        _ = try ring.read(into: &out)
        ring.interruptMask = 1
        #expect(try ring.write(payload: [3], transactionID: 3) == false)  // masked
        _ = try ring.read(into: &out)
        ring.interruptMask = 0
        #expect(try ring.write(payload: [4], transactionID: 4) == true)
    }

    @Test func pendingSendSizeRuleForReader() throws {
        let memory = RingMemory(size: 4096 + 256)
        let ring = try memory.ring()
        var out: [UInt8] = []
        // Four 56-byte packets: 224 used, 32 free.
        for i in 0..<4 { try ring.write(payload: [UInt8](repeating: UInt8(i), count: 32), transactionID: UInt64(i)) }
        #expect(try ring.bytesToWrite() == 32)
        // Without the feature bit the rule never fires.
        ring.pendingSendSize = 60
        #expect(try ring.read(into: &out)?.shouldSignalWriter == false)  // 88 free
        ring.featureBits = RingBuffer.featurePendingSendSize
        ring.pendingSendSize = 100
        #expect(try ring.read(into: &out)?.shouldSignalWriter == true)  // 88 → 144 crosses 100
        ring.pendingSendSize = 100
        #expect(try ring.read(into: &out)?.shouldSignalWriter == false)  // 144 → 200: already above
        ring.pendingSendSize = 0
        #expect(try ring.read(into: &out)?.shouldSignalWriter == false)  // nobody waiting
    }

    @Test func ringPairSplitsMapZeroInHalves() throws {
        let memory = RingMemory(size: 2 * 0x5000)
        let pair = try RingPair(base: memory.base, totalSize: 2 * 0x5000)
        #expect(pair.ringSize == 0x5000)
        #expect(pair.guestToHost.base == memory.base)
        #expect(pair.hostToGuest.base == memory.base + 0x5000)
        #expect(pair.hostToGuest.dataSize == 0x4000)
        pair.hostToGuest.writeIndex = 8
        pair.resetHeaders()
        #expect(pair.hostToGuest.writeIndex == 0)
        #expect(pair.guestToHost.featureBits == 1)
        #expect(pair.hostToGuest.featureBits == 1)
        #expect((memory.base + 64).load(as: UInt32.self) == 1)  // feature_bits @64
        #expect(throws: RingError.invalidRingSize(100)) { try RingPair(base: memory.base, totalSize: 100) }
    }

    @Test func twoThreadProducerConsumerStress() throws {
        let memory = RingMemory(size: 4096 + 4096)
        let ring = try memory.ring()
        let count = 200_000
        let producer = try OSThread(name: "ring-producer") {
            var i = 0
            var payload = [UInt8](repeating: 0, count: 600)
            while i < count {
                let length = (i &* 37) % 600
                // First 8 bytes: the sequence number; the rest derived from it.
                withUnsafeBytes(of: UInt64(i).littleEndian) { for k in 0..<8 { payload[k] = $0[k] } }
                if length > 8 { for k in 8..<length { payload[k] = UInt8(truncatingIfNeeded: i &+ k) } }
                let written = payload.withUnsafeBytes { raw -> Bool in
                    do {
                        try ring.write(payload: UnsafeRawBufferPointer(rebasing: raw[0..<max(length, 8)]), transactionID: UInt64(i))
                        return true
                    } catch { return false }
                }
                if written { i += 1 } else { sched_yield() }
            }
        }
        var out: [UInt8] = []
        var expected = 0
        var mismatches = 0
        while expected < count {
            guard let r = try ring.read(into: &out) else {
                sched_yield()
                continue
            }
            let length = max((expected &* 37) % 600, 8)
            var ok = r.header.transactionID == UInt64(expected) && out.count == (length + 7) & ~7
            ok = ok && out.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } == UInt64(expected)
            if ok && length > 8 {
                for k in 8..<length where out[k] != UInt8(truncatingIfNeeded: expected &+ k) { ok = false }
            }
            if !ok { mismatches += 1 }
            expected += 1
        }
        producer.join()
        #expect(mismatches == 0)
        #expect(try ring.bytesToRead() == 0)
    }
}

@Suite struct HostileRingMemoryTests {
    @Test func randomSharedMemoryNeverTrapsOrOverreads() throws {
        var generator = SystemRandomNumberGenerator()
        let memory = RingMemory(size: 4096 + 512)
        let ring = try memory.ring()
        var out: [UInt8] = []
        var outcomes = (packets: 0, errors: 0)
        for _ in 0..<5_000 {
            // Garbage everywhere the host can write: data area and both indices.
            for i in stride(from: 0, to: 512, by: 8) {
                (memory.base + 4096 + i).storeBytes(of: UInt64.random(in: 0...UInt64.max, using: &generator), as: UInt64.self)
            }
            let choices: [UInt32] = [0, 8, 256, 504, 512, 4, UInt32.random(in: 0...UInt32.max, using: &generator)]
            ring.writeIndex = choices.randomElement(using: &generator)!
            ring.readIndex = choices.randomElement(using: &generator)!
            // Often a plausible descriptor, so whole packets (and near misses) get read too.
            let r = Int(ring.readIndex)
            if r < 512 && r % 8 == 0 && Bool.random(using: &generator) {
                let word = UInt64(6) | UInt64.random(in: 0...4, using: &generator) << 16 | UInt64.random(in: 0...70, using: &generator) << 32
                (memory.base + 4096 + r).storeBytes(of: word, as: UInt64.self)
            }
            ring.featureBits = UInt32.random(in: 0...1, using: &generator)
            ring.pendingSendSize = UInt32.random(in: 0...600, using: &generator)
            for _ in 0..<4 {
                do {
                    guard let result = try ring.read(into: &out) else { break }
                    outcomes.packets += 1
                    #expect(result.payloadLength == out.count)
                    #expect(out.count <= 512 - 24)
                    #expect(ring.readIndex < 512)
                } catch {
                    outcomes.errors += 1
                    break
                }
            }
        }
        // Both paths were exercised.
        #expect(outcomes.packets > 0)
        #expect(outcomes.errors > 0)
    }
}
