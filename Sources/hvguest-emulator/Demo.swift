import ArgumentParser
import Glibc
import HVEmulator
import HVSystem
import HVWire

/// `hvguest-emulator demo`: starts an emulated host, runs the real hvguestd against it, performs
/// host operations and prints what the host sees; then stops and restarts the daemon to show
/// disconnect and re-registration. Everything lives in a temporary directory, removed at the end.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run hvguestd against the emulated host and show what the host sees.")

    @Option(help: "The hvguestd binary (default: next to this program).") var daemon: String?
    @Flag(help: "Keep the temporary device root afterwards.") var keep = false

    func run() async throws {
        let daemonPath = daemon ?? currentExecutablePath().map { p in String(p[..<p.lastIndex(of: "/")!]) + "/hvguestd" } ?? "hvguestd"
        guard access(daemonPath, X_OK) == 0 else {
            say("cannot run \(daemonPath): build it first (swift build) or pass --daemon PATH")
            throw ExitCode(2)
        }
        let root = try makeTemporaryDirectory(prefix: "/tmp/hvguest-demo-")
        defer { if !keep { removeTree(root) } else { say("[demo] kept \(root)") } }
        let guestFiles = root + "/guest-files"
        try makeDirectories(guestFiles)
        // VSS: as root, a small ext4 image of our own, loop-mounted in the temporary directory,
        // is the only thing the daemon may freeze (an explicit allow-list). Without root there
        // is nothing safe to freeze and the daemon refuses FREEZE.
        let loop = getuid() == 0 ? DemoLoopFilesystem(directory: root) : nil
        defer { loop?.unmount() }
        let allowList = loop.map { "[\"\($0.mountpoint)\"]" } ?? "[]"
        if loop == nil { say("[demo] not root: no loop filesystem to freeze, so FREEZE will be refused (nothing real is ever frozen)") }
        try writeText(root + "/hvguest.toml", """
            # Demo configuration: emulated device root, so only these paths may be touched.
            [fcopy]
            allowed_roots = ["\(guestFiles)"]

            [vss]
            # The allow-list: the only filesystems the daemon may freeze.
            mountpoints = \(allowList)
            thaw_deadline_seconds = 30
            """)
        try writeText(root + "/hello.txt", "Hello from the Hyper-V host!\n")

        say("[demo] device root \(root)")
        let host = try EmulatedHost(root: root, timeouts: KernelTimeouts(request: .seconds(30), freeze: .seconds(60)),
                                    onEvent: { event in
                                        if case .answered(_, "WRITE_TO_FILE", .ok, _, _) = event { return }
                                        say("[host] \(event)")
                                    })
        try host.start()
        defer { host.stop() }

        let args = ["--device-root", root, "--state-dir", root + "/state", "--config", root + "/hvguest.toml", "kvp", "vss", "fcopy"]
        say("[demo] starting \(daemonPath) \(args.joined(separator: " "))")
        var guest = try ChildProcess(executable: daemonPath, arguments: args)
        defer { guest.terminate() }
        guard await host.waitForAllRegistered(timeout: .seconds(15)) else {
            say("[demo] hvguestd did not register on every device within 15 s")
            throw ExitCode(1)
        }

        say("\n[demo] --- KVP: the host pushes an item, then reads the guest's intrinsic items ---")
        _ = await host.kvp.set(pool: .external, key: "DemoKey", value: "hello from the host")
        let (intrinsic, end) = await host.kvp.intrinsicItems()
        for item in intrinsic { say("[host]   \(item)") }
        say("[host]   GuestIntrinsicExchangeItems: \(intrinsic.count) items, enumeration ended with \(end)")

        say("\n[demo] --- File copy: Copy-VMFile hello.txt into the guest ---")
        let data = try readFile(root + "/hello.txt")
        let job = await host.fcopy.copy(data, toDirectory: guestFiles + "/inbox", name: "hello.txt", createFullPath: true)
        say("[host]   \(job)")

        say("\n[demo] --- VSS: a backup (freeze, hold, thaw) ---")
        let backup = await host.vss.backup(hold: .milliseconds(50))
        say("[host]   \(backup)")

        say("\n[demo] --- The daemon stops: the host loses contact ---")
        guest.terminate()
        for d in host.devices { _ = await d.waitForDisconnect(timeout: .seconds(5)) }
        let st = await host.vss.freeze()
        say("[host]   FREEZE with no daemon → \(st)")

        say("\n[demo] --- The daemon starts again and re-registers ---")
        guest = try ChildProcess(executable: daemonPath, arguments: args)
        let again = await host.waitForAllRegistered(timeout: .seconds(15))
        say("[host]   all devices registered again: \(again)")
        let (items, _) = await host.kvp.enumerate(pool: .external)
        say("[host]   the guest still holds \(items.count) host item(s) in pool 0 after the restart")
        guest.terminate()
        say("\n[demo] done")
    }
}

/// A 32 MiB ext4 image created and loop-mounted inside the demo's own directory.
final class DemoLoopFilesystem {
    let mountpoint: String
    private var mounted = false

    init?(directory: String) {
        let image = directory + "/vss-demo.img"
        mountpoint = directory + "/vss-demo"
        func run(_ exe: String, _ args: [String]) -> Bool {
            (try? Spawn.run(executable: exe, arguments: args, environment: ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
                            timeoutMilliseconds: 30_000))?.succeeded ?? false
        }
        guard (try? makeDirectories(mountpoint)) != nil,
            run("/usr/bin/truncate", ["-s", "32M", image]),
            run("/sbin/mkfs.ext4", ["-q", "-F", image]),
            run("/bin/mount", ["-o", "loop", image, mountpoint])
        else {
            say("[demo] could not create a loop filesystem; FREEZE will be refused")
            return nil
        }
        mounted = true
        say("[demo] loop-mounted \(image) at \(mountpoint) (the daemon's VSS allow-list)")
    }

    func unmount() {
        guard mounted else { return }
        // The daemon thaws on every exit path; thaw-all semantics are not needed here. umount
        // also detaches the auto-clear loop device.
        _ = try? Spawn.run(executable: "/bin/umount", arguments: [mountpoint], environment: [], timeoutMilliseconds: 30_000)
        mounted = false
    }
}

func writeText(_ path: String, _ text: String) throws {
    let d = try Descriptor.open(path, flags: O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644)
    let bytes = Array(text.utf8)
    try bytes.withUnsafeBytes { try d.writeAll($0) }
}
