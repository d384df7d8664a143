import HVRing
import HVSystem
import HVWire

/// Why a host-side UIO operation failed.
public enum UIOHostError: Error, Equatable, Sendable, CustomStringConvertible {
    case system(SystemError)
    case ring(RingError)
    case wire(WireError)
    /// No guest connected within the timeout.
    case noGuest
    /// The guest closed its end (the daemon closed `/dev/uioN` or died).
    case guestDisconnected
    /// The guest did not answer within the timeout.
    case timedOut
    /// The guest answered the negotiation with no match (or an error status).
    case negotiationFailed(status: HResult)
    /// The guest broke the device's rules (e.g. a write that is not 4 bytes).
    case protocolViolation(String)

    public var description: String {
        switch self {
        case .system(let e): return e.description
        case .ring(let e): return e.description
        case .wire(let e): return e.description
        case .noGuest: return "no guest opened the UIO device in time"
        case .guestDisconnected: return "the guest closed the UIO device"
        case .timedOut: return "the guest did not answer in time"
        case .negotiationFailed(let s): return "IC negotiation failed (status \(s))"
        case .protocolViolation(let s): return "guest protocol violation: \(s)"
        }
    }
}

/// The host and guest-kernel end of one UIO channel in a fake device root (DESIGN.md, fake
/// device layer point 2). It creates the sysfs files the daemon reads, owns the shared memory
/// that stands in for map0, listens on `DEVROOT/dev/uioN`, and talks to the guest through the
/// real ring format: requests go into the host→guest ring followed by a 4-byte event-count
/// packet; the guest's 4-byte packet (its irqcontrol write) tells us to read the guest→host ring.
///
/// Synchronous: one request in flight, answered or timed out, as the IC protocol expects.
/// Calls from several threads are serialized.
public final class UIOHost: @unchecked Sendable {
    /// What this channel is.
    public struct Configuration: Sendable {
        /// Class GUID (lower case, no braces).
        public var classID: String
        /// Instance GUID: the device directory name.
        public var instanceID: String
        /// N of `uioN`.
        public var uioIndex: Int
        /// Bytes per ring, header page included (both rings = map0).
        public var ringSize: Int
        /// The IC's `icmsgtype`.
        public var messageType: ICMessageType
        /// What the host offers in negotiation (framework and message versions).
        public var offeredVersions: ICServiceVersions

        public init(
            classID: String, instanceID: String, uioIndex: Int, ringSize: Int = 0x5000, messageType: ICMessageType,
            offeredVersions: ICServiceVersions
        ) {
            self.classID = classID
            self.instanceID = instanceID
            self.uioIndex = uioIndex
            self.ringSize = ringSize
            self.messageType = messageType
            self.offeredVersions = offeredVersions
        }

        /// The file-copy channel (PROTOCOL.md §4.4, §5.1): 0x5000 bytes per ring.
        public static func fcopy(uioIndex: Int = 0) -> Configuration {
            Configuration(
                classID: "34d14be3-dee4-41c8-9ae7-6b174977c192", instanceID: "eb765408-105f-49b6-b4aa-c123b64d17d4",
                uioIndex: uioIndex, ringSize: 0x5000, messageType: .fcopy, offeredVersions: .fcopy)
        }

        /// The shutdown channel taken over through uio_hv_generic (2 MiB rings would be real;
        /// a small ring is enough for the emulator).
        public static func shutdown(uioIndex: Int = 1) -> Configuration {
            Configuration(
                classID: "0e0b6031-5213-4934-818b-38d90ced39db", instanceID: "b6650ff7-33bc-4840-8048-e0676786f393",
                uioIndex: uioIndex, ringSize: 0x5000, messageType: .shutdown, offeredVersions: .shutdown)
        }

        /// The time-sync channel.
        public static func timeSync(uioIndex: Int = 2) -> Configuration {
            Configuration(
                classID: "9527e630-d0ae-497b-adce-e80ab0175caf", instanceID: "2dd1ce17-079e-403c-b352-a1921ee207ee",
                uioIndex: uioIndex, ringSize: 0x5000, messageType: .timeSync, offeredVersions: .timeSync)
        }

        /// The heartbeat channel.
        public static func heartbeat(uioIndex: Int = 3) -> Configuration {
            Configuration(
                classID: "57164f39-9115-4e78-ab55-382f3bd5422d", instanceID: "fd149e91-82e0-4a7d-afa6-2a4166cbd7c0",
                uioIndex: uioIndex, ringSize: 0x5000, messageType: .heartbeat, offeredVersions: .heartbeat)
        }
    }

    public let deviceRoot: String
    public let configuration: Configuration
    /// `DEVROOT/dev/uioN`.
    public let devicePath: String

    private let memoryFD: Descriptor
    private let memory: MappedMemory
    private let rings: RingPair
    private let listener: Descriptor
    private let state = Locked(State())
    private let acceptor = Locked<(OSThread, EventFD)?>(nil)

    private struct State {
        var connection: Descriptor?
        var negotiated: (framework: ICVersion, message: ICVersion)?
        var nextTransactionID: UInt64 = 1
        var eventCount: UInt32 = 0
        var connections = 0
        var scratch: [UInt8] = []
    }

    /// Creates the sysfs files and the device socket, and the shared ring memory.
    public init(deviceRoot: String, configuration: Configuration) throws(UIOHostError) {
        self.deviceRoot = deviceRoot
        self.configuration = configuration
        let root = deviceRoot.hasSuffix("/") ? String(deviceRoot.dropLast()) : deviceRoot
        let uio = "uio\(configuration.uioIndex)"
        let deviceDir = root + "/sys/bus/vmbus/devices/" + configuration.instanceID
        devicePath = root + "/dev/" + uio
        let map0Size = 2 * configuration.ringSize
        do {
            try makeDirectories(deviceDir + "/uio/" + uio)
            try Sysfs.writeFile(deviceDir + "/class_id", contents: "{\(configuration.classID.lowercased())}\n")
            try Sysfs.writeFile(deviceDir + "/device_id", contents: "{\(configuration.instanceID.lowercased())}\n")
            try makeDirectories(root + "/sys/class/uio/" + uio + "/maps/map0")
            // The kernel prints UIO map sizes with %pa: 0x and 16 zero-padded hex digits.
            try Sysfs.writeFile(root + "/sys/class/uio/" + uio + "/maps/map0/size", contents: UIOHost.paddedHex(map0Size) + "\n")
            try makeDirectories(root + "/dev")
            memoryFD = try SharedMemory.create(name: "hvguest-" + uio, size: map0Size)
            memory = try MappedMemory(mapping: memoryFD, length: map0Size)
            listener = try SeqPacket.listen(devicePath)
        } catch {
            throw .system(error)
        }
        do { rings = try RingPair(base: memory.base, totalSize: map0Size) } catch { throw .ring(error) }
        rings.resetHeaders()
    }

    deinit { close() }

    static func paddedHex(_ value: Int) -> String {
        let digits = String(value, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }

    /// Stops serving: stops the background acceptor, closes the connection and the listening
    /// socket (the socket file stays until the device root is removed).
    public func close() {
        let running = acceptor.withLock { a -> (OSThread, EventFD)? in
            defer { a = nil }
            return a
        }
        if let (thread, stop) = running {
            stop.signal()
            thread.join()
        }
        state.withLock { s in
            s.connection?.close()
            s.connection = nil
        }
        listener.close()
    }

    /// True while a guest holds the device open (as far as we know without polling).
    public var isGuestConnected: Bool { state.withLock { $0.connection != nil } }

    /// How many guests have connected so far (reconnects included).
    public var connectionCount: Int { state.withLock { $0.connections } }

    /// The versions the last negotiation settled on (nil before it, or after a reconnect).
    public var negotiatedVersions: (framework: ICVersion, message: ICVersion)? { state.withLock { $0.negotiated } }

    /// The guest→host ring (for tests that inspect it).
    public var guestToHost: RingBuffer { rings.guestToHost }
    /// The host→guest ring.
    public var hostToGuest: RingBuffer { rings.hostToGuest }

    // MARK: Connections

    /// Waits for a guest to open the device and hands it the ring memory (the kernel resets
    /// both ring headers when the channel opens). A connected guest that has closed meanwhile is
    /// noticed and replaced.
    public func acceptGuest(timeoutMilliseconds: Int32) throws(UIOHostError) {
        try serialized { (s: inout State) throws(UIOHostError) in
            try refreshConnection(&s)
            if s.connection == nil { try accept(&s, timeoutMilliseconds: timeoutMilliseconds) }
        }
    }

    /// Accepts guests as they open the device, from a background thread, the way the kernel
    /// connects the channel on `open()` whether or not the host has work: the daemon's open
    /// never waits for a host operation. With `negotiateOnConnect` the host negotiates right
    /// away, as Hyper-V does when a channel opens (a failure is retried by the next `send`).
    /// A second opener while one guest is connected is refused (closed). `close()` stops it.
    public func startAcceptingInBackground(negotiateOnConnect: Bool = true, timeoutMilliseconds: Int32 = 5_000)
        throws(UIOHostError)
    {
        let stop: EventFD
        do { stop = try EventFD() } catch { throw .system(error) }
        let thread: OSThread
        do {
            thread = try OSThread(name: "uio-accept") {
                self.acceptLoop(stop: stop, negotiateOnConnect: negotiateOnConnect, timeoutMilliseconds: timeoutMilliseconds)
            }
        } catch { throw .system(error) }
        acceptor.withLock { $0 = (thread, stop) }
    }

    private func acceptLoop(stop: EventFD, negotiateOnConnect: Bool, timeoutMilliseconds: Int32) {
        while true {
            guard let ready = try? poll([(listener.fd, .readable), (stop.fd, .readable)], timeoutMilliseconds: -1) else { return }
            if !ready[1].isEmpty || ready[0].contains(.invalid) { return }
            if ready[0].isEmpty { continue }
            _ = try? serialized { (s: inout State) throws(UIOHostError) in
                try refreshConnection(&s)
                if s.connection != nil {
                    // One opener at a time: refuse the newcomer — if it is still waiting. Another
                    // caller (`acceptGuest`, `send`) may have accepted it between our poll and
                    // taking the lock; a blocking accept here would then hold the lock forever.
                    let ready = try? poll([(listener.fd, .readable)], timeoutMilliseconds: 0)
                    let pending = ready?.first?.contains(.readable) ?? false
                    if pending, let extra = try? SeqPacket.accept(listener) { extra.close() }
                    return
                }
                try accept(&s, timeoutMilliseconds: 0)
                if negotiateOnConnect { _ = try? negotiate(&s, timeoutMilliseconds: timeoutMilliseconds) }
            }
        }
    }

    private func serialized<R>(_ body: (inout State) throws(UIOHostError) -> R) throws(UIOHostError) -> R {
        try state.withLock { s in Result { () throws(UIOHostError) -> R in try body(&s) } }.get()
    }

    private func accept(_ s: inout State, timeoutMilliseconds: Int32) throws(UIOHostError) {
        do {
            let ready = try poll([(listener.fd, .readable)], timeoutMilliseconds: timeoutMilliseconds)
            guard ready[0].contains(.readable) else { throw UIOHostError.noGuest }
            let connection = try SeqPacket.accept(listener)
            rings.resetHeaders()
            let size = UInt32(memory.length)
            try connection.send(
                [UInt8(truncatingIfNeeded: size), UInt8(truncatingIfNeeded: size >> 8),
                 UInt8(truncatingIfNeeded: size >> 16), UInt8(truncatingIfNeeded: size >> 24)],
                passing: memoryFD)
            s.connection = connection
            s.negotiated = nil
            s.connections += 1
        } catch let error as UIOHostError {
            throw error
        } catch let error as SystemError {
            throw .system(error)
        } catch {
            throw .noGuest
        }
    }

    /// Handles every 4-byte packet the guest has sent without blocking; drops the connection
    /// when the guest closed it.
    private func refreshConnection(_ s: inout State) throws(UIOHostError) {
        while let connection = s.connection {
            let ready: [PollEvents]
            do { ready = try poll([(connection.fd, .readable)], timeoutMilliseconds: 0) } catch { throw .system(error) }
            if ready[0].isEmpty { return }
            if try !handleGuestWrite(&s, connection) { return }
        }
    }

    /// Reads one guest packet (its irqcontrol write). Returns false when the connection was
    /// dropped.
    private func handleGuestWrite(_ s: inout State, _ connection: Descriptor) throws(UIOHostError) -> Bool {
        let value: UInt32?
        do { value = try connection.readUInt32(isSocket: true) } catch {
            if error.meansDeviceGone {
                drop(&s)
                return false
            }
            throw .protocolViolation("guest write: \(error)")
        }
        guard let value else {
            drop(&s)
            return false
        }
        // uio_hv_generic irqcontrol: 1 unmasks host→guest interrupts and signals the host,
        // 0 masks them.
        rings.hostToGuest.interruptMask = value == 0 ? 1 : 0
        return true
    }

    private func drop(_ s: inout State) {
        s.connection?.close()
        s.connection = nil
        s.negotiated = nil
    }

    /// Fault injection: closes the guest's connection, as a rescind or the host closing the
    /// channel looks to the guest. A background acceptor takes the guest's reconnect.
    public func dropGuest() {
        state.withLock { drop(&$0) }
    }

    // MARK: Requests

    /// Negotiates the IC versions with the guest (the host does this first on every channel
    /// open). Returns the chosen versions; throws `negotiationFailed` when the guest found none.
    @discardableResult
    public func negotiate(timeoutMilliseconds: Int32) throws(UIOHostError) -> (framework: ICVersion, message: ICVersion) {
        try serialized { (s: inout State) throws(UIOHostError) in
            try negotiate(&s, timeoutMilliseconds: timeoutMilliseconds)
        }
    }

    private func negotiate(_ s: inout State, timeoutMilliseconds: Int32) throws(UIOHostError)
        -> (framework: ICVersion, message: ICVersion)
    {
        let offer = ICVersionOffer(
            frameworkVersions: configuration.offeredVersions.framework, messageVersions: configuration.offeredVersions.message)
        let request = ICNegotiation.request(offer: offer, transactionID: UInt8(truncatingIfNeeded: s.nextTransactionID))
        let response = try exchange(&s, payload: request.encode(), timeoutMilliseconds: timeoutMilliseconds)
        let parsed: (status: HResult, chosen: (framework: ICVersion, message: ICVersion)?)
        do { parsed = try ICNegotiation.parseResponse(response) } catch { throw .wire(error) }
        guard parsed.status.isSuccess, let chosen = parsed.chosen else { throw .negotiationFailed(status: parsed.status) }
        s.negotiated = chosen
        return chosen
    }

    /// A request of this IC's type carrying `body`, with the negotiated versions (or the
    /// highest offered ones before negotiation).
    public func makeRequest(body: [UInt8]) -> ICMessage {
        let versions = negotiatedVersions
        return ICMessage.request(
            type: configuration.messageType,
            frameworkVersion: versions?.framework ?? configuration.offeredVersions.framework.max() ?? ICVersion(3, 0),
            messageVersion: versions?.message ?? configuration.offeredVersions.message.max() ?? ICVersion(1, 0),
            body: body)
    }

    /// Sends one IC request and returns the guest's response payload (IC header first, with
    /// whatever padding the guest's packet carried). Accepts a guest and negotiates first when
    /// needed (after a reconnect, too). `timeoutMilliseconds` bounds each step.
    public func send(icMessage: ICMessage, timeoutMilliseconds: Int32) throws(UIOHostError) -> [UInt8] {
        try serialized { (s: inout State) throws(UIOHostError) in
            try refreshConnection(&s)
            if s.connection == nil { try accept(&s, timeoutMilliseconds: timeoutMilliseconds) }
            if s.negotiated == nil && icMessage.header.messageType != .negotiate {
                _ = try negotiate(&s, timeoutMilliseconds: timeoutMilliseconds)
            }
            return try exchange(&s, payload: icMessage.encode(), timeoutMilliseconds: timeoutMilliseconds)
        }
    }

    /// Sends a raw packet payload (no negotiation, no framing checks) and returns the response
    /// payload: for tests of malformed input.
    public func sendRaw(payload: [UInt8], timeoutMilliseconds: Int32) throws(UIOHostError) -> [UInt8] {
        try serialized { (s: inout State) throws(UIOHostError) in
            try refreshConnection(&s)
            if s.connection == nil { try accept(&s, timeoutMilliseconds: timeoutMilliseconds) }
            return try exchange(&s, payload: payload, timeoutMilliseconds: timeoutMilliseconds)
        }
    }

    /// Writes one request into the host→guest ring, interrupts the guest if the ring rules say
    /// so, and waits for the response with the same transaction id in the guest→host ring.
    private func exchange(_ s: inout State, payload: [UInt8], timeoutMilliseconds: Int32) throws(UIOHostError) -> [UInt8] {
        guard let connection = s.connection else { throw .noGuest }
        let transactionID = s.nextTransactionID
        s.nextTransactionID &+= 1
        let deadline = monotonicNanoseconds() + UInt64(max(timeoutMilliseconds, 0)) * 1_000_000

        // Responses to earlier requests that timed out are stale now.
        var buffer: [UInt8] = []
        swap(&buffer, &s.scratch)
        defer { swap(&buffer, &s.scratch) }
        do { while try rings.guestToHost.skip() != nil {} } catch { throw .ring(error) }

        let shouldInterrupt: Bool
        do { shouldInterrupt = try rings.hostToGuest.write(payload: payload, transactionID: transactionID) } catch {
            throw .ring(error)
        }
        if shouldInterrupt {
            // What uio_hv_generic's channel callback does: mask, count, wake the reader.
            rings.hostToGuest.interruptMask = 1
            s.eventCount &+= 1
            do { try connection.writeUInt32(s.eventCount, isSocket: true) } catch {
                drop(&s)
                throw .guestDisconnected
            }
        }

        while true {
            do {
                while let result = try rings.guestToHost.read(into: &buffer) {
                    if result.header.transactionID == transactionID { return buffer }
                }
            } catch {
                throw .ring(error)
            }
            let now = monotonicNanoseconds()
            if now >= deadline { throw .timedOut }
            // Short slices: a response written while the ring was not empty raises no signal.
            let slice = Int32(min((deadline - now) / 1_000_000 + 1, 20))
            let ready: [PollEvents]
            do { ready = try poll([(connection.fd, .readable)], timeoutMilliseconds: slice) } catch { throw .system(error) }
            if !ready[0].isEmpty {
                if try !handleGuestWrite(&s, connection) { throw .guestDisconnected }
            }
        }
    }
}
