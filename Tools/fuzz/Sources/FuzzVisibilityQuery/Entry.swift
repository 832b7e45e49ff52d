import FuzzDriver

/// SwiftPM links an executable with `main` defined as `<target>_main`; hand that to libFuzzer's driver.
@_cdecl("FuzzVisibilityQuery_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, seeds: VisibilityFuzzSeeds.seeds) { data, size in data.map { fuzzVisibilityQuery($0, size) } ?? 0 }
}
