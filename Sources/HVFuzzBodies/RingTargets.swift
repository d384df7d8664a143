import Glibc
import HVRing

// The VMBus ring read over shared memory the other side controls: the indices in the header
// page and every byte of the data area are hostile. Invariants: no trap, no access outside the
// mapping (ASan checks that in the fuzz build), indices stay inside the data area after every
// successful read, and a payload is never longer than the data area.

extension FuzzTargets {
    static let ringTargets: [FuzzTarget] = [
        FuzzTarget(name: "ring-buffer", summary: "RingBuffer read/skip/write over a corrupt header page and data area",
                   seeds: ringSeeds, body: ringBody),
    ]
}

/// Data area of the fuzzed ring: small, so short inputs reach wrap-around.
private let ringDataSize = 512
/// Header bytes taken from the input (indices, mask, pending size; feature bits at 64).
private let headerBytesFromInput = 72

private func ringSeeds() -> [[UInt8]] {
    // A consistent ring holding two packets, as bytes: header prefix + data area.
    let total = RingBuffer.headerSize + ringDataSize
    let mem = UnsafeMutableRawPointer.allocate(byteCount: total, alignment: 4096)
    defer { mem.deallocate() }
    mem.initializeMemory(as: UInt8.self, repeating: 0, count: total)
    guard let ring = try? RingBuffer(base: mem, size: total) else { return [] }
    ring.resetHeader()
    _ = try? ring.write(payload: [1, 2, 3, 4, 5, 6, 7, 8, 9], transactionID: 1)
    _ = try? ring.write(payload: [UInt8](repeating: 0xAB, count: 100), transactionID: 2)
    let header = Array(UnsafeRawBufferPointer(start: mem, count: headerBytesFromInput))
    let data = Array(UnsafeRawBufferPointer(start: mem + RingBuffer.headerSize, count: ringDataSize))
    return [header + data, header + [UInt8](repeating: 0xFF, count: 64)]
}

private func ringBody(_ input: [UInt8]) -> String? {
    let total = RingBuffer.headerSize + ringDataSize
    let mem = UnsafeMutableRawPointer.allocate(byteCount: total, alignment: 4096)
    defer { mem.deallocate() }
    mem.initializeMemory(as: UInt8.self, repeating: 0, count: total)
    input.prefix(headerBytesFromInput).withUnsafeBytes { mem.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    if input.count > headerBytesFromInput {
        let rest = input[headerBytesFromInput...].prefix(ringDataSize)
        rest.withUnsafeBytes { (mem + RingBuffer.headerSize).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }
    guard let ring = try? RingBuffer(base: mem, size: total) else { return "ring of \(total) bytes refused" }
    let size = ring.dataSize

    // Reader side: drain what the "host" claims is there.
    var payload: [UInt8] = []
    var small = [UInt8](repeating: 0, count: 64)
    for round in 0..<8 {
        _ = try? ring.peekHeader()
        _ = try? ring.bytesToRead()
        do {
            let length: Int?
            if round % 3 == 2 {
                length = try small.withUnsafeMutableBytes { buf throws(RingError) in try ring.read(into: buf) }?.payloadLength
            } else if round % 3 == 1 {
                length = try ring.skip()?.payloadLength
            } else {
                let r = try ring.read(into: &payload)
                if let r, payload.count != r.payloadLength { return "read returned \(payload.count) bytes for \(r.payloadLength)" }
                length = r?.payloadLength
            }
            guard let length else { break }
            if length < 0 || length > Int(size) { return "payload length \(length) outside the ring" }
            if ring.readIndex >= size { return "read index \(ring.readIndex) left outside the data area" }
        } catch {
            break
        }
    }

    // Writer side over the same (possibly corrupt) header: refused or written inside the area.
    let n = input.count > 1 ? Int(input[input.count - 1]) % 300 : 0
    if (try? ring.write(payload: [UInt8](repeating: 0x5A, count: n), transactionID: 9)) != nil {
        if ring.writeIndex >= size { return "write index \(ring.writeIndex) left outside the data area" }
    }
    _ = try? ring.bytesToWrite()

    // On a freshly reset ring, what is written is read back unchanged.
    ring.resetHeader()
    let sample = Array(input.prefix(200))
    do {
        try ring.write(payload: sample, transactionID: 42)
        guard let r = try ring.read(into: &payload) else { return "written packet not readable" }
        // The payload comes back padded to 8 bytes (the descriptor counts in 8-byte units).
        let padded = (sample.count + 7) / 8 * 8
        if payload.count != padded || Array(payload.prefix(sample.count)) != sample || r.header.transactionID != 42 {
            return "ring round trip changed the packet"
        }
    } catch {
        return "clean ring refused a \(sample.count)-byte packet: \(error)"
    }
    return nil
}
