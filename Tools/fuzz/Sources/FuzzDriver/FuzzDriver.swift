#if canImport(Glibc)
import Glibc
#endif

/// The body of every fuzz target's entry point: hands `callback` to libFuzzer's driver, or, when
/// `SPOOL_FUZZ_WRITE_SEEDS` names a directory, writes `seeds()` there as `seed-0`, `seed-1`, …
/// and returns (run.sh does this for an empty corpus, so fuzzing starts from real encodings).
///
/// Each target still defines its own `@_cdecl("<target>_main")` function — SwiftPM links an
/// executable with `main` renamed to that symbol — and calls this from it.
public func runFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                      seeds: () -> [[UInt8]] = { [] },
                      _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt {
    if let directory = getenv("SPOOL_FUZZ_WRITE_SEEDS") {
        return writeSeeds(seeds(), to: String(cString: directory))
    }
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, callback)
}

private func writeSeeds(_ seeds: [[UInt8]], to directory: String) -> CInt {
    for (i, seed) in seeds.enumerated() {
        let fd = open(directory + "/seed-\(i)", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return 1 }
        let written = seed.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == seed.count else { return 1 }
    }
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                                 _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                                 _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt
