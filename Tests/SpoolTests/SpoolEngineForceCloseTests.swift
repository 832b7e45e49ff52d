import Testing
@testable import Spool

/// The run timeout and terminate close a run from outside; a *started* workflow task fails
/// first with ForceCloseCommand, as Temporal's `TimeoutWorkflow` / `TerminateWorkflow` do
/// (`GetStartedWorkflowTask`: a task only scheduled writes nothing, nor does a transient attempt).
@Suite struct SpoolEngineForceCloseTests {
    @Test func theRunTimeoutFailsAStartedTaskWithForceCloseCommand() async throws {
        let h = try EngineHarness()
        let run = try await h.start(runTimeout: .seconds(30))
        let task = try #require(try await h.pollWorkflowTask())
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "late")
        // The task's own timeout (10 s) must not win: keep it alive with a forced new task.
        await h.advance(.seconds(5))
        let response = try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [], identity: "worker",
                                                                       forceCreateNewWorkflowTask: true, returnNewWorkflowTask: true)
        let second = try #require(response.workflowTask)
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "later")
        await h.advance(.seconds(9))
        let third = try #require(try await h.engine.respondWorkflowTaskCompleted(
            taskToken: second.taskToken, commands: [], identity: "worker", forceCreateNewWorkflowTask: true,
            returnNewWorkflowTask: true).workflowTask)
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "last")
        await h.advance(.seconds(9))
        let fourth = try #require(try await h.engine.respondWorkflowTaskCompleted(
            taskToken: third.taskToken, commands: [], identity: "worker", forceCreateNewWorkflowTask: true,
            returnNewWorkflowTask: true).workflowTask)
        await h.advance(.seconds(7))                                    // 30 s since the start
        let history = try await h.history(run)
        let last = fourth.startedEventID
        #expect(history.count == Int(last) + 2)
        #expect(history[Int(last)...].map(\.eventType) == [.workflowTaskFailed, .workflowExecutionTimedOut])
        guard case .workflowTaskFailed(let failed) = history[Int(last)].attributes,
              case .workflowExecutionTimedOut(let timedOut) = history[Int(last) + 1].attributes else { Issue.record("attributes"); return }
        #expect(failed.cause == .forceCloseCommand && failed.identity == "history-service" && failed.failure == nil)
        #expect(failed.startedEventID == last && failed.scheduledEventID == last - 1)
        #expect(timedOut.retryState == .retryPolicyNotSet)
        try await h.crashAndReopen()
        #expect(try await h.history(run) == history)
    }

    @Test func theRunTimeoutWritesTheBufferedEventsAfterTheFailedTask() async throws {
        let h = try EngineHarness()
        let run = try await h.start(runTimeout: .seconds(8))
        _ = try #require(try await h.pollWorkflowTask())
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "buffered")
        await h.advance(.seconds(8))
        #expect(try await h.eventTypes(run) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                                .workflowTaskFailed, .workflowExecutionSignaled, .workflowExecutionTimedOut])
        try await h.closeAndReopen()
        #expect(try await h.eventTypes(run).count == 6)
    }

    @Test func aScheduledTaskIsNotFailedWhenTheRunTimesOut() async throws {
        let h = try EngineHarness()
        let run = try await h.start(runTimeout: .seconds(8))
        await h.advance(.seconds(8))
        #expect(try await h.eventTypes(run) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowExecutionTimedOut])
        let terminated = try await h.start("t")
        try await h.engine.terminateWorkflowExecution(execution: terminated)
        #expect(try await h.eventTypes(terminated) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowExecutionTerminated])
    }

    @Test func aStartedTransientAttemptIsNotWrittenWhenTheRunTimesOut() async throws {
        let h = try EngineHarness()
        let run = try await h.start(runTimeout: .seconds(8))
        let first = try #require(try await h.pollWorkflowTask())
        try await h.engine.respondWorkflowTaskFailed(taskToken: first.taskToken, failure: Failure(message: "panic"))
        _ = try #require(try await h.pollWorkflowTask())
        await h.advance(.seconds(8))
        #expect(try await h.eventTypes(run) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                                .workflowTaskFailed, .workflowExecutionTimedOut])
        #expect(try await h.history(run).last?.eventID == 5)
    }
}
