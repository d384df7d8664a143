import ArgumentParser
import Glibc
import HVEmulator
import HVSystem

@main
struct HVGuestEmulator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hvguest-emulator",
        abstract: "An emulated Hyper-V host and guest kernel for hvguestd: tests, demos, benchmarks.",
        discussion: """
            `serve` creates a device root (seqpacket sockets standing in for /dev/vmbus/hv_*) and
            prints what the host sees. The other verbs send host operations to a running `serve`
            with the same --root. `demo` does everything in one go against a real hvguestd.
            """,
        subcommands: [Serve.self, Demo.self, Status.self, KVPSet.self, KVPDelete.self, KVPGet.self, KVPList.self, KVPGetIP.self,
                      VSSFreeze.self, VSSThaw.self, VSSBackup.self, CopyFile.self, Shutdown.self, TimeSample.self,
                      Heartbeat.self])
}

/// Prints one line, flushed (the demo interleaves with hvguestd's own output).
func say(_ s: String) {
    print(s)
    fflush(nil)
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve a device root until interrupted (Ctrl-C).")
    @Option(help: "Device root to create (hvguestd --device-root DIR).") var root: String
    @Option(help: "Kernel request timeout in seconds (the kernel's is 30).") var requestTimeout: Int = 30
    @Option(help: "Kernel FREEZE timeout in seconds (the kernel's is 900).") var freezeTimeout: Int = 900
    @Flag(help: "Also serve the shutdown, time-sync and heartbeat ICs as UIO devices (uio1-3) for mode = \"userspace\".")
    var ics = false
    @Option(help: "File copy over the kernel relay (hv_fcopy, kernels ≤ 6.9) or the VMBus ring at dev/uio0 (uio, ≥ 6.10): relay | uio.")
    var fcopyTransport: String = "relay"

    func run() async throws {
        guard let transport = EmulatedHost.FileCopyTransport(rawValue: fcopyTransport) else {
            throw ValidationError("--fcopy-transport must be relay or uio, not \(fcopyTransport)")
        }
        try makeDirectories(root)
        let host = try EmulatedHost(root: root, ics: ics ? Set(ICKind.allCases) : [],
                                    timeouts: KernelTimeouts(request: .seconds(requestTimeout), freeze: .seconds(freezeTimeout)),
                                    fileCopyTransport: transport,
                                    onEvent: { event in
                                        // One line per 6 KiB fragment would drown the rest.
                                        if case .answered(_, "WRITE_TO_FILE", .ok, _, _) = event { return }
                                        say("[host] \(event)")
                                    })
        let control = try EmulatorControl(host: host)
        try host.start()
        try control.start()
        if let uio = host.fcopy.uio {
            say("[host] fcopy: VMBus ring device ready at \(uio.channel.devicePath) (uio_hv_generic stand-in)")
        }
        say("[host] serving \(root); run: hvguestd --device-root \(root) --state-dir \(root)/state")
        // Wait for SIGINT/SIGTERM without a busy loop.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        var sig: Int32 = 0
        let waiter = Task.detached { () -> Void in _ = sigwait(&set, &sig) }
        await waiter.value
        say("[host] stopping")
        control.stop()
        host.stop()
    }
}

/// Options shared by every host-operation verb.
struct RootOption: ParsableArguments {
    @Option(help: "Device root of a running `hvguest-emulator serve`.") var root: String
}

protocol HostVerb: ParsableCommand {
    var options: RootOption { get }
    var commandArguments: [String] { get }
}

extension HostVerb {
    func run() throws {
        let out = try EmulatorControl.send(commandArguments, root: options.root)
        print(out.text)
        if !out.ok { throw ExitCode(1) }
    }
}

struct Status: HostVerb {
    static let configuration = CommandConfiguration(abstract: "Which devices have a registered daemon.")
    @OptionGroup var options: RootOption
    var commandArguments: [String] { ["status"] }
}

struct KVPSet: HostVerb {
    static let configuration = CommandConfiguration(commandName: "kvp-set", abstract: "Add or modify a KVP item (Add/ModifyKvpItems).")
    @OptionGroup var options: RootOption
    @Option(help: "Pool: 0 = external (host items), 3 = auto-external.") var pool: Int = 0
    @Argument var key: String
    @Argument var value: String
    var commandArguments: [String] { ["kvp-set", String(pool), key, value] }
}

struct KVPDelete: HostVerb {
    static let configuration = CommandConfiguration(commandName: "kvp-delete", abstract: "Remove a KVP item (RemoveKvpItems).")
    @OptionGroup var options: RootOption
    @Option var pool: Int = 0
    @Argument var key: String
    var commandArguments: [String] { ["kvp-delete", String(pool), key] }
}

struct KVPGet: HostVerb {
    static let configuration = CommandConfiguration(commandName: "kvp-get", abstract: "Read one KVP item by key.")
    @OptionGroup var options: RootOption
    @Option var pool: Int = 0
    @Argument var key: String
    var commandArguments: [String] { ["kvp-get", String(pool), key] }
}

struct KVPList: HostVerb {
    static let configuration = CommandConfiguration(
        commandName: "kvp-list", abstract: "Enumerate a pool as the host does (1 = GuestExchangeItems, 2 = GuestIntrinsicExchangeItems).")
    @OptionGroup var options: RootOption
    @Option var pool: Int = 2
    var commandArguments: [String] { ["kvp-list", String(pool)] }
}

struct KVPGetIP: HostVerb {
    static let configuration = CommandConfiguration(commandName: "kvp-get-ip", abstract: "GET_IP_INFO for the adapter with this MAC.")
    @OptionGroup var options: RootOption
    @Argument var mac: String
    var commandArguments: [String] { ["kvp-get-ip", mac] }
}

struct VSSFreeze: HostVerb {
    static let configuration = CommandConfiguration(commandName: "vss-freeze", abstract: "Send FREEZE.")
    @OptionGroup var options: RootOption
    var commandArguments: [String] { ["vss-freeze"] }
}

struct VSSThaw: HostVerb {
    static let configuration = CommandConfiguration(commandName: "vss-thaw", abstract: "Send THAW.")
    @OptionGroup var options: RootOption
    var commandArguments: [String] { ["vss-thaw"] }
}

struct VSSBackup: HostVerb {
    static let configuration = CommandConfiguration(commandName: "backup", abstract: "A backup: FREEZE, hold, THAW.")
    @OptionGroup var options: RootOption
    @Option(help: "How long the snapshot holds the freeze, in milliseconds.") var holdMs: Int = 100
    var commandArguments: [String] { ["vss-backup", String(holdMs)] }
}

struct CopyFile: HostVerb {
    static let configuration = CommandConfiguration(commandName: "copy-file", abstract: "Copy-VMFile: copy a host file into the guest.")
    @OptionGroup var options: RootOption
    @Argument(help: "Source file on this machine (the host side).") var source: String
    @Argument(help: "Destination path in the guest, with file name.") var destination: String
    @Flag var overwrite = false
    @Flag var createFullPath = false
    var commandArguments: [String] {
        ["copy-file", source, destination] + (overwrite ? ["--overwrite"] : []) + (createFullPath ? ["--create-full-path"] : [])
    }
}

struct Shutdown: HostVerb {
    static let configuration = CommandConfiguration(
        abstract: "InitiateShutdown / reboot / hibernate over the shutdown IC (needs serve --ics and [shutdown] mode = \"userspace\").")
    @OptionGroup var options: RootOption
    @Flag(help: "Force: proceed even if the guest holds a shutdown inhibitor.") var force = false
    @Flag var reboot = false
    @Flag var hibernate = false
    @Option(help: "Reason code.") var reason: UInt32 = 0
    @Option(help: "Message shown/logged in the guest.") var message: String = ""
    var commandArguments: [String] {
        ["shutdown"] + (force ? ["--force"] : []) + (reboot ? ["--reboot"] : []) + (hibernate ? ["--hibernate"] : [])
            + ["--reason", String(reason), "--message", message]
    }
}

struct TimeSample: HostVerb {
    static let configuration = CommandConfiguration(
        commandName: "time-sample", abstract: "Send a time-sync sample whose host time is this machine's clock plus an offset.")
    @OptionGroup var options: RootOption
    @Option(name: .customLong("offset-ms"), help: "Host time minus this machine's clock, in milliseconds.") var offsetMs: Double = 0
    @Flag(help: "SYNC (set the clock now) instead of SAMPLE.") var sync = false
    @Option(help: "How long ago the host took the sample (stale beyond the guest's stale_seconds).") var ageSeconds: Double = 0
    var commandArguments: [String] {
        ["time-sample", "--offset-ms", String(offsetMs), "--age-seconds", String(ageSeconds)] + (sync ? ["--sync"] : [])
    }
}

struct Heartbeat: HostVerb {
    static let configuration = CommandConfiguration(abstract: "Send heartbeats and show the component status.")
    @OptionGroup var options: RootOption
    @Option(help: "How many.") var count: Int = 1
    var commandArguments: [String] { ["heartbeat", String(count)] }
}
