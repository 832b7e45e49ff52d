import Testing
@testable import Spool

@Suite struct SpoolEngineCommandTests {
    /// Completes the first workflow task with `commands` and returns the run and its history.
    func rejected(_ commands: [Command], setup: [Command] = []) async throws -> (EngineHarness, WorkflowExecution, WorkflowTaskFailedEventAttributes) {
        let h = try EngineHarness()
        let run = try await h.start()
        var failedIndex = 3
        if !setup.isEmpty {
            _ = try await h.completeWorkflowTask(setup)
            try await h.engine.signalWorkflowExecution(execution: run, signalName: "next")
            failedIndex = try await h.history(run).count + 1
        }
        let before = try h.describe(run)
        _ = try await h.completeWorkflowTask(commands)
        let history = try await h.history(run)
        let failedEvent = history[failedIndex]
        guard case .workflowTaskFailed(let failed) = failedEvent.attributes else {
            Issue.record("expected WorkflowTaskFailed at \(failedIndex + 1), got \(history.map(\.eventType))")
            throw SpoolError(.notFound, "no failure")
        }
        // Nothing of the commands was applied.
        let after = try h.describe(run)
        #expect(after.pendingActivities == before.pendingActivities)
        #expect(after.pendingTimerIDs == before.pendingTimerIDs)
        #expect(after.executionInfo.status == .running)
        // As in Temporal: the retry (attempt 2) is transient, so WorkflowTaskFailed is the last event.
        #expect(history.last?.eventType == .workflowTaskFailed)
        #expect(after.pendingWorkflowTask?.attempt == 2)
        return (h, run, failed)
    }

    @Test func cancelOfAnUnknownActivityFailsTheTask() async throws {
        let (_, _, failed) = try await rejected([scheduleActivity("x"), .requestCancelActivityTask(.init(scheduledEventID: 99))])
        #expect(failed.cause == .badRequestCancelActivityAttributes)
        #expect(failed.failure?.message.contains("99") == true)
    }

    @Test func duplicateActivityIDFailsTheTask() async throws {
        let (_, _, failed) = try await rejected([scheduleActivity("a"), scheduleActivity("a")])
        #expect(failed.cause == .scheduleActivityDuplicateID)
        let (_, _, failedAgainstPending) = try await rejected([scheduleActivity("a")], setup: [scheduleActivity("a")])
        #expect(failedAgainstPending.cause == .scheduleActivityDuplicateID)
    }

    @Test func badTimeoutsFailTheTask() async throws {
        let (_, _, negative) = try await rejected([scheduleActivity(startToClose: .seconds(-1))])
        #expect(negative.cause == .badScheduleActivityAttributes)
        let (_, _, missing) = try await rejected([scheduleActivity(startToClose: nil, scheduleToClose: nil)])
        #expect(missing.cause == .badScheduleActivityAttributes)
        let (_, _, timer) = try await rejected([.startTimer(.init(timerID: "t", startToFireTimeout: .zero))])
        #expect(timer.cause == .badStartTimerAttributes)
        let (_, _, retry) = try await rejected([scheduleActivity(retry: RetryPolicy(backoffCoefficient: 0.5))])
        #expect(retry.cause == .badScheduleActivityAttributes)
    }

    @Test func timerCommandsAreValidated() async throws {
        let (_, _, duplicate) = try await rejected([.startTimer(.init(timerID: "t", startToFireTimeout: .seconds(1)))],
                                                   setup: [.startTimer(.init(timerID: "t", startToFireTimeout: .seconds(100)))])
        #expect(duplicate.cause == .startTimerDuplicateID)
        let (_, _, unknown) = try await rejected([.cancelTimer(.init(timerID: "nope"))])
        #expect(unknown.cause == .badCancelTimerAttributes)
        let (_, _, marker) = try await rejected([.recordMarker(.init(markerName: ""))])
        #expect(marker.cause == .badRecordMarkerAttributes)
    }

    @Test func aCommandAfterAClosingCommandFailsTheTask() async throws {
        let (_, _, failed) = try await rejected([.completeWorkflowExecution(.init()), scheduleActivity()])
        #expect(failed.cause == .badCompleteWorkflowExecutionAttributes)
    }

    @Test func closingWhileNewEventsWaitIsAnUnhandledCommand() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        let task = try #require(try await h.pollWorkflowTask())
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "late")
        try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [.completeWorkflowExecution(.init())])
        let types = try await h.eventTypes(run)
        #expect(types.suffix(3) == [.workflowTaskFailed, .workflowExecutionSignaled, .workflowTaskScheduled])
        #expect(try h.describe(run).executionInfo.status == .running)
        let retry = try #require(try await h.pollWorkflowTask())
        #expect(retry.history.contains { $0.eventType == .workflowExecutionSignaled })
    }

    @Test func cancelingAnActivityThatHasNotStartedCancelsItAtOnce() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        _ = try await h.completeWorkflowTask([scheduleActivity()])   // 5 scheduled
        _ = try await h.engine.signalWorkflowExecution(execution: run, signalName: "cancel it")
        _ = try await h.completeWorkflowTask([.requestCancelActivityTask(.init(scheduledEventID: 5))])
        let history = try await h.history(run)
        #expect(history[9...].map(\.eventType) == [.activityTaskCancelRequested, .activityTaskCanceled, .workflowTaskScheduled])
        guard case .activityTaskCanceled(let canceled) = history[10].attributes else { Issue.record("canceled"); return }
        #expect(canceled.latestCancelRequestedEventID == 10 && canceled.startedEventID == 0 && canceled.scheduledEventID == 5)
        // Its queued task is dropped when polled.
        #expect(try await h.pollActivityTask() == nil)
    }

    @Test func cancelingAStartedActivityIsDeliveredThroughItsHeartbeat() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        _ = try await h.completeWorkflowTask([scheduleActivity(heartbeat: .seconds(10))])
        let activity = try #require(try await h.pollActivityTask())
        #expect(try await h.engine.recordActivityTaskHeartbeat(taskToken: activity.taskToken).cancelRequested == false)
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "cancel it")
        _ = try await h.completeWorkflowTask([.requestCancelActivityTask(.init(scheduledEventID: 5))])
        #expect(try h.describe(run).pendingActivities.first?.state == .cancelRequested)
        #expect(try await h.engine.recordActivityTaskHeartbeat(taskToken: activity.taskToken).cancelRequested)
        try await h.engine.respondActivityTaskCanceled(taskToken: activity.taskToken, details: .binary([3]))
        let history = try await h.history(run)
        #expect(history.suffix(3).map(\.eventType) == [.activityTaskStarted, .activityTaskCanceled, .workflowTaskScheduled])
        guard case .activityTaskCanceled(let canceled) = history[history.count - 2].attributes else { Issue.record("canceled"); return }
        #expect(canceled.latestCancelRequestedEventID == 10)
        #expect(canceled.startedEventID == Int64(history.count - 2))
        #expect(canceled.details == .binary([3]))
    }

    @Test func userTimerFiresAndCanBeCanceled() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        _ = try await h.completeWorkflowTask([.startTimer(.init(timerID: "short", startToFireTimeout: .seconds(5))),
                                              .startTimer(.init(timerID: "long", startToFireTimeout: .seconds(60))),
                                              .recordMarker(.init(markerName: "m", details: ["k": .binary([1])]))])
        await h.advance(.seconds(4))
        #expect(try await h.eventTypes(run).count == 7)
        await h.advance(.seconds(1))
        let history = try await h.history(run)
        #expect(history[7...].map(\.eventType) == [.timerFired, .workflowTaskScheduled])
        guard case .timerFired(let fired) = history[7].attributes else { Issue.record("fired"); return }
        #expect(fired.timerID == "short" && fired.startedEventID == 5)
        _ = try await h.completeWorkflowTask([.cancelTimer(.init(timerID: "long"))])
        await h.advance(.seconds(120))
        let types = try await h.eventTypes(run)
        #expect(types.last == .timerCanceled)
        #expect(!types.dropFirst(8).contains(.timerFired))
        #expect(try h.describe(run).pendingTimerIDs.isEmpty)
    }

    @Test func failAndCancelCommandsCloseTheRun() async throws {
        let h = try EngineHarness()
        let failedRun = try await h.start("f")
        _ = try await h.completeWorkflowTask([.failWorkflowExecution(.init(failure: Failure.application("no", type: "Bad")))])
        #expect(try h.describe(failedRun).executionInfo.status == .failed)
        let canceledRun = try await h.start("c")
        try await h.engine.requestCancelWorkflowExecution(execution: canceledRun, reason: "user")
        try await h.engine.requestCancelWorkflowExecution(execution: canceledRun, reason: "again")
        let task = try #require(try await h.pollWorkflowTask())
        #expect(task.history.filter { $0.eventType == .workflowExecutionCancelRequested }.count == 1)
        try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [.cancelWorkflowExecution(.init())])
        #expect(try h.describe(canceledRun).executionInfo.status == .canceled)
        #expect(try await h.eventTypes(canceledRun).last == .workflowExecutionCanceled)
    }

    @Test func continueAsNewClosesTheRunAndStartsTheNextInOneAppend() async throws {
        let h = try EngineHarness()
        let run = try await h.start(input: .binary([1]))
        _ = try await h.completeWorkflowTask([.continueAsNewWorkflowExecution(.init(input: .binary([2])))])
        let description = try h.describe(run)
        #expect(description.executionInfo.status == .continuedAsNew)
        let newRunID = try #require(description.newExecutionRunID)
        let current = try h.engine.describeWorkflowExecution(execution: WorkflowExecution(workflowID: run.workflowID))
        #expect(current.executionInfo.execution.runID == newRunID)
        #expect(current.executionInfo.status == .running)
        let task = try #require(try await h.pollWorkflowTask())
        #expect(task.workflowExecution.runID == newRunID)
        guard case .workflowExecutionStarted(let started) = task.history[0].attributes else { Issue.record("started"); return }
        #expect(started.continuedExecutionRunID == run.runID)
        #expect(started.firstExecutionRunID == run.runID)
        #expect(started.input == .binary([2]))
    }

    @Test func aRejectedContinueAsNewLeavesNoRunBehind() async throws {
        let (h, run, failed) = try await rejected([.continueAsNewWorkflowExecution(.init()), scheduleActivity()])
        #expect(failed.cause == .badContinueAsNewAttributes)
        #expect(h.engine.listWorkflowExecutions().count == 1)
        let current = try h.engine.describeWorkflowExecution(execution: WorkflowExecution(workflowID: run.workflowID))
        #expect(current.executionInfo.execution == run)
        try await h.engine.signalWorkflowExecution(execution: WorkflowExecution(workflowID: run.workflowID), signalName: "still here")
    }
}
