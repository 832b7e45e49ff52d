import Testing
@testable import Spool

@Suite struct SpoolEngineWorkflowTaskTests {
    @Test func oneActivityWorkflowHasTemporalsEventIDs() async throws {
        let h = try EngineHarness()
        let run = try await h.start(input: .binary([1]))
        #expect(try await h.eventTypes(run) == [.workflowExecutionStarted, .workflowTaskScheduled])

        let first = try #require(try await h.pollWorkflowTask())
        #expect(first.startedEventID == 3)
        #expect(first.previousStartedEventID == 0)
        #expect(first.attempt == 1)
        #expect(first.history.map(\.eventID) == [1, 2, 3])
        #expect(first.workflowType == "order")
        guard case .workflowTaskStarted(let started) = first.history[2].attributes else { Issue.record("not started"); return }
        #expect(started.scheduledEventID == 2)
        try await h.engine.respondWorkflowTaskCompleted(taskToken: first.taskToken, commands: [scheduleActivity(input: .binary([7]))])

        let activity = try #require(try await h.pollActivityTask())
        #expect(activity.activityID == "a")
        #expect(activity.input == .binary([7]))
        #expect(activity.attempt == 1)
        #expect(activity.taskToken.scheduledEventID == 5)
        // The activity's start writes no event: ActivityTaskStarted comes with the outcome.
        #expect(try await h.eventTypes(run).count == 5)
        try await h.engine.respondActivityTaskCompleted(taskToken: activity.taskToken, result: .binary([42]))

        let second = try #require(try await h.pollWorkflowTask())
        #expect(second.previousStartedEventID == 3)
        #expect(second.startedEventID == 9)
        try await h.engine.respondWorkflowTaskCompleted(taskToken: second.taskToken,
                                                        commands: [.completeWorkflowExecution(.init(result: .binary([9])))])

        let history = try await h.history(run)
        #expect(history.map(\.eventType) == [
            .workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted, .workflowTaskCompleted,
            .activityTaskScheduled, .activityTaskStarted, .activityTaskCompleted, .workflowTaskScheduled,
            .workflowTaskStarted, .workflowTaskCompleted, .workflowExecutionCompleted,
        ])
        #expect(history.map(\.eventID) == Array(1...11))
        guard case .workflowTaskCompleted(let completed) = history[3].attributes,
              case .activityTaskScheduled(let scheduled) = history[4].attributes,
              case .activityTaskStarted(let activityStarted) = history[5].attributes,
              case .activityTaskCompleted(let activityCompleted) = history[6].attributes,
              case .workflowExecutionCompleted(let closed) = history[10].attributes else {
            Issue.record("unexpected attributes"); return
        }
        #expect(completed.scheduledEventID == 2 && completed.startedEventID == 3)
        #expect(scheduled.workflowTaskCompletedEventID == 4 && scheduled.taskQueue == "q")
        #expect(activityStarted.scheduledEventID == 5 && activityStarted.attempt == 1 && activityStarted.identity == "worker")
        #expect(activityCompleted.scheduledEventID == 5 && activityCompleted.startedEventID == 6 && activityCompleted.result == .binary([42]))
        #expect(closed.workflowTaskCompletedEventID == 10 && closed.result == .binary([9]))
        let description = try h.describe(run)
        #expect(description.executionInfo.status == .completed)
        #expect(description.executionInfo.historyLength == 11)
        #expect(description.pendingWorkflowTask == nil)
    }

    @Test func atMostOneWorkflowTaskPerRun() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "s1")
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "s2")
        // The signals join the scheduled (not started) task: written directly, no second task.
        #expect(try await h.eventTypes(run) == [.workflowExecutionStarted, .workflowTaskScheduled,
                                                .workflowExecutionSignaled, .workflowExecutionSignaled])
        let task = try #require(try await h.pollWorkflowTask())
        #expect(task.history.count == 5)
        #expect(try await h.pollWorkflowTask() == nil)
    }

    @Test func eventsArrivingDuringAStartedTaskAreBufferedThenWrittenAfterItsCompletion() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        let first = try await h.completeWorkflowTask([scheduleActivity()])
        _ = first
        let activity = try #require(try await h.pollActivityTask())
        try await h.engine.respondActivityTaskCompleted(taskToken: activity.taskToken, result: .binary([1]))
        let second = try #require(try await h.pollWorkflowTask())       // 8 scheduled, 9 started
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "late", input: .binary([5]))
        // Buffered: not in history, no new workflow task.
        #expect(try await h.eventTypes(run).count == 9)
        #expect(try h.describe(run).bufferedEventCount == 1)
        #expect(try await h.pollWorkflowTask() == nil)

        try await h.engine.respondWorkflowTaskCompleted(taskToken: second.taskToken,
                                                        commands: [.startTimer(.init(timerID: "t", startToFireTimeout: .seconds(5)))])
        let types = try await h.eventTypes(run)
        #expect(Array(types[9...]) == [.workflowTaskCompleted, .timerStarted, .workflowExecutionSignaled, .workflowTaskScheduled])
        let third = try #require(try await h.pollWorkflowTask())
        #expect(third.previousStartedEventID == 9)
        #expect(third.history.last?.eventID == 14)
    }

    @Test func bufferedActivityOutcomeGetsTheIDOfItsStartedEvent() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        _ = try await h.completeWorkflowTask([scheduleActivity()])         // 3 started, 4 completed, 5 scheduled
        let activity = try #require(try await h.pollActivityTask())
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "s") // 6 signaled, 7 WT scheduled
        let task = try #require(try await h.pollWorkflowTask())            // 8 started
        try await h.engine.respondActivityTaskCompleted(taskToken: activity.taskToken)   // buffered
        try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [])
        let history = try await h.history(run)
        #expect(history[8...].map(\.eventType) == [.workflowTaskCompleted, .activityTaskStarted, .activityTaskCompleted, .workflowTaskScheduled])
        guard case .activityTaskCompleted(let completed) = history[10].attributes else { Issue.record("expected completion"); return }
        #expect(completed.startedEventID == 10)
        #expect(completed.scheduledEventID == 5)
    }

    @Test func workerFailureRetriesTheTaskAndTheRunGoesOn() async throws {
        let h = try EngineHarness()
        let run = try await h.start(type: "unknown-type")
        let first = try #require(try await h.pollWorkflowTask())
        try await h.engine.respondWorkflowTaskFailed(taskToken: first.taskToken,
                                                     failure: Failure(message: "workflow type unknown-type is not registered"))
        let second = try #require(try await h.pollWorkflowTask())
        #expect(second.attempt == 2)
        #expect(try h.describe(run).executionInfo.status == .running)
        // Attempt 2 is transient (Temporal): its Scheduled and Started are not written, only
        // handed to the worker after the history, with the ids they will get.
        let history = try await h.history(run)
        #expect(history.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                             .workflowTaskFailed])
        guard case .workflowTaskFailed(let failed) = history[3].attributes else { Issue.record("attributes"); return }
        #expect(failed.cause == .workflowWorkerUnhandledFailure)
        #expect(failed.scheduledEventID == 2 && failed.startedEventID == 3)
        #expect(second.history.map(\.eventID) == [1, 2, 3, 4, 5, 6])
        #expect(second.startedEventID == 6)
        guard case .workflowTaskScheduled(let rescheduled) = second.history[4].attributes else { Issue.record("transient"); return }
        #expect(rescheduled.attempt == 2)
    }

    @Test func startToCloseTimeoutReschedulesWithTheNextAttempt() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        let first = try #require(try await h.pollWorkflowTask())
        await h.advance(.seconds(9))
        #expect(try await h.eventTypes(run).count == 3)
        await h.advance(.seconds(1))
        let history = try await h.history(run)
        // The next attempt is transient: nothing after WorkflowTaskTimedOut.
        #expect(history.map(\.eventType).suffix(2) == [.workflowTaskStarted, .workflowTaskTimedOut])
        guard case .workflowTaskTimedOut(let timedOut) = history[3].attributes else { Issue.record("timed out"); return }
        #expect(timedOut.timeoutType == .startToClose && timedOut.startedEventID == 3)
        // The late worker's completion is stale and changes nothing.
        await #expect { try await h.engine.respondWorkflowTaskCompleted(taskToken: first.taskToken, commands: []) }
            throws: { isSpoolError($0, .staleTaskToken) }
        #expect(try await h.eventTypes(run).count == 4)
        let second = try #require(try await h.pollWorkflowTask())
        #expect(second.attempt == 2)
    }

    /// A task a poll took but could not deliver (the remote worker's connection went away)
    /// times out at once, as its timeout would have done later, and the next attempt is
    /// dispatched without the clock moving (issue 22: "a task whose poll response could not be
    /// delivered is dispatched again at once, not after a timeout").
    @Test func anUndeliveredWorkflowTaskIsDispatchedAgainAtOnce() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        let lost = try #require(try await h.pollWorkflowTask())
        try await h.engine.returnUndeliveredWorkflowTask(taskToken: lost.taskToken)
        let history = try await h.history(run)
        #expect(history.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                              .workflowTaskTimedOut])
        guard case .workflowTaskTimedOut(let timedOut) = history[3].attributes else { Issue.record("timed out"); return }
        #expect(timedOut.timeoutType == .startToClose && timedOut.scheduledEventID == 2 && timedOut.startedEventID == 3)
        let next = try #require(try await h.engine.pollWorkflowTaskQueue(taskQueue: "q", identity: "w", timeout: .zero))
        #expect(next.attempt == 2)
        // Giving back a token that is no longer the started task changes nothing.
        try await h.engine.returnUndeliveredWorkflowTask(taskToken: lost.taskToken)
        #expect(try await h.eventTypes(run).count == 4)
    }

    @Test func staleWorkflowTaskTokenIsRejectedAndChangesNothing() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        let task = try await h.completeWorkflowTask([.startTimer(.init(timerID: "t", startToFireTimeout: .seconds(1)))])
        let before = try await h.history(run)
        await #expect { try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [.completeWorkflowExecution(.init())]) }
            throws: { isSpoolError($0, .staleTaskToken) }
        await #expect { try await h.engine.respondWorkflowTaskFailed(taskToken: task.taskToken, failure: Failure(message: "x")) }
            throws: { isSpoolError($0, .staleTaskToken) }
        #expect(try await h.history(run) == before)
        // Its serialized form round-trips and is rejected the same way.
        let token = try TaskToken(serialized: task.taskToken.serialized)
        #expect(token == task.taskToken)
        #expect(throws: SpoolError.self) { try TaskToken(serialized: [1, 2, 3]) }
    }

    @Test func aTaskThatKeepsFailingBacksOff() async throws {
        let h = try EngineHarness(durability: .sync)
        let run = try await h.start(type: "unknown")
        var delays: [Duration] = []
        for attempt in Int32(1)...5 {
            var waited = Duration.zero
            var polled = try await h.pollWorkflowTask()
            while polled == nil && waited < .seconds(60) {
                await h.advance(.milliseconds(250))
                waited += .milliseconds(250)
                polled = try await h.pollWorkflowTask()
            }
            let task = try #require(polled, "attempt \(attempt) never came")
            #expect(task.attempt == attempt)
            delays.append(waited)
            try await h.engine.respondWorkflowTaskFailed(taskToken: task.taskToken, failure: Failure(message: "unknown type"))
            // A crash during a backoff keeps it.
            if attempt == 4 { try await h.crashAndReopen() }
        }
        #expect(delays == [.zero, .zero, .seconds(1), .seconds(2), .seconds(4)])
        #expect(try h.describe(run).executionInfo.status == .running)
    }

    @Test func anEagerStartReturnsTheFirstWorkflowTaskStarted() async throws {
        let h = try EngineHarness()
        let response = try await h.engine.startWorkflowExecution(.init(workflowID: "w", workflowType: "order", taskQueue: "q",
                                                                       identity: "local-worker", requestEagerExecution: true))
        let task = try #require(response.eagerWorkflowTask)
        #expect(task.startedEventID == 3)
        #expect(task.history.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted])
        guard case .workflowTaskStarted(let started) = task.history[2].attributes else { Issue.record("started"); return }
        #expect(started.identity == "local-worker" && started.scheduledEventID == 2)
        #expect(try await h.pollWorkflowTask() == nil)
        try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [.completeWorkflowExecution(.init())])
        #expect(try h.describe(WorkflowExecution(workflowID: "w")).executionInfo.status == .completed)
        // A start that finds the run already open returns no task.
        _ = try await h.start("open")
        let existing = try await h.engine.startWorkflowExecution(.init(workflowID: "open", workflowType: "order", taskQueue: "q",
                                                                       workflowIDConflictPolicy: .useExisting, requestEagerExecution: true))
        #expect(existing.eagerWorkflowTask == nil && !existing.started)
    }
}
