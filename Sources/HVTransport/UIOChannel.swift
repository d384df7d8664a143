import HVRing
import HVSystem

/// Why `waitForInterrupt` returned.
public enum UIOWakeReason: Equatable, Sendable {
    /// The host signalled (the event count it reported).
    case interrupt(count: UInt32)
    /// The stop eventfd became readable.
    case stopped
    /// The timeout passed without either.
    case timedOut
}

/// The guest side of one VMBus channel through uio_hv_generic (kernel ≥ 6.10) or its fake
/// (DESIGN.md, fake device layer point 2): the two rings of map0 plus the interrupt fd.
///
/// One thread owns a channel: it waits for interrupts, drains the host→guest ring and writes
/// responses. Another thread may only signal the stop eventfd; close the channel after the
/// owning thread has returned.
public final class UIOChannel: @unchecked Sendable {
    public let device: UIODevice
    /// Both rings; the guest reads `hostToGuest` and writes `guestToHost`.
    public let rings: RingPair
    /// The `/dev/uioN` fd (or the fake's socket): interrupts in, signals out.
    public let descriptor: Descriptor
    /// True for the fake device layer's socket.
    public let isSocket: Bool
    private let memory: MappedMemory
    /// Reused across packets so the hot path does not allocate.
    private var scratch: [UInt8] = []

    /// How long a response may wait for room in the guest→host ring.
    public var sendTimeoutMilliseconds = 5_000

    /// The host→guest ring (RX).
    public var receiveRing: RingBuffer { rings.hostToGuest }
    /// The guest→host ring (TX).
    public var sendRing: RingBuffer { rings.guestToHost }

    /// Finds the device of class `classID` under `deviceRoot` and opens it.
    public static func open(classID: String, deviceRoot: String, handshakeTimeoutMilliseconds: Int32 = 10_000)
        throws(UIOChannelError) -> UIOChannel
    {
        let device = try UIODevice.find(classID: classID, deviceRoot: deviceRoot)
        return try UIOChannel(device: device, deviceRoot: deviceRoot, handshakeTimeoutMilliseconds: handshakeTimeoutMilliseconds)
    }

    /// Opens `DEVROOT/dev/uioN`: a character device is opened and map0 mapped from it; a socket
    /// (fake) is connected, and the shared memory it passes in its first packet is mapped.
    public init(device: UIODevice, deviceRoot: String, handshakeTimeoutMilliseconds: Int32 = 10_000) throws(UIOChannelError) {
        self.device = device
        let path = device.devicePath(deviceRoot: deviceRoot)
        do {
            switch fileKind(path) {
            case .socket:
                isSocket = true
                descriptor = try SeqPacket.connect(path)
                let ready = try poll([(descriptor.fd, .readable)], timeoutMilliseconds: handshakeTimeoutMilliseconds)
                guard ready[0].contains(.readable) else { throw UIOChannelError.handshake("no size packet from \(path) in time") }
                let (message, passed) = try descriptor.receiveWithDescriptor(capacity: 16)
                guard case .message(let bytes) = message, bytes.count == 4 else {
                    throw UIOChannelError.handshake("first packet from \(path) is not 4 bytes: \(message)")
                }
                guard let passed else { throw UIOChannelError.handshake("first packet from \(path) carries no descriptor") }
                let size = Int(UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24)
                guard size == device.map0Size else {
                    throw UIOChannelError.handshake("shared memory is \(size) bytes, sysfs map0 says \(device.map0Size)")
                }
                // Mapping past the end of the memfd would turn ring accesses into SIGBUS.
                guard try passed.mappableSize() >= size else {
                    throw UIOChannelError.handshake("shared memory from \(path) is smaller than \(size) bytes")
                }
                memory = try MappedMemory(mapping: passed, length: size)
                passed.close()
            case .characterDevice:
                isSocket = false
                descriptor = try Descriptor.openReadWrite(path)
                // map0 is selected by mmap offset 0 · page size.
                memory = try MappedMemory(mapping: descriptor, length: device.map0Size, offset: 0)
            case .missing:
                throw UIOChannelError.system(.noSuchFile("open \(path)"))
            default:
                throw UIOChannelError.handshake("\(path) is neither a character device nor a socket")
            }
        } catch let error as UIOChannelError {
            throw error
        } catch let error as SystemError {
            throw .system(error)
        } catch {
            throw .handshake("\(error)")
        }
        do {
            rings = try RingPair(base: memory.base, totalSize: memory.length)
        } catch {
            throw .ring(error)
        }
        // The kernel masks RX interrupts at open; unmask so the host interrupts us.
        rings.hostToGuest.interruptMask = 0
        scratch.reserveCapacity(8192)
    }

    /// Closes the device (the host then sees the channel closed). Call only after the owning
    /// thread stopped using the channel; the mapping goes away with the last reference.
    public func close() { descriptor.close() }

    // MARK: Interrupts

    /// Blocks until the host signals, `stop` becomes readable (it is left signalled so every
    /// loop sharing it sees it), or the timeout (< 0: none) passes.
    public func waitForInterrupt(stop: EventFD?, timeoutMilliseconds: Int32 = -1) throws(UIOChannelError) -> UIOWakeReason {
        // pollPair: no arrays, because this runs once per host interrupt (per file fragment).
        let events: PollEvents
        do {
            let (device, stopEvents) = try pollPair(descriptor.fd, stop?.fd, timeoutMilliseconds: timeoutMilliseconds)
            if !stopEvents.isEmpty { return .stopped }
            events = device
        } catch { throw .system(error) }
        if events.isEmpty { return .timedOut }
        if events.contains(.invalid) { throw .disconnected }
        if !isSocket && events.contains(.error) { throw .disconnected }  // rescinded
        do {
            guard let count = try descriptor.readUInt32(isSocket: isSocket) else { throw UIOChannelError.disconnected }
            return .interrupt(count: count)
        } catch let error as UIOChannelError {
            throw error
        } catch let error as SystemError {
            if error.meansDeviceGone { throw .disconnected }
            throw .system(error)
        } catch {
            throw .disconnected
        }
    }

    /// Unmasks host interrupts and signals the host (UIO irqcontrol write of 1).
    public func signalHost() throws(UIOChannelError) {
        do { try descriptor.writeUInt32(1, isSocket: isSocket) } catch {
            if error.meansDeviceGone { throw .disconnected }
            throw .system(error)
        }
    }

    // MARK: Packets

    /// Writes one in-band packet with `payload` to the host, echoing `transactionID` in the
    /// descriptor as the kernel does. Waits (signalling the host) while the ring is full, up to
    /// `sendTimeoutMilliseconds`. Returns true when the host must be signalled (ring was empty
    /// and the host has not masked).
    @discardableResult
    public func send(payload: [UInt8], transactionID: UInt64) throws(UIOChannelError) -> Bool {
        let deadline = monotonicNanoseconds() + UInt64(max(sendTimeoutMilliseconds, 0)) * 1_000_000
        while true {
            do {
                return try sendRing.write(payload: payload, transactionID: transactionID)
            } catch .insufficientSpace {
                try signalHost()
                if monotonicNanoseconds() >= deadline { throw .sendTimeout }
                sleepMilliseconds(1)
            } catch {
                throw .ring(error)
            }
        }
    }

    /// Handles every packet in the host→guest ring: `handle` gets each in-band payload (IC
    /// header first, ring padding included) and returns true to send the (modified) buffer back
    /// as the response. Then unmasks and re-checks the ring, because a packet that arrived while
    /// interrupts were masked raises no interrupt. Signals the host when responses were queued.
    /// Returns the number of packets handled.
    @discardableResult
    public func processPendingPackets(_ handle: (inout [UInt8], RingPacketHeader) -> Bool) throws(UIOChannelError) -> Int {
        var buffer: [UInt8] = []
        swap(&buffer, &scratch)
        defer { swap(&buffer, &scratch) }
        var handled = 0
        let rx = receiveRing
        repeat {
            var mustSignal = false
            do {
                while let result = try rx.read(into: &buffer) {
                    handled += 1
                    if result.shouldSignalWriter { mustSignal = true }
                    // IC traffic is all in-band; anything else is not for us.
                    guard result.header.type == RingPacketHeader.dataInband else { continue }
                    if handle(&buffer, result.header) {
                        if try send(payload: buffer, transactionID: result.header.transactionID) { mustSignal = true }
                    }
                }
            } catch let error as UIOChannelError {
                throw error
            } catch let error as RingError {
                throw .ring(error)
            } catch {
                throw .handshake("unexpected error \(error)")
            }
            // Unmask in shared memory first (with a full barrier), so a host write from now on
            // either sees the mask clear and signals, or is seen by the re-check below.
            rx.interruptMask = 0
            if mustSignal { try signalHost() }
        } while rx.hasData
        return handled
    }

    /// The whole loop for a request/response IC: handle what is already queued, then wait for
    /// interrupts and drain until `stop` is signalled. Returns normally on stop; throws on
    /// disconnect, rescind or ring corruption (the caller closes and may reopen).
    public func serve(until stop: EventFD, _ handle: (inout [UInt8], RingPacketHeader) -> Bool) throws(UIOChannelError) {
        try processPendingPackets(handle)
        while true {
            switch try waitForInterrupt(stop: stop) {
            case .stopped: return
            case .interrupt, .timedOut: try processPendingPackets(handle)
            }
        }
    }
}
