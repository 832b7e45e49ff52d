import Testing
@testable import Spool

/// The accessors status pages read (issue 24): the log's segments and counters, and the task
/// queues a namespace has in this process.
@Suite struct SpoolEngineStatusTests {
    @Test func logStatusCountsTheWritesOfAStart() async throws {
        let h = try EngineHarness(durability: .sync)
        let before = h.engine.logStatus
        #expect(before.segmentBaseOffsets.count >= 1)
        _ = try await h.start("wf")
        let after = h.engine.logStatus
        #expect(after.recordsWritten > before.recordsWritten)
        #expect(after.bytesWritten > before.bytesWritten)
        #expect(after.endOffset > before.endOffset)
        #expect(after.fdatasyncs > before.fdatasyncs)
        #expect(after.meanFdatasync != nil)
    }

    @Test func taskQueueNamesListBothKindsOfEveryQueueUsed() async throws {
        let h = try EngineHarness()
        #expect(try h.engine.taskQueueNames().isEmpty)
        _ = try await h.start("wf")
        _ = try h.engine.describeTaskQueue(taskQueue: "other", kind: .activity)
        let names = try h.engine.taskQueueNames()
        #expect(names == [KnownTaskQueue(name: "other", kind: .workflow), KnownTaskQueue(name: "other", kind: .activity),
                          KnownTaskQueue(name: "q", kind: .workflow), KnownTaskQueue(name: "q", kind: .activity)])
        #expect(throws: SpoolError.self) { try h.engine.taskQueueNames(namespace: "nope") }
    }
}
