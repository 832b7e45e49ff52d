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

    /// Found by the damage matrix: another data directory's checkpoint, whose offsets all lie inside
    /// this log, was trusted, and every run of this log it did not name was hidden. Open now looks
    /// up the checkpoint's newest and oldest run in the log, finds records of other runs there, and
    /// replays the whole log instead.
    @Test("another store's checkpoint with offsets inside this log: ignored, every run of this log restored")
    func foreignCheckpoint() async throws {
        let harness = try EngineHarness(), other = try EngineHarness()
        var mine: [WorkflowExecution] = []
        for i in 0..<6 {
            mine.append(try await harness.start("mine-\(i)"))
            _ = try await other.start("other-\(i)")
        }
        try await harness.engine.close()
        try await other.engine.close()
        let path = harness.directory + "/data/checkpoint"
        let foreign = readFile(other.directory + "/data/checkpoint")
        try #require(!foreign.isEmpty && foreign != readFile(path))
        let fd = open(path, O_WRONLY | O_TRUNC)
        foreign.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
        close(fd)

        harness.engine = try EngineHarness.open(harness.directory, clock: harness.clock, durability: harness.durability)
        let report = try #require(harness.engine.recovery)
        #expect(!report.usedCheckpoint)
        #expect(report.ignoredCheckpoint?.contains("the checkpoint is not this log's") == true, "\(report.ignoredCheckpoint ?? "nil")")
        for execution in mine { _ = try harness.describe(execution) }
        #expect(harness.engine.listWorkflowExecutions().map(\.execution.workflowID).sorted() == (0..<6).map { "mine-\($0)" })
    }
}
