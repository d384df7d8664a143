/// `struct vmpacket_descriptor` (16 bytes): the header of every packet in a VMBus ring
/// (PROTOCOL.md §4.5). type u16 @0, offset8 u16 @2, len8 u16 @4, flags u16 @6, trans_id u64 @8.
///
/// HVRing parses the same 16 bytes straight out of shared memory; this value type is the byte
/// format for tests, the emulator and anything that frames packets outside a ring.
public struct VMBusPacketDescriptor: Equatable, Sendable {
    public static let size = 16

    /// `enum vmbus_packet_type` values that matter to a guest.
    public struct PacketType: RawRepresentable, Hashable, Sendable {
        public var rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        /// VM_PKT_DATA_INBAND: payload inline; all IC traffic.
        public static let dataInband = PacketType(rawValue: 6)
        /// VM_PKT_DATA_USING_XFER_PAGES.
        public static let dataUsingTransferPages = PacketType(rawValue: 7)
        /// VM_PKT_DATA_USING_GPA_DIRECT.
        public static let dataUsingGPADirect = PacketType(rawValue: 9)
        /// VM_PKT_COMP: a completion.
        public static let completion = PacketType(rawValue: 0xB)
    }

    /// VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED.
    public static let flagCompletionRequested: UInt16 = 1

    public var type: PacketType
    /// Header length in 8-byte units; the payload starts at `offset8 * 8`.
    public var offset8: UInt16
    /// Packet length in 8-byte units (header, payload and padding; not the ring trailer).
    public var length8: UInt16
    public var flags: UInt16
    public var transactionID: UInt64

    public init(type: PacketType, offset8: UInt16, length8: UInt16, flags: UInt16, transactionID: UInt64) {
        self.type = type
        self.offset8 = offset8
        self.length8 = length8
        self.flags = flags
        self.transactionID = transactionID
    }

    /// The descriptor an in-band packet with `payloadLength` payload bytes gets (offset8 2,
    /// len8 covering the payload padded to 8). Throws when len8 would not fit 16 bits.
    public static func inband(payloadLength: Int, transactionID: UInt64, flags: UInt16 = 0) throws(WireError)
        -> VMBusPacketDescriptor
    {
        let total = (size + payloadLength + 7) / 8
        guard payloadLength >= 0, total <= Int(UInt16.max) else {
            throw .oversized(structure: "vmpacket_descriptor", limit: Int(UInt16.max) * 8 - size, got: payloadLength)
        }
        return VMBusPacketDescriptor(
            type: .dataInband, offset8: 2, length8: UInt16(total), flags: flags, transactionID: transactionID)
    }

    /// Payload bytes after the header, padding included.
    public var payloadLength: Int { (Int(length8) - Int(offset8)) * 8 }

    /// Decodes and validates a descriptor: offset8 ≥ 2 and offset8 ≤ len8 (the rules the ring
    /// reader applies too).
    public static func decode(from bytes: [UInt8]) throws(WireError) -> VMBusPacketDescriptor {
        let r = ByteReader(bytes, structure: "vmpacket_descriptor")
        try r.require(size)
        let d = VMBusPacketDescriptor(
            type: PacketType(rawValue: try r.u16(at: 0)), offset8: try r.u16(at: 2), length8: try r.u16(at: 4),
            flags: try r.u16(at: 6), transactionID: try r.u64(at: 8))
        if d.offset8 < 2 {
            throw .invalidField(structure: r.structure, field: "offset8", reason: "\(d.offset8) is shorter than the descriptor")
        }
        if d.offset8 > d.length8 {
            throw .invalidField(structure: r.structure, field: "offset8", reason: "\(d.offset8) exceeds len8 \(d.length8)")
        }
        return d
    }

    public func encode() -> [UInt8] {
        var w = ByteWriter(size: Self.size)
        w.u16(type.rawValue, at: 0)
        w.u16(offset8, at: 2)
        w.u16(length8, at: 4)
        w.u16(flags, at: 6)
        w.u64(transactionID, at: 8)
        return w.bytes
    }
}

/// A whole in-band packet as it sits in a ring, without the trailer: descriptor, payload, zero
/// padding to 8 bytes.
public enum VMBusPacket {
    /// Frames `payload` as an in-band packet.
    public static func encode(payload: [UInt8], transactionID: UInt64, flags: UInt16 = 0) throws(WireError) -> [UInt8] {
        let d = try VMBusPacketDescriptor.inband(payloadLength: payload.count, transactionID: transactionID, flags: flags)
        var out = d.encode()
        out.reserveCapacity(Int(d.length8) * 8)
        out += payload
        out += [UInt8](repeating: 0, count: Int(d.length8) * 8 - out.count)
        return out
    }

    /// Splits a framed packet into descriptor and payload (padding included, as a reader sees it).
    public static func decode(from bytes: [UInt8]) throws(WireError) -> (descriptor: VMBusPacketDescriptor, payload: [UInt8]) {
        let d = try VMBusPacketDescriptor.decode(from: bytes)
        let r = ByteReader(bytes, structure: "vmbus packet")
        try r.require(Int(d.length8) * 8)
        try r.requireAtMost(Int(d.length8) * 8)
        return (d, Array(try r.slice(at: Int(d.offset8) * 8, count: d.payloadLength)))
    }
}
