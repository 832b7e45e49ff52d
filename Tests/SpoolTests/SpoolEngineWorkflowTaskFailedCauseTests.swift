import Testing
@testable import Spool

/// RespondWorkflowTaskFailed with each of Temporal's causes, and a completion rejected with
/// UnhandledCommand: what Temporal's history service writes (`AddWorkflowTaskFailedEvent`,
/// `failWorkflowTask`) for the same calls.
@Suite struct SpoolEngineWorkflowTaskFailedCauseTests {
    @Test(arguments: [WorkflowTaskFailedCause.nonDeterministicError, .workflowWorkerUnhandledFailure, .unhandledCommand,
                      .badScheduleActivityAttributes, .badBinary])
    func aWorkerFailureIsWrittenWithItsCauseAndRaisesTheAttempt(cause: WorkflowTaskFailedCause) async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        let task = try #require(try await h.pollWorkflowTask())
        let failure = Failure(message: "replay went another way", source: "TypeScriptSDK", stackTrace: "at workflow.ts:3")
        try await h.engine.respondWorkflowTaskFailed(taskToken: task.taskToken, cause: cause, failure: failure, identity: "w1",
                                                     binaryChecksum: "sum")
        let history = try await h.history(run)
        #expect(history.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                             .workflowTaskFailed])
        guard case .workflowTaskFailed(let failed) = history[3].attributes else { Issue.record("failed"); return }
        #expect(failed.cause == cause && failed.failure == failure && failed.identity == "w1" && failed.binaryChecksum == "sum")
        #expect(failed.scheduledEventID == 2 && failed.startedEventID == 3)
        #expect(try h.describe(run).pendingWorkflowTask?.attempt == 2)
        // Recorded as sent, through a reopen.
        try await h.closeAndReopen()
        #expect(try await h.history(run) == history)
    }

    /// An SDK whose cache lost a sticky run fails the task with ResetStickyTaskQueue: Temporal
    /// writes WorkflowTaskFailed, ends stickiness and, the queue being sticky, does not raise the
    /// attempt: the next task is attempt 1 on the normal queue, with the full history.
    @Test func resetStickyTaskQueueEndsStickinessWithoutRaisingTheAttempt() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        let first = try #require(try await h.pollWorkflowTask())
        try await h.engine.respondWorkflowTaskCompleted(
            taskToken: first.taskToken, commands: [.startTimer(.init(timerID: "t", startToFireTimeout: .seconds(100)))],
            stickyAttributes: StickyExecutionAttributes(workerTaskQueue: "sticky-1"))
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "go")
        let sticky = try #require(try await h.pollWorkflowTask("sticky-1"))
        #expect(sticky.history.first?.eventID == 4)
        try await h.engine.respondWorkflowTaskFailed(taskToken: sticky.taskToken, cause: .resetStickyTaskQueue,
                                                     failure: Failure(message: "cache miss"), identity: "w1")
        let history = try await h.history(run)
        #expect(history[7...].map(\.eventType) == [.workflowTaskStarted, .workflowTaskFailed, .workflowTaskScheduled])
        guard case .workflowTaskFailed(let failed) = history[8].attributes,
              case .workflowTaskScheduled(let next) = history[9].attributes else { Issue.record("attributes"); return }
        #expect(failed.cause == .resetStickyTaskQueue)
        #expect(next.attempt == 1 && next.taskQueue == "q")
        #expect(try h.describe(run).stickyTaskQueue == nil)
        #expect(try await h.pollWorkflowTask("sticky-1") == nil)
        let retry = try #require(try await h.pollWorkflowTask("q"))
        #expect(retry.attempt == 1 && retry.history.first?.eventID == 1)
    }

    /// Temporal: "always clear workflow task attempt for reset and failover close command".
    @Test func resetWorkflowSetsTheAttemptBackToOne() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        try await h.engine.respondWorkflowTaskFailed(taskToken: try #require(try await h.pollWorkflowTask()).taskToken,
                                                     failure: Failure(message: "panic"))
        let second = try #require(try await h.pollWorkflowTask())
        #expect(second.attempt == 2)
        try await h.engine.respondWorkflowTaskFailed(taskToken: second.taskToken, cause: .resetWorkflow, failure: Failure(message: "reset"))
        // The transient attempt 2 wrote nothing; attempt 1 is written again.
        let history = try await h.history(run)
        #expect(history.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                             .workflowTaskFailed, .workflowTaskScheduled])
        guard case .workflowTaskScheduled(let next) = history[4].attributes else { Issue.record("scheduled"); return }
        #expect(next.attempt == 1)
    }

    /// A completion that closes the run while new events wait is rejected with UnhandledCommand
    /// (a non-retryable server failure); the buffered events are written and a new task (attempt
    /// 1) is scheduled at once, so the workflow sees them.
    @Test func closingWhileEventsWaitIsRejectedWithUnhandledCommand() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        let task = try #require(try await h.pollWorkflowTask())
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "late")
        try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [.completeWorkflowExecution(.init())],
                                                        identity: "w1")
        let history = try await h.history(run)
        #expect(history.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                             .workflowTaskFailed, .workflowExecutionSignaled, .workflowTaskScheduled])
        guard case .workflowTaskFailed(let failed) = history[3].attributes,
              case .workflowTaskScheduled(let next) = history[5].attributes else { Issue.record("attributes"); return }
        #expect(failed.cause == .unhandledCommand && failed.identity == "w1")
        if case .server(let info)? = failed.failure?.info { #expect(info.nonRetryable) } else { Issue.record("a server failure") }
        #expect(next.attempt == 1)
        let retry = try #require(try await h.pollWorkflowTask())
        #expect(retry.attempt == 1 && retry.startedEventID == 7)
        try await h.engine.respondWorkflowTaskCompleted(taskToken: retry.taskToken, commands: [.completeWorkflowExecution(.init())])
        #expect(try h.describe(run).executionInfo.status == .completed)
    }

    @Test func causesMapToTemporalsNumbers() {
        #expect(WorkflowTaskFailedCause.unhandledCommand.temporalValue == 1)
        #expect(WorkflowTaskFailedCause.badContinueAsNewAttributes.temporalValue == 11)
        #expect(WorkflowTaskFailedCause.resetStickyTaskQueue.temporalValue == 13)
        #expect(WorkflowTaskFailedCause.workflowWorkerUnhandledFailure.temporalValue == 14)
        #expect(WorkflowTaskFailedCause.forceCloseCommand.temporalValue == 17)
        #expect(WorkflowTaskFailedCause.resetWorkflow.temporalValue == 20)
        #expect(WorkflowTaskFailedCause.scheduleActivityDuplicateID.temporalValue == 22)
        #expect(WorkflowTaskFailedCause.nonDeterministicError.temporalValue == 24)
        for cause in WorkflowTaskFailedCause.allCases { #expect(WorkflowTaskFailedCause(temporalValue: cause.temporalValue) == cause) }
        #expect(Set(WorkflowTaskFailedCause.allCases.map(\.temporalValue)).count == WorkflowTaskFailedCause.allCases.count)
        #expect(WorkflowTaskFailedCause(temporalValue: 0) == nil)
    }
}
