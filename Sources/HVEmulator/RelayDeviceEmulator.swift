import Glibc
import HVSystem
import HVWire

/// The kernel side of one relay device (`hv_utils_transport` + the service driver), served on a
/// seqpacket socket at `DEVROOT/dev/vmbus/hv_<kind>` (DESIGN.md, fake device layer 1).
///
/// It enforces what the kernel enforces: one opener, the registration handshake, exactly one
/// request in flight, reply sizes, and the request timeouts; and it reports what the host sees.
/// Where the kernel would fail a daemon write with EINVAL (a reply nobody asked for, a late
/// reply, a bad size) the emulator records a violation and closes the connection: the daemon
/// sees the channel fail, exactly as after EINVAL, and must reopen and re-register.
public final class RelayDeviceEmulator: @unchecked Sendable {
    public let kind: RelayKind
    public let path: String
    private let timeouts: KernelTimeouts
    private let onEvent: @Sendable (HostEvent) -> Void
    private let listener: Descriptor
    private let wake: EventFD
    private let commands = Locked<[Command]>([])
    private var thread: OSThread?
    private let shared = Locked(SharedState())

    struct SharedState {
        var connected = false
        var registered = false
        var registrations = 0
        var violations: [String] = []
    }

    struct Pending {
        var operation: String
        var detail: String
        var bytes: [UInt8]
        var timeout: Duration
        var completion: @Sendable (RelayOutcome) -> Void
        var deadline: UInt64 = 0
        var started: UInt64 = 0
    }

    enum Command {
        case submit(Pending)
        case dropConnection(String)
        case stop
    }

    /// Creates the socket (and its directory). Call `start()` to serve.
    public init(kind: RelayKind, root: String, timeouts: KernelTimeouts,
                onEvent: @escaping @Sendable (HostEvent) -> Void) throws(SystemError) {
        self.kind = kind
        self.timeouts = timeouts
        self.onEvent = onEvent
        path = (root.hasSuffix("/") ? root : root + "/") + kind.devicePath
        let dir = String(path[..<path.lastIndex(of: "/")!])
        try makeDirectories(dir)
        listener = try SeqPacket.listen(path)
        wake = try EventFD()
    }

    public func start() throws(SystemError) {
        onEvent(.listening(kind, path: path))
        thread = try OSThread(name: "emu-\(kind.rawValue)") { [self] in serve() }
    }

    /// Stops serving: fails anything pending, closes the connection, removes the socket file.
    public func stop() {
        commands.withLock { $0.append(.stop) }
        wake.signal()
        thread?.join()
        thread = nil
        listener.close()
        unlink(path)
    }

    public var isConnected: Bool { shared.withLock { $0.connected } }
    public var isRegistered: Bool { shared.withLock { $0.registered } }
    /// How many times a daemon has completed registration since start.
    public var registrationCount: Int { shared.withLock { $0.registrations } }
    public var violations: [String] { shared.withLock { $0.violations } }

    /// Sends one host request through the kernel to the daemon and returns what the host sees.
    /// `timeout` defaults to the kernel's (30 s; 900 s for VSS FREEZE: pass it).
    public func submit(operation: String, detail: String = "", bytes: [UInt8], timeout: Duration? = nil) async -> RelayOutcome {
        await withCheckedContinuation { (c: CheckedContinuation<RelayOutcome, Never>) in
            let p = Pending(operation: operation, detail: detail, bytes: bytes, timeout: timeout ?? timeouts.request,
                            completion: { c.resume(returning: $0) })
            commands.withLock { $0.append(.submit(p)) }
            wake.signal()
        }
    }

    /// Fault injection: the kernel side drops the daemon's connection (as on hibernation or
    /// driver reset). A pending request fails with E_FAIL.
    public func dropConnection(reason: String = "reset by the emulator") {
        commands.withLock { $0.append(.dropConnection(reason)) }
        wake.signal()
    }

    /// Waits until a daemon has registered `count` times in total (polling; test helper).
    public func waitForRegistration(count: Int = 1, timeout: Duration = .seconds(30)) async -> Bool {
        let clock = ContinuousClock()
        let end = clock.now + timeout
        while clock.now < end {
            if registrationCount >= count && isRegistered { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return registrationCount >= count && isRegistered
    }

    /// Waits until no daemon holds the device.
    public func waitForDisconnect(timeout: Duration = .seconds(30)) async -> Bool {
        let clock = ContinuousClock()
        let end = clock.now + timeout
        while clock.now < end {
            if !isConnected { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return !isConnected
    }

    // MARK: - The device thread

    private var connection: Descriptor?
    private var registered = false
    private var inFlight: Pending?
    private var queue: [Pending] = []

    private func serve() {
        while true {
            var fds: [(fd: Int32, events: PollEvents)] = [(listener.fd, .readable), (wake.fd, .readable)]
            if let c = connection { fds.append((c.fd, .readable)) }
            var timeout: Int32 = -1
            if let p = inFlight {
                let now = monotonicNanoseconds()
                timeout = p.deadline > now ? Int32(min((p.deadline - now) / 1_000_000 + 1, 60_000)) : 0
            }
            guard let ev = try? poll(fds, timeoutMilliseconds: timeout) else { continue }
            if !ev[1].isEmpty {
                wake.drain()
                if runCommands() { return }
            }
            if ev[0].contains(.readable) { acceptConnection() }
            if ev.count > 2, !ev[2].isEmpty { readFromDaemon() }
            expireInFlight()
            dispatch()
        }
    }

    /// Returns true when asked to stop.
    private func runCommands() -> Bool {
        let cmds = commands.withLock { c -> [Command] in
            let all = c
            c = []
            return all
        }
        for cmd in cmds {
            switch cmd {
            case .submit(let p):
                queue.append(p)
            case .dropConnection(let why):
                if connection != nil { disconnect(reason: why) }
            case .stop:
                if let p = inFlight {
                    inFlight = nil
                    finish(p, .kernelAnswered(.fail, reason: "emulator stopped"))
                }
                for p in queue { finish(p, .kernelAnswered(.fail, reason: "emulator stopped")) }
                queue = []
                connection?.close()
                connection = nil
                setShared { $0.connected = false; $0.registered = false }
                return true
            }
        }
        return false
    }

    private func setShared(_ body: (inout SharedState) -> Void) { shared.withLock(body) }

    private func acceptConnection() {
        guard let c = try? SeqPacket.accept(listener) else { return }
        if connection != nil {
            // The kernel's open() returns EBUSY for a second opener; a socket can only hang up.
            c.close()
            onEvent(.rejectedSecondOpener(kind))
            return
        }
        connection = c
        registered = false
        setShared { $0.connected = true; $0.registered = false }
        onEvent(.connected(kind))
    }

    private func disconnect(reason: String?) {
        connection?.close()
        connection = nil
        registered = false
        setShared { $0.connected = false; $0.registered = false }
        var failed: String?
        if let p = inFlight {
            // release(): the kernel answers the host at once with E_FAIL.
            inFlight = nil
            failed = p.operation
            finish(p, .kernelAnswered(.fail, reason: reason ?? "daemon closed the device"))
        }
        onEvent(.disconnected(kind, failedPending: failed))
    }

    private func violation(_ why: String) {
        setShared { $0.violations.append(why) }
        onEvent(.violation(kind, why))
        disconnect(reason: "protocol violation: \(why)")
    }

    private func readFromDaemon() {
        guard let c = connection else { return }
        let received: ReceivedMessage
        do { received = try c.receive(capacity: 65536) } catch {
            disconnect(reason: nil)
            return
        }
        switch received {
        case .closed:
            disconnect(reason: nil)
        case .truncated(let n):
            violation("a \(n)-byte write exceeds any message the kernel accepts")
        case .message(let m):
            if !registered {
                register(m)
            } else if let p = inFlight {
                if let problem = RelayRules.replyProblem(kind, m) {
                    // Size mismatch: the kernel's write handler returns EINVAL; the request
                    // then times out. We keep it simple and strict: fail it now.
                    inFlight = nil
                    finish(p, .kernelAnswered(.fail, reason: "bad reply: \(problem)"))
                    violation(problem)
                } else {
                    inFlight = nil
                    finish(p, .replied(m))
                }
            } else {
                violation("a \(m.count)-byte write with no request in flight (late reply after a timeout?)")
            }
        }
    }

    private func register(_ m: [UInt8]) {
        switch RelayRules.registration(kind, m) {
        case .failure(let why):
            violation("registration refused: \(why)")
        case .success(let (detail, reply)):
            guard let reply else {
                // Legacy registration: the current kernel sends nothing and never becomes ready.
                onEvent(.violation(kind, "legacy registration (\(detail)): the kernel will never be ready"))
                setShared { $0.violations.append("legacy registration") }
                return
            }
            do { try c_send(reply) } catch {
                disconnect(reason: nil)
                return
            }
            registered = true
            setShared { $0.registered = true; $0.registrations += 1 }
            onEvent(.registered(kind, detail: detail))
        }
    }

    private func c_send(_ bytes: [UInt8]) throws(SystemError) {
        guard let c = connection else { throw SystemError("send", errno: ENOTCONN) }
        try c.send(bytes)
    }

    private func expireInFlight() {
        guard let p = inFlight, monotonicNanoseconds() >= p.deadline else { return }
        inFlight = nil
        finish(p, .kernelAnswered(.fail, reason: "the daemon did not answer within \(p.timeout)"))
    }

    private func dispatch() {
        // Without a registered daemon the kernel answers some requests itself (PROTOCOL §1.3).
        if !registered {
            var keep: [Pending] = []
            for p in queue {
                if let answer = RelayRules.answerWithoutDaemon(kind, p.bytes) {
                    finish(p, .kernelAnswered(answer, reason: "no daemon registered"))
                } else {
                    keep.append(p)
                }
            }
            queue = keep
            return
        }
        while inFlight == nil, !queue.isEmpty {
            var p = queue.removeFirst()
            if let answer = RelayRules.kernelHandled(kind, p.bytes) {
                finish(p, .kernelAnswered(answer, reason: "answered by the kernel"))
                continue
            }
            p.started = monotonicNanoseconds()
            p.deadline = p.started &+ nanoseconds(p.timeout)
            do { try c_send(p.bytes) } catch {
                finish(p, .kernelAnswered(.fail, reason: "could not queue the message to the daemon"))
                disconnect(reason: nil)
                return
            }
            inFlight = p
        }
    }

    private func finish(_ p: Pending, _ outcome: RelayOutcome) {
        let status: HResult
        switch outcome {
        case .replied(let bytes): status = RelayRules.status(kind, bytes)
        case .kernelAnswered(let h, _): status = h
        }
        var detail = p.detail
        if case .kernelAnswered(_, let reason) = outcome {
            detail += detail.isEmpty ? "(\(reason))" : " (\(reason))"
        }
        let us = p.started == 0 ? 0 : (monotonicNanoseconds() &- p.started) / 1000
        onEvent(.answered(kind, operation: p.operation, status: status, detail: detail, microseconds: us))
        p.completion(outcome)
    }
}

func nanoseconds(_ d: Duration) -> UInt64 {
    let (s, atto) = d.components
    if s < 0 { return 0 }
    return UInt64(s) &* 1_000_000_000 &+ UInt64(atto / 1_000_000_000)
}
