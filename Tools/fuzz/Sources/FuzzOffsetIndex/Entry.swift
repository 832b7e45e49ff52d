import FuzzDriver

/// SwiftPM links an executable with `main` defined as `<target>_main`; hand that to libFuzzer's driver.
@_cdecl("FuzzOffsetIndex_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, seeds: IndexFuzzSeeds.seeds) { data, size in data.map { fuzzOffsetIndex($0, size) } ?? 0 }
}
