import Testing
@testable import Spool

/// An activity task a poll took but could not hand to its worker goes back on its queue at once,
/// as the same attempt (issue 22: "a task whose poll response could not be delivered is
/// dispatched again at once, not after a timeout"). In Temporal an activity's started event is
/// written only with its outcome, so a start nobody received leaves no trace in history.
@Suite struct SpoolEngineUndeliveredActivityTests {
    func runWithActivity(_ h: EngineHarness) async throws -> WorkflowExecution {
        let run = try await h.start()
        _ = try await h.completeWorkflowTask([scheduleActivity(startToClose: .seconds(30))])
        return run
    }

    @Test func theSameAttemptGoesToTheNextPollerWithoutTheClockMoving() async throws {
        let h = try EngineHarness()
        let run = try await runWithActivity(h)
        let lost = try #require(try await h.pollActivityTask(identity: "gone"))
        #expect(lost.attempt == 1)
        #expect(try await h.pollActivityTask() == nil)
        try await h.engine.returnUndeliveredActivityTask(taskToken: lost.taskToken)
        let pending = try #require(try h.describe(run).pendingActivities.first)
        #expect(pending.state == .scheduled)
        #expect(pending.attempt == 1)

        let again = try #require(try await h.pollActivityTask(identity: "second"))
        #expect(again.attempt == 1)
        #expect(again.activityID == "a")
        try await h.engine.respondActivityTaskCompleted(taskToken: again.taskToken, result: .binary("ok"))
        // One started event, the second worker's, attempt 1: the lost start left nothing.
        let history = try await h.history(run)
        #expect(history.map(\.eventType).suffix(3) == [.activityTaskStarted, .activityTaskCompleted, .workflowTaskScheduled])
        let started = history.filter { $0.eventType == .activityTaskStarted }
        #expect(started.count == 1)
        guard case .activityTaskStarted(let attributes) = started[0].attributes else { Issue.record("started"); return }
        #expect(attributes.identity == "second")
        #expect(attributes.attempt == 1)
    }

    @Test func aReturnedStartSurvivesACrashAndTheTaskIsPolledAfterReopen() async throws {
        let h = try EngineHarness(durability: .sync)
        let run = try await runWithActivity(h)
        let lost = try #require(try await h.pollActivityTask(identity: "gone"))
        try await h.engine.returnUndeliveredActivityTask(taskToken: lost.taskToken)
        try await h.crashAndReopen()
        #expect(try h.describe(run).pendingActivities.first?.state == .scheduled)
        let again = try #require(try await h.pollActivityTask(identity: "after-reopen"))
        #expect(again.attempt == 1)
        try await h.engine.respondActivityTaskCompleted(taskToken: again.taskToken, result: .binary("ok"))
        #expect(try await h.eventTypes(run).suffix(2) == [.activityTaskCompleted, .workflowTaskScheduled])
    }

    @Test func aTokenThatNoLongerNamesAStartedAttemptChangesNothing() async throws {
        let h = try EngineHarness()
        let run = try await runWithActivity(h)
        let task = try #require(try await h.pollActivityTask())
        try await h.engine.respondActivityTaskCompleted(taskToken: task.taskToken, result: nil)
        let before = try await h.history(run)
        try await h.engine.returnUndeliveredActivityTask(taskToken: task.taskToken)
        #expect(try await h.history(run) == before)
        #expect(try await h.pollActivityTask() == nil)

        // Returning twice: the second call finds a scheduled attempt and does nothing, so the
        // task is queued once.
        let h2 = try EngineHarness(name: "twice")
        _ = try await runWithActivity(h2)
        let lost = try #require(try await h2.pollActivityTask())
        try await h2.engine.returnUndeliveredActivityTask(taskToken: lost.taskToken)
        try await h2.engine.returnUndeliveredActivityTask(taskToken: lost.taskToken)
        #expect(try await h2.pollActivityTask() != nil)
        #expect(try await h2.pollActivityTask() == nil)
    }

    @Test func aWorkflowTaskTokenIsRefused() async throws {
        let h = try EngineHarness()
        _ = try await h.start()
        let workflowTask = try #require(try await h.pollWorkflowTask())
        await #expect { try await h.engine.returnUndeliveredActivityTask(taskToken: workflowTask.taskToken) }
            throws: { isSpoolError($0, .invalidTaskToken) }
    }
}
