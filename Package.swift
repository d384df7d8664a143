// swift-tools-version:6.2
// hvguest — the guest side of Hyper-V's integration services for Linux.
// Layers (imports flow downwards only); see docs/ARCHITECTURE.md.
import PackageDescription

// Every target of ours is built with warnings as errors (CI and local alike).
let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

let package = Package(
    name: "hvguest",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "hvguestd", targets: ["hvguestd"]),
        .executable(name: "hvguestctl", targets: ["hvguestctl"]),
        .executable(name: "hvguest-emulator", targets: ["hvguest-emulator"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // C shims for what Swift cannot import (macros, _GNU_SOURCE functions, cmsg).
        .target(name: "CHVLinux"),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),

        // Pure core: byte formats and the VMBus ring algorithm. No I/O.
        .target(name: "HVWire", swiftSettings: strict),
        .target(name: "HVRing", dependencies: ["CHVLinux"], swiftSettings: strict),

        // TOML 1.0 parser for the configuration files: pure Swift, no dependencies.
        .target(name: "HVTOML", swiftSettings: strict),

        // The only module that calls libc.
        .target(name: "HVSystem", dependencies: ["CHVLinux", "CSystemd"], swiftSettings: strict),

        .target(name: "HVTransport", dependencies: ["HVWire", "HVRing", "HVSystem"], swiftSettings: strict),
        .target(
            name: "HVServiceKit",
            dependencies: ["HVWire", "HVSystem", "HVTransport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),

        // Services (never import each other).
        .target(name: "HVKVP", dependencies: ["HVServiceKit"], swiftSettings: strict),
        .target(name: "HVFileCopy", dependencies: ["HVServiceKit"], swiftSettings: strict),
        .target(name: "HVVSS", dependencies: ["HVServiceKit"], swiftSettings: strict),
        .target(name: "HVShutdown", dependencies: ["HVServiceKit"], swiftSettings: strict),
        .target(name: "HVTimeSync", dependencies: ["HVServiceKit"], swiftSettings: strict),
        .target(name: "HVHeartbeat", dependencies: ["HVServiceKit"], swiftSettings: strict),

        // Composition.
        .target(
            name: "HVDaemon",
            dependencies: [
                "HVServiceKit", "HVKVP", "HVFileCopy", "HVVSS",
                "HVShutdown", "HVTimeSync", "HVHeartbeat",
                "HVTOML",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),

        // The emulated host + kernel, and test support.
        .target(name: "HVEmulator", dependencies: ["HVWire", "HVRing", "HVSystem"], swiftSettings: strict),
        .target(name: "HVTesting", dependencies: ["HVServiceKit", "HVEmulator", "HVSystem"], swiftSettings: strict),
        // Fuzz target bodies (Fuzz/README.md): plain functions the libFuzzer driver and the
        // corpus replay test both call.
        .target(
            name: "HVFuzzBodies",
            dependencies: ["HVWire", "HVRing", "HVSystem", "HVTransport", "HVServiceKit", "HVVSS", "HVFileCopy", "HVKVP", "HVDaemon",
                           .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),

        // Executables: thin.
        .executableTarget(
            name: "hvguestd",
            dependencies: ["HVDaemon", "HVServiceKit", "HVSystem", "HVVSS", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict,
            // Release: fewer pages touched at start-up (idle RSS 10.0 -> 9.1 MiB, bench/NOTES.md):
            // packed relative relocations (DT_RELR, glibc >= 2.36; lld from the Swift toolchain
            // has them, gold does not, GNU ld then drops RELRO) instead of ~0.6 MiB of RELA
            // entries read at load, and no dynamic symbol table for the executable's own symbols
            // (nothing dlopens hvguestd or resolves symbols from it). RELRO and BIND_NOW as debian/rules
            // links every binary, so that the bench measures what ships.
            linkerSettings: [
                .unsafeFlags(
                    ["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs", "-Xlinker", "--no-export-dynamic",
                     "-Xlinker", "-z", "-Xlinker", "relro", "-Xlinker", "-z", "-Xlinker", "now"],
                    .when(platforms: [.linux], configuration: .release))
            ]),
        .executableTarget(
            name: "hvguestctl",
            dependencies: ["HVDaemon", "HVKVP", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict),
        // Benchmark driver (bench/run): the emulated host against hvguestd or a reference daemon.
        .executableTarget(
            name: "hvguest-bench",
            dependencies: ["HVEmulator", "HVSystem", "HVWire", "HVServiceKit", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        .executableTarget(
            name: "hvguest-emulator",
            dependencies: ["HVEmulator", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict),

        .testTarget(name: "HVWireTests", dependencies: ["HVWire"], swiftSettings: strict),
        .testTarget(name: "HVTOMLTests", dependencies: ["HVTOML", "HVSystem"], swiftSettings: strict),
        .testTarget(
            name: "HVRingTests", dependencies: ["HVRing", "HVWire", "HVTransport", "HVEmulator", "HVSystem"],
            swiftSettings: strict),
        .testTarget(name: "HVSystemTests", dependencies: ["HVSystem"], swiftSettings: strict),
        .testTarget(name: "HVKVPTests", dependencies: ["HVKVP", "HVTesting"], swiftSettings: strict),
        .testTarget(name: "HVFileCopyTests", dependencies: ["HVFileCopy", "HVTesting", "HVDaemon"], swiftSettings: strict),
        .testTarget(name: "HVVSSTests", dependencies: ["HVVSS", "HVTesting"], swiftSettings: strict),
        .testTarget(
            name: "HVReliabilityTests",
            dependencies: ["HVDaemon", "HVEmulator", "HVTesting", "HVVSS", "HVFileCopy", "HVKVP", "HVWire", "HVTransport", "HVSystem",
                           "HVServiceKit", "HVFuzzBodies"],
            swiftSettings: strict),
        .testTarget(
            name: "HVICTests",
            dependencies: [
                "HVShutdown", "HVTimeSync", "HVHeartbeat", "HVDaemon", "HVEmulator", "HVTesting", "HVTransport", "HVWire", "HVSystem",
            ],
            swiftSettings: strict),
        .testTarget(
            name: "HVDaemonTests", dependencies: ["HVDaemon", "HVEmulator", "HVTesting", "HVTransport"],
            swiftSettings: strict),
    ]
)

// The libFuzzer driver exists only for `Fuzz/run` (HVGUEST_FUZZ=1, built with
// --sanitize=fuzzer): it has no `main` of its own, so an ordinary build could not link it.
if Context.environment["HVGUEST_FUZZ"] != nil {
    package.targets.append(
        .executableTarget(name: "HVFuzz", dependencies: ["HVFuzzBodies"], path: "Fuzz/Driver", swiftSettings: strict))
    package.products.append(.executable(name: "HVFuzz", targets: ["HVFuzz"]))
}
