import Testing
@testable import Spool

/// `force_create_new_workflow_task` and `return_new_workflow_task` on workflow-task completion,
/// with the histories Temporal writes for the same calls.
@Suite struct SpoolEngineWorkflowTaskCompletionOptionsTests {
    /// An SDK whose local activity runs past the task timeout completes the task with no
    /// commands and `force_create_new_workflow_task`: Temporal writes WorkflowTaskCompleted and a
    /// new WorkflowTaskScheduled (attempt 1) at once.
    @Test func forceCreateSchedulesANewTaskWithoutNewEvents() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        let first = try #require(try await h.pollWorkflowTask())
        let response = try await h.engine.respondWorkflowTaskCompleted(taskToken: first.taskToken, commands: [], identity: "worker",
                                                                       forceCreateNewWorkflowTask: true)
        #expect(response.workflowTask == nil)
        let history = try await h.history(run)
        #expect(history.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                             .workflowTaskCompleted, .workflowTaskScheduled])
        guard case .workflowTaskScheduled(let scheduled) = history[4].attributes else { Issue.record("scheduled"); return }
        #expect(scheduled.attempt == 1 && scheduled.taskQueue == "q")
        let second = try #require(try await h.pollWorkflowTask())
        #expect(second.previousStartedEventID == 3 && second.startedEventID == 6)
        // Without the flag, a completion with nothing new schedules nothing.
        try await h.engine.respondWorkflowTaskCompleted(taskToken: second.taskToken, commands: [])
        #expect(try h.describe(run).pendingWorkflowTask == nil)
        #expect(try await h.eventTypes(run).count == 7)
    }

    @Test func returnNewWorkflowTaskStartsTheNextTaskForTheWorker() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        let first = try #require(try await h.pollWorkflowTask())
        let response = try await h.engine.respondWorkflowTaskCompleted(
            taskToken: first.taskToken, commands: [], identity: "worker",
            stickyAttributes: StickyExecutionAttributes(workerTaskQueue: "sticky-1"),
            forceCreateNewWorkflowTask: true, returnNewWorkflowTask: true)
        let next = try #require(response.workflowTask)
        let history = try await h.history(run)
        #expect(history.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                             .workflowTaskCompleted, .workflowTaskScheduled, .workflowTaskStarted])
        guard case .workflowTaskScheduled(let scheduled) = history[4].attributes,
              case .workflowTaskStarted(let started) = history[5].attributes else { Issue.record("attributes"); return }
        #expect(scheduled.taskQueue == "sticky-1" && scheduled.attempt == 1)
        #expect(started.scheduledEventID == 5 && started.identity == "worker")
        #expect(next.startedEventID == 6 && next.previousStartedEventID == 3 && next.attempt == 1)
        // On the worker's sticky queue: only the events after its last task.
        #expect(next.history.map(\.eventID) == [4, 5, 6])
        #expect(next.workflowExecutionTaskQueue == "q")
        // Not queued anywhere: it is this worker's already.
        #expect(try await h.pollWorkflowTask("sticky-1") == nil)
        #expect(try await h.pollWorkflowTask("q") == nil)
        #expect(try h.describe(run).pendingWorkflowTask?.started == true)

        // It survives a kill, and its token completes it.
        let before = try await h.history(run)
        try await h.crashAndReopen()
        #expect(try await h.history(run) == before)
        try await h.engine.respondWorkflowTaskCompleted(taskToken: next.taskToken, commands: [.completeWorkflowExecution(.init())])
        #expect(try h.describe(run).executionInfo.status == .completed)
        try await h.closeAndReopen()
        #expect(try await h.eventTypes(run).suffix(2) == [.workflowTaskCompleted, .workflowExecutionCompleted])
    }

    @Test func returnNewWorkflowTaskCarriesTheEventsBufferedMeanwhile() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        let first = try #require(try await h.pollWorkflowTask())
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "go")
        let response = try await h.engine.respondWorkflowTaskCompleted(taskToken: first.taskToken, commands: [], identity: "worker",
                                                                       returnNewWorkflowTask: true)
        let next = try #require(response.workflowTask)
        // Not sticky: the whole history.
        #expect(next.history.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                                  .workflowTaskCompleted, .workflowExecutionSignaled, .workflowTaskScheduled,
                                                  .workflowTaskStarted])
        #expect(next.startedEventID == 7)
        #expect(try await h.pollWorkflowTask() == nil)
    }

    @Test func returnNewWorkflowTaskReturnsNothingWhenNoTaskIsScheduled() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        let first = try #require(try await h.pollWorkflowTask())
        let response = try await h.engine.respondWorkflowTaskCompleted(
            taskToken: first.taskToken, commands: [.startTimer(.init(timerID: "t", startToFireTimeout: .seconds(1)))],
            returnNewWorkflowTask: true)
        #expect(response.workflowTask == nil)
        #expect(try h.describe(run).pendingWorkflowTask == nil)
        // Nor when the commands close the run, even when forced.
        await h.advance(.seconds(1))
        let second = try #require(try await h.pollWorkflowTask())
        let closing = try await h.engine.respondWorkflowTaskCompleted(
            taskToken: second.taskToken, commands: [.completeWorkflowExecution(.init())],
            forceCreateNewWorkflowTask: true, returnNewWorkflowTask: true)
        #expect(closing.workflowTask == nil)
        #expect(try await h.history(run).last?.eventType == .workflowExecutionCompleted)
    }
}
