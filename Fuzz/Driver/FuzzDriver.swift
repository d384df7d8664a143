import Glibc
import HVFuzzBodies
import HVSystem

// libFuzzer entry points. One executable serves every target: HVFUZZ_TARGET names it
// (`HVFUZZ_TARGET=list` prints the names). A broken invariant traps, so libFuzzer saves the
// input as a crash (Fuzz/run puts crashes in Fuzz/crashes/<target>/, replayed by swift test).

private let selected: FuzzTarget? = environment("HVFUZZ_TARGET").flatMap(FuzzTargets.named)

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>?, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    if environment("HVFUZZ_TARGET") == "list" {
        for t in FuzzTargets.all { print("\(t.name)\t\(t.summary)") }
        exit(0)
    }
    guard let target = selected else {
        print("HVFUZZ_TARGET must name a target (HVFUZZ_TARGET=list shows them)")
        exit(2)
    }
    // HVFUZZ_SEEDS_DIR: (re)write the target's built-in seeds there first (Fuzz/run points it
    // at Fuzz/corpus/<target>, so the committed seeds always match the code).
    if let dir = environment("HVFUZZ_SEEDS_DIR") {
        for (i, seed) in target.seeds().enumerated() { writeSeed(dir + "/seed-\(i)", seed) }
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let target = selected else { return 0 }
    let bytes: [UInt8] = if let data, size > 0 { Array(UnsafeBufferPointer(start: data, count: size)) } else { [] }
    if let failure = target.body(bytes) { fatalError("\(target.name): \(failure)") }
    return 0
}

private func writeSeed(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return }
    defer { close(fd) }
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}
