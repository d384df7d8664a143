import CHVLinux

/// Why a ring operation failed. Corrupt values in shared memory (the host's or the emulator's)
/// surface here as typed errors; nothing in HVRing traps or touches memory outside the ring.
public enum RingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The memory handed to the ring is unusable (too small, misaligned size).
    case invalidRingSize(Int)
    /// `write_index` or `read_index` is outside the data area or not 8-byte aligned.
    case corruptIndex(field: String, value: UInt32, dataSize: UInt32)
    /// The next packet's descriptor is impossible (offset8/len8 out of range, or longer than
    /// the bytes the writer published).
    case corruptDescriptor(offset8: UInt16, length8: UInt16, readable: UInt32)
    /// Fewer bytes are readable than a descriptor needs, yet the ring is not empty.
    case truncatedPacket(readable: UInt32)
    /// The writer needs more free space than the ring has right now (the peer has not drained).
    case insufficientSpace(needed: UInt32, free: UInt32)
    /// The packet can never fit (len8 overflows 16 bits, or it is larger than the ring).
    case packetTooLarge(payloadLength: Int)
    /// The caller's buffer cannot hold the next payload (it is left in the ring).
    case bufferTooSmall(needed: Int, capacity: Int)

    public var description: String {
        switch self {
        case .invalidRingSize(let n): return "ring: unusable ring size \(n) bytes"
        case .corruptIndex(let f, let v, let d): return "ring: corrupt \(f) \(v) (data area \(d) bytes)"
        case .corruptDescriptor(let o, let l, let r):
            return "ring: corrupt packet descriptor (offset8 \(o), len8 \(l), \(r) bytes readable)"
        case .truncatedPacket(let r): return "ring: \(r) readable bytes cannot hold a packet descriptor"
        case .insufficientSpace(let n, let f): return "ring: full (need more than \(n) bytes, \(f) free)"
        case .packetTooLarge(let n): return "ring: payload of \(n) bytes can never fit"
        case .bufferTooSmall(let n, let c): return "ring: payload of \(n) bytes does not fit a \(c)-byte buffer"
        }
    }
}

/// The fixed part of every packet in the data area: `struct vmpacket_descriptor` (16 bytes).
public struct RingPacketHeader: Equatable, Sendable {
    /// `VM_PKT_DATA_INBAND` (6): all IC traffic.
    public static let dataInband: UInt16 = 6
    public static let size = 16

    public var type: UInt16
    /// Header length in 8-byte units (payload starts at `offset8 * 8`).
    public var offset8: UInt16
    /// Total packet length in 8-byte units (header, payload, padding; not the trailer).
    public var length8: UInt16
    public var flags: UInt16
    public var transactionID: UInt64

    public init(type: UInt16, offset8: UInt16, length8: UInt16, flags: UInt16, transactionID: UInt64) {
        self.type = type
        self.offset8 = offset8
        self.length8 = length8
        self.flags = flags
        self.transactionID = transactionID
    }

    /// Bytes between the header and the end of the packet (includes the writer's padding).
    public var payloadLength: Int { (Int(length8) - Int(offset8)) * 8 }
}

/// What one successful read returned.
public struct RingReadResult: Equatable, Sendable {
    public var header: RingPacketHeader
    /// Payload bytes copied out (header stripped; includes the writer's padding to 8).
    public var payloadLength: Int
    /// The peer asked (through `pending_send_sz`) to be told when space frees up, and this read
    /// freed enough: signal it.
    public var shouldSignalWriter: Bool
}

/// A view over one VMBus ring buffer (`struct hv_ring_buffer` + data) in memory that is shared
/// with the other side: a 4096-byte header page, then the data area.
///
/// Use one view per role: only the producer calls the write side, only the consumer calls the
/// read side (the VMBus single-producer / single-consumer protocol). The view holds no state of
/// its own beyond the pointers, so copies are cheap and any thread may hold one; the memory must
/// outlive every view.
public struct RingBuffer: @unchecked Sendable {
    public static let headerSize = 4096
    /// Bytes of ring a packet occupies beyond its 8-aligned length: the u64 trailer.
    public static let trailerSize = 8
    /// `feature_bits` bit 0: the consumer honours `pending_send_sz`.
    public static let featurePendingSendSize: UInt32 = 1

    public let base: UnsafeMutableRawPointer
    public let data: UnsafeMutableRawPointer
    /// Size of the data area in bytes (`ring bytes - 4096`).
    public let dataSize: UInt32

    /// A view over `size` bytes at `base` (header page included).
    public init(base: UnsafeMutableRawPointer, size: Int) throws(RingError) {
        guard size > RingBuffer.headerSize + 64, size % 8 == 0, size - RingBuffer.headerSize <= Int(UInt32.max / 2)
        else { throw .invalidRingSize(size) }
        self.base = base
        self.data = base + RingBuffer.headerSize
        self.dataSize = UInt32(size - RingBuffer.headerSize)
    }

    // MARK: Header fields

    @inline(__always) private func field(_ offset: Int) -> UnsafeMutablePointer<UInt32> {
        (base + offset).assumingMemoryBound(to: UInt32.self)
    }

    private static let writeIndexOffset = 0
    private static let readIndexOffset = 4
    private static let interruptMaskOffset = 8
    private static let pendingSendSizeOffset = 12
    private static let featureBitsOffset = 64

    /// `write_index` (raw, as the producer published it).
    public var writeIndex: UInt32 {
        get { chv_load_acquire_u32(field(Self.writeIndexOffset)) }
        nonmutating set { chv_store_release_u32(field(Self.writeIndexOffset), newValue) }
    }

    /// `read_index` (raw, as the consumer published it).
    public var readIndex: UInt32 {
        get { chv_load_acquire_u32(field(Self.readIndexOffset)) }
        nonmutating set { chv_store_release_u32(field(Self.readIndexOffset), newValue) }
    }

    /// `interrupt_mask`: non-zero means the consumer asks not to be interrupted.
    public var interruptMask: UInt32 {
        get { chv_load_acquire_u32(field(Self.interruptMaskOffset)) }
        nonmutating set {
            chv_store_release_u32(field(Self.interruptMaskOffset), newValue)
            // The peer reads the mask right after publishing data; order our store before
            // whatever we read next (the indices), or both sides can miss each other.
            chv_full_barrier()
        }
    }

    /// `pending_send_sz`: a blocked producer asks to be signalled when this many bytes are free.
    public var pendingSendSize: UInt32 {
        get { chv_load_acquire_u32(field(Self.pendingSendSizeOffset)) }
        nonmutating set {
            chv_store_release_u32(field(Self.pendingSendSizeOffset), newValue)
            chv_full_barrier()
        }
    }

    /// `feature_bits` (bit 0 = `feat_pending_send_sz`).
    public var featureBits: UInt32 {
        get { chv_load_acquire_u32(field(Self.featureBitsOffset)) }
        nonmutating set { chv_store_release_u32(field(Self.featureBitsOffset), newValue) }
    }

    /// Resets the header as the kernel does when the channel is opened: empty ring, not
    /// masked, nothing pending, `feat_pending_send_sz` advertised.
    public func resetHeader() {
        base.initializeMemory(as: UInt8.self, repeating: 0, count: RingBuffer.headerSize)
        featureBits = RingBuffer.featurePendingSendSize
        chv_full_barrier()
    }

    // MARK: Space accounting

    private func checkedIndex(_ value: UInt32, _ name: String) throws(RingError) -> UInt32 {
        if value >= dataSize || value % 8 != 0 { throw .corruptIndex(field: name, value: value, dataSize: dataSize) }
        return value
    }

    /// Free bytes for the writer (`dsize - used`); a write must leave at least one byte free.
    @inline(__always) private func freeBytes(write w: UInt32, read r: UInt32) -> UInt32 {
        w >= r ? dataSize - (w - r) : r - w
    }

    /// Bytes the reader may consume.
    public func bytesToRead() throws(RingError) -> UInt32 {
        let w = try checkedIndex(writeIndex, "write_index")
        let r = try checkedIndex(readIndex, "read_index")
        return dataSize - freeBytes(write: w, read: r)
    }

    /// Bytes the writer may still fill (one write must stay strictly below this).
    public func bytesToWrite() throws(RingError) -> UInt32 {
        let w = try checkedIndex(writeIndex, "write_index")
        let r = try checkedIndex(readIndex, "read_index")
        return freeBytes(write: w, read: r)
    }

    /// True when the producer has published data the consumer has not yet read.
    public var hasData: Bool { writeIndex != readIndex }

    /// Ring bytes a packet with `payloadLength` bytes of payload occupies (descriptor, payload,
    /// padding, trailer), or nil when it cannot be described by a 16-bit `len8`.
    public static func footprint(payloadLength: Int) -> Int? {
        guard payloadLength >= 0, payloadLength <= Int(UInt16.max) * 8 - RingPacketHeader.size else { return nil }
        return (RingPacketHeader.size + payloadLength + 7) & ~7 + trailerSize
    }

    // MARK: Copies with wrap-around

    /// Copies `count` bytes out of the data area starting at `offset` (< dataSize), wrapping.
    @inline(__always) private func copyOut(from offset: UInt32, count: Int, to dest: UnsafeMutableRawPointer) {
        let first = min(count, Int(dataSize - offset))
        dest.copyMemory(from: data + Int(offset), byteCount: first)
        if first < count { (dest + first).copyMemory(from: data, byteCount: count - first) }
    }

    /// Copies `count` bytes into the data area starting at `offset` (< dataSize), wrapping.
    @inline(__always) private func copyIn(to offset: UInt32, count: Int, from source: UnsafeRawPointer) {
        let first = min(count, Int(dataSize - offset))
        (data + Int(offset)).copyMemory(from: source, byteCount: first)
        if first < count { data.copyMemory(from: source + first, byteCount: count - first) }
    }

    /// Zero-fills `count` bytes of the data area starting at `offset`, wrapping.
    @inline(__always) private func zeroFill(at offset: UInt32, count: Int) {
        let first = min(count, Int(dataSize - offset))
        (data + Int(offset)).initializeMemory(as: UInt8.self, repeating: 0, count: first)
        if first < count { data.initializeMemory(as: UInt8.self, repeating: 0, count: count - first) }
    }

    @inline(__always) private func advance(_ offset: UInt32, by n: UInt32) -> UInt32 {
        // n < dataSize and offset < dataSize ≤ UInt32.max / 2, so the sum cannot overflow.
        let s = offset &+ n
        return s >= dataSize ? s &- dataSize : s
    }

    // MARK: Reader side

    /// The descriptor of the next packet, validated, without consuming it; nil when empty.
    public func peekHeader() throws(RingError) -> RingPacketHeader? {
        try nextPacket()?.header
    }

    private func nextPacket() throws(RingError) -> (header: RingPacketHeader, read: UInt32, readable: UInt32)? {
        // Acquire on write_index: the packet bytes we are about to copy were written before it.
        let w = try checkedIndex(writeIndex, "write_index")
        let r = try checkedIndex(chv_load_relaxed_u32(field(Self.readIndexOffset)), "read_index")
        if w == r { return nil }
        let readable = dataSize - freeBytes(write: w, read: r)
        if readable < UInt32(RingPacketHeader.size + RingBuffer.trailerSize) { throw .truncatedPacket(readable: readable) }
        // Copy the descriptor once and validate the copy: the host may change the ring under us.
        var raw = (UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &raw) { copyOut(from: r, count: RingPacketHeader.size, to: $0.baseAddress!) }
        let word = UInt64(littleEndian: raw.0)
        let header = RingPacketHeader(
            type: UInt16(truncatingIfNeeded: word),
            offset8: UInt16(truncatingIfNeeded: word >> 16),
            length8: UInt16(truncatingIfNeeded: word >> 32),
            flags: UInt16(truncatingIfNeeded: word >> 48),
            transactionID: UInt64(littleEndian: raw.1))
        let total = UInt32(header.length8) * 8 + UInt32(RingBuffer.trailerSize)
        guard header.offset8 >= 2, header.offset8 <= header.length8, total <= readable else {
            throw .corruptDescriptor(offset8: header.offset8, length8: header.length8, readable: readable)
        }
        return (header, r, readable)
    }

    /// Copies the next packet's payload into `buffer` and consumes the packet.
    /// Returns nil when the ring is empty. A payload larger than `buffer` throws
    /// `bufferTooSmall` and stays in the ring.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(RingError) -> RingReadResult? {
        guard let (header, r, _) = try nextPacket() else { return nil }
        let length = header.payloadLength
        guard length <= buffer.count else { throw .bufferTooSmall(needed: length, capacity: buffer.count) }
        if length > 0, let dest = buffer.baseAddress {
            copyOut(from: advance(r, by: UInt32(header.offset8) * 8), count: length, to: dest)
        }
        let signal = consume(header: header, from: r)
        return RingReadResult(header: header, payloadLength: length, shouldSignalWriter: signal)
    }

    /// Reads the next packet's payload into `payload`, replacing its contents (capacity is kept,
    /// so a reused array costs no allocation per packet). Returns nil when the ring is empty.
    public func read(into payload: inout [UInt8]) throws(RingError) -> RingReadResult? {
        guard let (header, r, _) = try nextPacket() else { return nil }
        let length = header.payloadLength
        let start = advance(r, by: UInt32(header.offset8) * 8)
        payload.removeAll(keepingCapacity: true)
        let first = min(length, Int(dataSize - start))
        payload.append(contentsOf: UnsafeRawBufferPointer(start: data + Int(start), count: first))
        if first < length { payload.append(contentsOf: UnsafeRawBufferPointer(start: data, count: length - first)) }
        let signal = consume(header: header, from: r)
        return RingReadResult(header: header, payloadLength: length, shouldSignalWriter: signal)
    }

    /// Skips the next packet without copying it. Returns its header, or nil when empty.
    public func skip() throws(RingError) -> RingPacketHeader? {
        guard let (header, r, _) = try nextPacket() else { return nil }
        _ = consume(header: header, from: r)
        return header
    }

    /// Publishes the new read_index and applies the `pending_send_sz` rule.
    private func consume(header: RingPacketHeader, from r: UInt32) -> Bool {
        let consumed = UInt32(header.length8) * 8 + UInt32(RingBuffer.trailerSize)
        // Release: our copies of the packet complete before the writer may reuse the space.
        chv_store_release_u32(field(Self.readIndexOffset), advance(r, by: consumed))
        // Full barrier: the read_index store must be visible before we look at pending_send_sz,
        // or a writer that just set it could wait for a signal that never comes.
        chv_full_barrier()
        guard featureBits & RingBuffer.featurePendingSendSize != 0 else { return false }
        let pending = chv_load_relaxed_u32(field(Self.pendingSendSizeOffset))
        if pending == 0 { return false }
        let w = chv_load_acquire_u32(field(Self.writeIndexOffset))
        guard w < dataSize else { return true }  // corrupt, but signalling is harmless
        let freeNow = freeBytes(write: w, read: advance(r, by: consumed))
        // Signal only when this read moved free space from ≤ pending to > pending.
        let freeBefore = freeNow >= consumed ? freeNow - consumed : 0
        return freeNow > pending && freeBefore <= pending
    }

    // MARK: Writer side

    /// Writes one packet: descriptor (`type`, offset8 2, `flags`, `transactionID`), `payload`,
    /// zero padding to 8 bytes and the u64 trailer, then publishes `write_index`.
    /// Returns true when the consumer should be signalled (its `interrupt_mask` is clear and the
    /// ring was empty before this packet). Throws `insufficientSpace` when the ring is too full
    /// right now (nothing is written).
    @discardableResult
    public func write(
        payload: UnsafeRawBufferPointer, transactionID: UInt64,
        type: UInt16 = RingPacketHeader.dataInband, flags: UInt16 = 0
    ) throws(RingError) -> Bool {
        guard let footprint = RingBuffer.footprint(payloadLength: payload.count), footprint < Int(dataSize) else {
            throw .packetTooLarge(payloadLength: payload.count)
        }
        let w = try checkedIndex(chv_load_relaxed_u32(field(Self.writeIndexOffset)), "write_index")
        // Acquire on read_index: the reader finished copying the space we are about to reuse.
        let r = try checkedIndex(readIndex, "read_index")
        let free = freeBytes(write: w, read: r)
        // Strictly more than needed: a completely full ring would look empty (w == r).
        guard free > UInt32(footprint) else { throw .insufficientSpace(needed: UInt32(footprint), free: free) }

        let packetLength = footprint - RingBuffer.trailerSize
        let length8 = UInt16(packetLength / 8)
        var descriptor = (
            UInt64(type) | UInt64(2) << 16 | UInt64(length8) << 32 | UInt64(flags) << 48,
            transactionID
        )
        descriptor.0 = descriptor.0.littleEndian
        descriptor.1 = descriptor.1.littleEndian
        withUnsafeBytes(of: &descriptor) { copyIn(to: w, count: RingPacketHeader.size, from: $0.baseAddress!) }
        var offset = advance(w, by: UInt32(RingPacketHeader.size))
        if let source = payload.baseAddress, payload.count > 0 {
            copyIn(to: offset, count: payload.count, from: source)
            offset = advance(offset, by: UInt32(payload.count))
        }
        let padding = packetLength - RingPacketHeader.size - payload.count
        if padding > 0 {
            zeroFill(at: offset, count: padding)
            offset = advance(offset, by: UInt32(padding))
        }
        var trailer = (UInt64(w) << 32).littleEndian
        withUnsafeBytes(of: &trailer) { copyIn(to: offset, count: RingBuffer.trailerSize, from: $0.baseAddress!) }
        let next = advance(offset, by: UInt32(RingBuffer.trailerSize))

        // Full barrier: every byte of the packet is visible before the new write_index.
        chv_full_barrier()
        chv_store_release_u32(field(Self.writeIndexOffset), next)
        // Full barrier again: publish write_index before reading the consumer's mask and index
        // (the consumer does the mirror image when it unmasks), so one of us sees the other.
        chv_full_barrier()
        if chv_load_relaxed_u32(field(Self.interruptMaskOffset)) != 0 { return false }
        return chv_load_acquire_u32(field(Self.readIndexOffset)) == w
    }

    /// `write(payload:...)` for an array.
    @discardableResult
    public func write(
        payload: [UInt8], transactionID: UInt64, type: UInt16 = RingPacketHeader.dataInband, flags: UInt16 = 0
    ) throws(RingError) -> Bool {
        let result = payload.withUnsafeBytes { raw in
            Result { () throws(RingError) -> Bool in
                try write(payload: raw, transactionID: transactionID, type: type, flags: flags)
            }
        }
        return try result.get()
    }
}

/// The two rings of a UIO `map0` region (`txrx_rings`): guest→host (TX) first, host→guest (RX)
/// second, each `ringSize` bytes. Usable from either side: the guest writes `guestToHost` and
/// reads `hostToGuest`; the emulated host does the opposite.
public struct RingPair: @unchecked Sendable {
    public let guestToHost: RingBuffer
    public let hostToGuest: RingBuffer
    public let ringSize: Int

    /// Views over `totalSize` bytes at `base` (the whole map0; each ring gets half).
    public init(base: UnsafeMutableRawPointer, totalSize: Int) throws(RingError) {
        guard totalSize > 0, totalSize % 16 == 0 else { throw .invalidRingSize(totalSize) }
        ringSize = totalSize / 2
        guestToHost = try RingBuffer(base: base, size: ringSize)
        hostToGuest = try RingBuffer(base: base + ringSize, size: ringSize)
    }

    /// Resets both headers, as the kernel does when the channel is opened.
    public func resetHeaders() {
        guestToHost.resetHeader()
        hostToGuest.resetHeader()
    }
}
