#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolTestSupport
import Testing
@testable import Spool

/// A checkpoint that cannot be read at all (a directory in its place) no longer stops the engine's
/// open: like a checkpoint that does not decode, it is ignored and the whole log replayed, and the
/// directory is moved aside so checkpoints can be written again.
@Suite struct SpoolEngineDamagedCheckpointTests {
    @Test("a directory where the engine's checkpoint belongs: every run restored, moved aside, close writes a checkpoint")
    func directoryCheckpoint() async throws {
        let harness = try EngineHarness()
        let first = try await harness.start("wf-1")
        let second = try await harness.start("wf-2")
        try await harness.engine.close()
        let path = harness.directory + "/data/checkpoint"
        #expect(unlink(path) == 0 && mkdir(path, 0o700) == 0)
        harness.engine = try EngineHarness.open(harness.directory, clock: harness.clock, durability: harness.durability)
        let report = try #require(harness.engine.recovery)
        #expect(report.ignoredCheckpoint != nil && !report.usedCheckpoint)
        #expect(report.movedCheckpoint == path + ".damaged")
        _ = try harness.describe(first)
        _ = try harness.describe(second)
        try await harness.closeAndReopen()
        #expect(harness.engine.recovery?.usedCheckpoint == true)
        _ = try harness.describe(second)
    }
}
