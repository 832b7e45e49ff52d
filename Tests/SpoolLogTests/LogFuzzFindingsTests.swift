#if canImport(Glibc)
import Glibc
#endif
import SpoolTestSupport
import Testing
@testable import SpoolLog

/// Inputs found by the libFuzzer targets (`Tools/fuzz/`), kept as regression tests.
@Suite struct LogFuzzFindingsTests {
    /// FuzzCheckpoint: a `swap-manifest` whose CRC matches but whose segment count does not fit in
    /// an `Int` trapped in `SegmentSwap.init(fields:)` (`Int(UInt64)` overflow), so `Log.open`
    /// crashed the process instead of throwing `corruptCheckpoint`.
    @Test(arguments: [[UInt64.max, 0], [0, UInt64.max], [1, 5, UInt64(Int.max)], [UInt64(Int.max) - 1, 0, 0]])
    func aManifestWithAHugeCountIsCorruptNotATrap(fields: [UInt64]) throws {
        #expect(SegmentSwap(fields: fields) == nil)
        let dir = TemporaryDirectory()
        let log = try Log.open(directory: dir.log, configuration: smallSegmentConfiguration())
        try log.close()
        writeFile(dir.log + "/" + SegmentSwap.manifestName, CheckpointFile(magic: SegmentSwap.magic, fields: fields).encoded)
        let error = #expect(throws: LogError.self) { try Log.open(directory: dir.log, configuration: smallSegmentConfiguration()) }
        #expect(error?.code == .corruptCheckpoint)
    }

    @Test func aWellFormedManifestStillParses() {
        let swap = SegmentSwap(fields: [2, 0, 100, 1, 0])
        #expect(swap?.old == [0, 100])
        #expect(swap?.new == [0])
    }
}
