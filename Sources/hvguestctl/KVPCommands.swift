import ArgumentParser
import Glibc
import HVKVP
import HVWire

/// `hvguestctl kvp …`: read and write the KVP pool files directly, with the daemon's locks,
/// whether or not the daemon runs. (Wired into the top-level command by main.swift.)
struct KVPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvp",
        abstract: "Read and write the Hyper-V KVP pools (/var/lib/hyperv/.kvp_pool_N).",
        subcommands: [List.self, Get.self, Set.self, Delete.self, Clean.self])

    struct Location: ParsableArguments {
        @Option(name: .customLong("state-dir"), help: "Directory holding the pool files.")
        var stateDirectory = "/var/lib/hyperv"

        var admin: KVPAdmin { KVPAdmin(stateDirectory: stateDirectory) }
    }

    static func parsePool(_ text: String) throws -> KVPPool {
        guard let n = Int(text), let pool = KVPPool(number: n) else {
            throw ValidationError("pool must be 0-4 (0 external, 1 guest, 2 auto, 3 auto-external, 4 auto-internal), got \(text)")
        }
        return pool
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List items (all pools, or one).")
        @OptionGroup var location: Location
        @Option(help: "Pool number 0-4.", transform: KVPCommand.parsePool) var pool: KVPPool?
        @Flag(help: "Print JSON: [{\"pool\":N,\"key\":…,\"value\":…}].") var json = false

        func run() throws {
            let items = try location.admin.list(pool: pool)
            if json {
                print(KVPAdmin.json(items))
            } else if !items.isEmpty {
                print(KVPAdmin.table(items))
            }
        }
    }

    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the value of KEY (exit 1 when absent).")
        @OptionGroup var location: Location
        @Option(help: "Pool number 0-4 (default: the first pool holding KEY).", transform: KVPCommand.parsePool)
        var pool: KVPPool?
        @Argument var key: String

        func run() throws {
            guard let item = try location.admin.get(key, pool: pool) else { throw ExitCode(1) }
            print(item.value)
        }
    }

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set KEY to VALUE (guest pool by default: the host reads it as GuestExchangeItems).")
        @OptionGroup var location: Location
        @Option(help: "Pool number 0-4.", transform: KVPCommand.parsePool) var pool: KVPPool = .guest
        @Argument var key: String
        @Argument var value: String

        func run() throws {
            try location.admin.set(key, value, pool: pool)
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete KEY (guest pool by default; exit 1 when absent).")
        @OptionGroup var location: Location
        @Option(help: "Pool number 0-4.", transform: KVPCommand.parsePool) var pool: KVPPool = .guest
        @Argument var key: String

        func run() throws {
            guard try location.admin.delete(key, pool: pool) else { throw ExitCode(1) }
        }
    }

    struct Clean: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove host-pushed and stale KVP data before generalising an image.")
        @OptionGroup var location: Location
        @Flag(help: "Keep the guest pool (1).") var keepGuest = false

        func run() throws {
            let report = try location.admin.clean(keepGuestPool: keepGuest)
            for (pool, n) in report.recordsRemoved.sorted(by: { $0.key < $1.key }) {
                print("pool \(pool.rawValue): removed \(n) record\(n == 1 ? "" : "s")")
            }
            for file in report.filesRemoved { print("removed \(file)") }
        }
    }
}
