#if canImport(Glibc)
import Glibc
#endif

/// SwiftPM links an executable with `main` defined as `<target>_main`; hand that to libFuzzer's driver.
@_cdecl("FuzzEngineRecord_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    if let directory = getenv("SPOOL_FUZZ_WRITE_SEEDS") {
        // Seed the corpus with real encodings (run.sh does this for an empty corpus).
        for (i, seed) in EngineFuzzSeeds.seeds().enumerated() {
            let fd = open(String(cString: directory) + "/seed-\(i)", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            guard fd >= 0 else { return 1 }
            _ = seed.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        return 0
    }
    return runFuzzer(argc, argv) { data, size in data.map { fuzzEngineRecord($0, size) } ?? 0 }
}

@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                                 _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                                 _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

private func runFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                       _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt {
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, callback)
}
