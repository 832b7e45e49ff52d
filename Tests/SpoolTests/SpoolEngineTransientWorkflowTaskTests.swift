import Testing
@testable import Spool

/// Transient workflow-task attempts, as Temporal's history service runs them
/// (`workflowTaskStateMachine`): the first failed or timed-out attempt is written; from the
/// second consecutive attempt on, WorkflowTaskScheduled / WorkflowTaskStarted are not written,
/// the worker receives them appended to its history, and they are written with
/// WorkflowTaskCompleted when an attempt completes. The expected histories below are Temporal's
/// for the same calls.
@Suite struct SpoolEngineTransientWorkflowTaskTests {
    func fail(_ h: EngineHarness, _ task: WorkflowTask) async throws {
        try await h.engine.respondWorkflowTaskFailed(taskToken: task.taskToken, cause: .workflowWorkerUnhandledFailure,
                                                     failure: Failure(message: "panic"), identity: "worker")
    }

    @Test func onlyTheFirstFailureIsWrittenAndACompletingAttemptWritesItsEvents() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        try await fail(h, try #require(try await h.pollWorkflowTask()))
        let second = try #require(try await h.pollWorkflowTask())
        #expect(second.attempt == 2)
        try await fail(h, second)
        // Attempt 2 wrote nothing: the history ends with the first failure.
        #expect(try await h.eventTypes(run) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                                .workflowTaskFailed])
        #expect(try h.describe(run).pendingWorkflowTask?.attempt == 3)
        #expect(try h.describe(run).pendingWorkflowTask?.scheduledEventID == 5)

        // Attempt 3 waits its backoff (1 s), then comes with the transient events appended.
        #expect(try await h.pollWorkflowTask() == nil)
        let t0 = try #require(try await h.history(run).first).eventTime    // attempt 3 was scheduled then
        await h.advance(.seconds(1))
        let third = try #require(try await h.pollWorkflowTask(identity: "poller"))
        #expect(third.attempt == 3)
        #expect(third.startedEventID == 6)
        #expect(third.previousStartedEventID == 0)
        #expect(third.history.map(\.eventID) == [1, 2, 3, 4, 5, 6])
        guard case .workflowTaskScheduled(let transientScheduled) = third.history[4].attributes,
              case .workflowTaskStarted(let transientStarted) = third.history[5].attributes else { Issue.record("suffix"); return }
        #expect(transientScheduled.attempt == 3 && transientScheduled.taskQueue == "q")
        #expect(transientStarted.scheduledEventID == 5 && transientStarted.identity == "poller" && !transientStarted.requestID.isEmpty)
        #expect(third.history[4].eventTime == t0)
        #expect(third.history[5].eventTime == t0.advanced(by: .seconds(1)))
        #expect(try await h.eventTypes(run).count == 4)

        try await h.engine.respondWorkflowTaskCompleted(taskToken: third.taskToken,
                                                        commands: [.startTimer(.init(timerID: "t", startToFireTimeout: .seconds(5)))],
                                                        identity: "poller")
        let history = try await h.history(run)
        #expect(history.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                             .workflowTaskFailed, .workflowTaskScheduled, .workflowTaskStarted,
                                             .workflowTaskCompleted, .timerStarted])
        #expect(history.map(\.eventID) == Array(1...8))
        // Written as the worker saw them.
        #expect(Array(history[4...5]) == Array(third.history[4...5]))
        guard case .workflowTaskCompleted(let completed) = history[6].attributes,
              case .timerStarted(let timer) = history[7].attributes else { Issue.record("attributes"); return }
        #expect(completed.scheduledEventID == 5 && completed.startedEventID == 6 && completed.identity == "poller")
        #expect(timer.workflowTaskCompletedEventID == 7)
        #expect(try h.describe(run).pendingWorkflowTask == nil)

        // The same history after a clean reopen and after a kill.
        try await h.closeAndReopen()
        #expect(try await h.history(run) == history)
        try await h.crashAndReopen()
        #expect(try await h.history(run) == history)
    }

    @Test func aTimedOutTransientAttemptWritesNothing() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        _ = try #require(try await h.pollWorkflowTask())
        await h.advance(.seconds(10))                                   // attempt 1 times out: written
        let second = try #require(try await h.pollWorkflowTask())
        #expect(second.attempt == 2 && second.startedEventID == 6)
        await h.advance(.seconds(10))                                   // attempt 2 times out: not written
        #expect(try await h.eventTypes(run) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                                .workflowTaskTimedOut])
        await #expect { try await h.engine.respondWorkflowTaskCompleted(taskToken: second.taskToken, commands: []) }
            throws: { isSpoolError($0, .staleTaskToken) }
        await h.advance(.seconds(1))
        let third = try #require(try await h.pollWorkflowTask())
        #expect(third.attempt == 3 && third.startedEventID == 6)
    }

    /// Temporal: a new event while a transient task waits makes it a normal task with attempt 1
    /// (`AddWorkflowTaskStartedEvent`: "If new events came since transient WT was scheduled ...
    /// transient WT needs to be converted to normal WT").
    @Test func aSignalConvertsAWaitingTransientTaskToAttemptOne() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        try await fail(h, try #require(try await h.pollWorkflowTask()))
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "go")
        let history = try await h.history(run)
        #expect(history.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                             .workflowTaskFailed, .workflowExecutionSignaled, .workflowTaskScheduled])
        guard case .workflowTaskScheduled(let scheduled) = history[5].attributes else { Issue.record("scheduled"); return }
        #expect(scheduled.attempt == 1)
        let task = try #require(try await h.pollWorkflowTask())
        #expect(task.attempt == 1 && task.startedEventID == 7)
        #expect(task.history.map(\.eventID) == Array(1...7))
        #expect(try await h.pollWorkflowTask() == nil)                 // the transient entry went stale
    }

    /// An activity outcome (ActivityTaskStarted + ActivityTaskCompleted) while a transient task
    /// waits: both are written, then the task's WorkflowTaskScheduled with attempt 1.
    @Test func anActivityOutcomeConvertsAWaitingTransientTaskAfterItsEvents() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        _ = try await h.completeWorkflowTask([scheduleActivity()])         // 3 started, 4 completed, 5 activity scheduled
        let activity = try #require(try await h.pollActivityTask())
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "s")   // 6 signaled, 7 scheduled
        try await fail(h, try #require(try await h.pollWorkflowTask()))   // 8 started, 9 failed; attempt 2 transient
        try await h.engine.respondActivityTaskCompleted(taskToken: activity.taskToken, result: .binary([1]))
        let history = try await h.history(run)
        #expect(history[8...].map(\.eventType) == [.workflowTaskFailed, .activityTaskStarted, .activityTaskCompleted,
                                                    .workflowTaskScheduled])
        guard case .activityTaskCompleted(let completed) = history[10].attributes,
              case .workflowTaskScheduled(let scheduled) = history[11].attributes else { Issue.record("attributes"); return }
        #expect(completed.scheduledEventID == 5 && completed.startedEventID == 10)
        #expect(scheduled.attempt == 1)
        let task = try #require(try await h.pollWorkflowTask())
        #expect(task.attempt == 1 && task.startedEventID == 13)
    }

    /// Temporal: events that arrive while a transient attempt runs are buffered; when it fails
    /// they are written and the next task is a normal one with attempt 1.
    @Test func eventsBufferedDuringAFailingTransientAttemptResetTheAttempt() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        try await fail(h, try #require(try await h.pollWorkflowTask()))
        let second = try #require(try await h.pollWorkflowTask())
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "late")
        #expect(try h.describe(run).bufferedEventCount == 1)
        #expect(try await h.eventTypes(run).count == 4)
        try await fail(h, second)
        let history = try await h.history(run)
        #expect(history.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                             .workflowTaskFailed, .workflowExecutionSignaled, .workflowTaskScheduled])
        guard case .workflowTaskScheduled(let scheduled) = history[5].attributes else { Issue.record("scheduled"); return }
        #expect(scheduled.attempt == 1)
    }

    @Test func eventsBufferedDuringACompletingTransientAttemptFollowItsEvents() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        try await fail(h, try #require(try await h.pollWorkflowTask()))
        let second = try #require(try await h.pollWorkflowTask())
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "late")
        try await h.engine.respondWorkflowTaskCompleted(taskToken: second.taskToken, commands: [], identity: "worker")
        let history = try await h.history(run)
        #expect(history.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                             .workflowTaskFailed, .workflowTaskScheduled, .workflowTaskStarted,
                                             .workflowTaskCompleted, .workflowExecutionSignaled, .workflowTaskScheduled])
        guard case .workflowTaskScheduled(let transient) = history[4].attributes,
              case .workflowTaskScheduled(let next) = history[8].attributes else { Issue.record("scheduled"); return }
        #expect(transient.attempt == 2 && next.attempt == 1)
        let third = try #require(try await h.pollWorkflowTask())
        #expect(third.previousStartedEventID == 6 && third.startedEventID == 10)
    }

    /// A rejected completion of a transient attempt (an invalid command) is a failure of that
    /// attempt: nothing is written, the attempt grows.
    @Test func aRejectedCompletionOfATransientAttemptWritesNothing() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        try await fail(h, try #require(try await h.pollWorkflowTask()))
        let second = try #require(try await h.pollWorkflowTask())
        try await h.engine.respondWorkflowTaskCompleted(taskToken: second.taskToken,
                                                        commands: [.cancelTimer(.init(timerID: "none"))])
        #expect(try await h.eventTypes(run).count == 4)
        #expect(try h.describe(run).pendingWorkflowTask?.attempt == 3)
    }

    @Test func terminatingDuringATransientAttemptWritesOnlyTheTermination() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        try await fail(h, try #require(try await h.pollWorkflowTask()))
        _ = try #require(try await h.pollWorkflowTask())
        try await h.engine.terminateWorkflowExecution(execution: run, reason: "stop")
        #expect(try await h.eventTypes(run) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                                .workflowTaskFailed, .workflowExecutionTerminated])
        #expect(try await h.history(run).last?.eventID == 5)
    }
}
