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

    @Test func describeGivesTheBacklogPerFairnessKeyWhenAsked() async throws {
        let h = try EngineHarness()
        _ = try await h.start("wf")
        func activity(_ id: String, _ key: String, priority: Int = 2) -> Command {
            var attributes = ScheduleActivityTaskCommandAttributes(activityID: id, activityType: "charge", taskQueue: "acts",
                                                                   startToCloseTimeout: .seconds(60))
            attributes.priority = Priority(priorityKey: priority, fairnessKey: key)
            return .scheduleActivityTask(attributes)
        }
        _ = try await h.completeWorkflowTask([
            activity("a1", "tenant-a"), activity("b1", "tenant-b"), activity("a2", "tenant-a"), activity("a3", "tenant-a"),
            activity("b2", "tenant-b"), activity("none", ""), activity("low", "tenant-a", priority: 4),
        ])
        h.clock.advance(by: .seconds(2))
        let plain = try h.engine.describeTaskQueue(taskQueue: "acts", kind: .activity)
        #expect(plain.backlog.allSatisfy { $0.fairnessKeys.isEmpty })
        let info = try h.engine.describeTaskQueue(taskQueue: "acts", kind: .activity, fairnessKeys: true)
        #expect(info.backlog[1].count == 6)
        #expect(info.backlog[1].fairnessKeys == [
            TaskQueueFairnessKeyBacklog(key: "tenant-a", count: 3, oldestAge: .seconds(2)),
            TaskQueueFairnessKeyBacklog(key: "tenant-b", count: 2, oldestAge: .seconds(2)),
        ])
        #expect(info.backlog[3].fairnessKeys == [TaskQueueFairnessKeyBacklog(key: "tenant-a", count: 1, oldestAge: .seconds(2))])
        #expect(info.backlog[2].fairnessKeys.isEmpty)
        // A task taken leaves its key's count.
        _ = try await h.engine.pollActivityTaskQueue(taskQueue: "acts", identity: "w", timeout: .zero)
        let after = try h.engine.describeTaskQueue(taskQueue: "acts", kind: .activity, fairnessKeys: true)
        let keyedAfter = after.backlog[1].fairnessKeys.map(\.count).reduce(0, +)
        #expect(after.backlog[1].count == 5 && (keyedAfter == 4 || keyedAfter == 5))
    }
}
