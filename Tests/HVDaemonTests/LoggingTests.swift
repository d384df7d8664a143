import Foundation
import HVServiceKit
import HVSystem
import Logging
import Testing

@testable import HVDaemon

/// Collects what a handler delivers.
private final class Recorder: Sendable {
    let entries = Locked<[[String]]>([])
    let lines = Locked<[String]>([])
}

@Suite struct LogEntryFormatTests {
    @Test(arguments: [
        (Logger.Level.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2),
    ])
    func priorityMapping(level: Logger.Level, priority: Int) {
        #expect(LogEntryFormat.syslogPriority(level) == priority)
    }

    @Test func journalFieldNames() {
        for good in ["HV_SERVICE", "HV_DURATION_USEC", "A", "X9", "MESSAGE_ID"] {
            #expect(LogEntryFormat.isJournalFieldName(good), "\(good)")
        }
        for bad in ["", "hv_service", "Hv", "_PID", "9LIVES", "HV-OP", "HV OP", "ÄB", String(repeating: "A", count: 65)] {
            #expect(!LogEntryFormat.isJournalFieldName(bad), "\(bad)")
        }
    }

    @Test func fieldListSendsValidNamesAsFieldsAndTheRestInTheMessage() {
        let fields = LogEntryFormat.journalFields(
            level: .warning, message: "pool write failed",
            metadata: [
                LogField.service: "kvp", LogField.pool: "3", LogField.durationMicroseconds: .stringConvertible(1250),
                "path": "/var/lib/hyperv/.kvp_pool_3", "_PID": "1", "PRIORITY": "0",
            ],
            identifier: "hvguestd", file: "HVKVP/Pool.swift", function: "write(_:)", line: 42)
        #expect(
            fields == [
                "MESSAGE=pool write failed PRIORITY=0 _PID=1 path=/var/lib/hyperv/.kvp_pool_3",
                "PRIORITY=4",
                "SYSLOG_IDENTIFIER=hvguestd",
                "CODE_FILE=HVKVP/Pool.swift",
                "CODE_LINE=42",
                "CODE_FUNC=write(_:)",
                "HV_DURATION_USEC=1250",
                "HV_POOL=3",
                "HV_SERVICE=kvp",
            ])
    }

    @Test func multiLineMessageStaysOneField() {
        let fields = LogEntryFormat.journalFields(
            level: .error, message: "hook failed:\nline 1\nline 2", metadata: [LogField.operation: "freeze\nthaw"],
            identifier: "hvguestd", file: "f", function: "g", line: 1)
        #expect(fields.count == 7)
        #expect(fields[0] == "MESSAGE=hook failed:\nline 1\nline 2")
        #expect(fields[6] == "HV_OP=freeze\nthaw")
    }

    @Test func stderrLineFormat() {
        let line = LogEntryFormat.stderrLine(
            level: .notice, message: "frozen", metadata: [LogField.service: "vss", LogField.operation: "freeze", "count": "2"],
            timestamp: nil)
        #expect(line == "notice [vss] frozen HV_OP=freeze count=2\n")
        let bare = LogEntryFormat.stderrLine(level: .info, message: "a\nb\r\nc", metadata: [:], timestamp: "2026-11-25T16:34:51.123Z")
        #expect(bare == "2026-11-25T16:34:51.123Z info a\\nb\\r\\nc\n")
    }

    @Test func utcTimestampShape() {
        let t = utcTimestamp()
        #expect(t.count == 24)
        #expect(t.hasSuffix("Z"))
        #expect(t.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil)
    }
}

@Suite struct LogHandlerTests {
    @Test func journalHandlerBuildsFieldsFromLoggerCall() {
        let recorder = Recorder()
        var logger = Logger(label: "test") { label in
            JournalLogHandler(label: label, level: .info, gate: LogGate(), sender: { fields in recorder.entries.withLock { $0.append(fields) } })
        }
        logger[metadataKey: LogField.service] = "fcopy"
        logger.debug("not shown")
        let line: UInt = #line + 1
        logger.info("copied", metadata: [LogField.status: "0x00000000", "dest": "/tmp/x"])
        let entries = recorder.entries.current
        #expect(entries.count == 1)
        let fields = entries.first ?? []
        #expect(fields.first == "MESSAGE=copied dest=/tmp/x")
        #expect(fields.contains("PRIORITY=6"))
        #expect(fields.contains("SYSLOG_IDENTIFIER=hvguestd"))
        #expect(fields.contains("CODE_LINE=\(line)"))
        #expect(fields.contains { $0.hasPrefix("CODE_FILE=") && $0.hasSuffix("LoggingTests.swift") })
        #expect(fields.contains("CODE_FUNC=journalHandlerBuildsFieldsFromLoggerCall()"))
        #expect(fields.contains("HV_SERVICE=fcopy"))
        #expect(fields.contains("HV_STATUS=0x00000000"))
    }

    @Test func handlersWaitWhileTheGateIsHeld() {
        let gate = LogGate()
        let recorder = Recorder()
        let journal = Logger(label: "j") { label in
            JournalLogHandler(label: label, gate: gate, sender: { fields in recorder.entries.withLock { $0.append(fields) } })
        }
        let stderr = Logger(label: "s") { label in
            StderrLogHandler(label: label, timestamps: false, gate: gate, write: { line in recorder.lines.withLock { $0.append(line) } })
        }
        gate.hold()
        journal.warning("while frozen")
        stderr.error("also frozen", metadata: [LogField.service: "vss"])
        #expect(recorder.entries.current.isEmpty)
        #expect(recorder.lines.current.isEmpty)
        #expect(gate.release() == 0)
        #expect(recorder.entries.current.first?.first == "MESSAGE=while frozen")
        #expect(recorder.lines.current == ["error [vss] also frozen\n"])
    }

    @Test func stderrHandlerAddsTimestampsWhenAsked() {
        let recorder = Recorder()
        let logger = Logger(label: "s") { label in
            StderrLogHandler(label: label, timestamps: true, gate: LogGate(), write: { line in recorder.lines.withLock { $0.append(line) } })
        }
        logger.info("hello")
        let line = recorder.lines.current.first ?? ""
        #expect(line.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info hello\n/) != nil)
    }

    @Test func targetsResolve() {
        #expect(HVLogging.resolvedTarget(.stderr) == .stderr)
        #expect(HVLogging.resolvedTarget(.journal) == .journal)
        let underSystemd = Journal.isUnderSystemd && Journal.isSocketPresent
        #expect(HVLogging.resolvedTarget(.auto) == (underSystemd ? .journal : .stderr))
        var settings = DaemonSettings()
        settings.logTarget = .journal
        settings.logLevel = .warning
        let handler = HVLogging.makeHandler(label: "x", settings: settings)
        #expect(handler is JournalLogHandler)
        #expect(handler.logLevel == .warning)
        settings.logTarget = .stderr
        #expect(HVLogging.makeHandler(label: "x", settings: settings) is StderrLogHandler)
    }
}

// MARK: - A real journald in a private mount namespace

/// Runs `body` on a fresh OS thread whose mount namespace is private (unshare(CLONE_NEWNS)
/// unshares only the calling thread's filesystem context), so tmpfs mounts made there — and
/// the journald started from there — are invisible to the rest of the machine and vanish
/// when the thread and its children are gone.
private func inPrivateMountNamespace<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
    let result = Locked<Result<T, any Error>?>(nil)
    let thread = try OSThread(name: "hv-journal-ns") {
        result.withLock { r in
            r = Result { () throws -> T in
                let hostNamespace = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/mnt")
                guard try unshare(CLONE_NEWNS) == 0 else { throw TestFailure("unshare(CLONE_NEWNS): errno \(errno)") }
                let ours = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self/ns/mnt")
                // Never mount anything unless we are certainly in our own namespace, and
                // propagation to the host is cut off.
                guard ours != hostNamespace else { throw TestFailure("mount namespace did not change") }
                guard mount(nil, "/", nil, UInt(MS_REC | MS_PRIVATE), nil) == 0 else {
                    throw TestFailure("make / rprivate: errno \(errno)")
                }
                guard mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") == 0 else { throw TestFailure("mount /run: errno \(errno)") }
                if fileKind("/var/log/journal") == .directory {
                    guard mount("tmpfs", "/var/log/journal", "tmpfs", 0, "mode=0755") == 0 else {
                        throw TestFailure("mount /var/log/journal: errno \(errno)")
                    }
                }
                return try body()
            }
        }
    }
    thread.join()
    guard let r = result.current else { throw TestFailure("namespace thread produced nothing") }
    return try r.get()
}

/// `unshare` and `pipe2` need _GNU_SOURCE, which the Glibc module is not built with.
private func libcFunction<F>(_ name: String, as: F.Type) throws -> F {
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), name) else { throw TestFailure("dlsym \(name)") }
    return unsafeBitCast(symbol, to: F.self)
}

private func unshare(_ flags: Int32) throws -> Int32 {
    try libcFunction("unshare", as: (@convention(c) (Int32) -> Int32).self)(flags)
}

private func pipe2(_ fds: UnsafeMutablePointer<Int32>, _ flags: Int32) throws -> Int32 {
    try libcFunction("pipe2", as: (@convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32).self)(fds, flags)
}

/// `CLONE_NEWNS` from <sched.h>.
private let CLONE_NEWNS: Int32 = 0x0002_0000

private struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// posix_spawn from the calling thread (so the child shares its mount namespace), with a clean
/// environment; stdout is captured when `capture` is set, stderr goes to /dev/null.
private func spawn(_ argv: [String], capture: Bool) throws -> (pid: pid_t, output: Int32?) {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    var pipeFDs: [Int32] = [-1, -1]
    if capture {
        guard try pipe2(&pipeFDs, O_CLOEXEC) == 0 else { throw TestFailure("pipe2: errno \(errno)") }
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
    } else {
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    }
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let args = argv.map { strdup($0) } + [nil]
    let env = [strdup("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), nil]
    defer {
        args.forEach { free($0) }
        env.forEach { free($0) }
    }
    var pid: pid_t = 0
    let r = posix_spawn(&pid, argv[0], &actions, nil, args, env)
    if capture { close(pipeFDs[1]) }
    guard r == 0 else {
        if capture { close(pipeFDs[0]) }
        throw TestFailure("posix_spawn \(argv[0]): errno \(r)")
    }
    return (pid, capture ? pipeFDs[0] : nil)
}

private func runAndCapture(_ argv: [String]) throws -> String {
    let (pid, fd) = try spawn(argv, capture: true)
    guard let fd else { return "" }
    let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    let data = handle.readDataToEndOfFile()
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return String(decoding: data, as: UTF8.self)
}

/// journalctl's JSON prints a field with control characters (our newlines) as a byte array.
private func jsonText(_ value: Any?) -> String? {
    if let s = value as? String { return s }
    if let bytes = value as? [Int] { return String(decoding: bytes.map { UInt8(truncatingIfNeeded: $0) }, as: UTF8.self) }
    return nil
}

@Suite struct LiveJournalTests {
    static let journald = "/lib/systemd/systemd-journald"

    @Test(
        .enabled(
            if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: journald)
                && FileManager.default.isExecutableFile(atPath: "/usr/bin/journalctl"),
            "needs root, systemd-journald and journalctl: runs a private journald in a mount namespace"),
        .timeLimit(.minutes(1)))
    func entryReachesARealJournald() throws {
        let marker = "t" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let output = try inPrivateMountNamespace { () throws -> String in
            let (journaldPID, _) = try spawn([Self.journald], capture: false)
            defer {
                kill(journaldPID, SIGTERM)
                var status: Int32 = 0
                waitpid(journaldPID, &status, 0)
            }
            let deadline = monotonicNanoseconds() + 5_000_000_000
            while !Journal.isSocketPresent {
                guard monotonicNanoseconds() < deadline else { throw TestFailure("journald socket did not appear") }
                sleepMilliseconds(20)
            }
            // The default sender: sd_journal_sendv to /run/systemd/journal/socket, which this
            // thread resolves inside the private namespace.
            let logger = Logger(label: "live") { label in JournalLogHandler(label: label, level: .debug, gate: LogGate()) }
            logger.warning(
                "first line\nsecond line",
                metadata: [LogField.service: "test", LogField.operation: .string(marker), "detail": "x y"])
            while true {
                let out = try runAndCapture(["/usr/bin/journalctl", "--no-pager", "-o", "json", "HV_OP=\(marker)"])
                if !out.isEmpty { return out }
                guard monotonicNanoseconds() < deadline else { throw TestFailure("entry not found in the journal") }
                sleepMilliseconds(50)
            }
        }
        let firstLine = output.split(separator: "\n").first.map(String.init) ?? ""
        let entry = try #require(try JSONSerialization.jsonObject(with: Data(firstLine.utf8)) as? [String: Any])
        #expect(jsonText(entry["MESSAGE"]) == "first line\nsecond line detail=x y")
        #expect(jsonText(entry["PRIORITY"]) == "4")
        #expect(jsonText(entry["SYSLOG_IDENTIFIER"]) == "hvguestd")
        #expect(jsonText(entry["HV_SERVICE"]) == "test")
        #expect(jsonText(entry["HV_OP"]) == marker)
        #expect(jsonText(entry["CODE_FUNC"]) == "entryReachesARealJournald()")
        #expect(jsonText(entry["CODE_FILE"])?.hasSuffix("LoggingTests.swift") == true)
        #expect(jsonText(entry["_TRANSPORT"]) == "journal")
        #expect(jsonText(entry["_PID"]) == String(getpid()))
    }
}
