import FuzzDriver

/// SwiftPM links an executable with `main` defined as `<target>_main`; hand that to libFuzzer's driver.
@_cdecl("FuzzQueueRecord_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, seeds: QueueFuzzSeeds.seeds) { data, size in data.map { fuzzQueueRecord($0, size) } ?? 0 }
}
