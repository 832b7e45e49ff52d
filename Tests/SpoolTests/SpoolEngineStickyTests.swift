import Testing
@testable import Spool

@Suite struct SpoolEngineStickyTests {
    /// A run whose first workflow task was completed by a worker naming `sticky-1`, then signaled.
    func stickyRun(timeout: Duration = .seconds(5)) async throws -> (EngineHarness, WorkflowExecution) {
        let h = try EngineHarness()
        let run = try await h.start()
        let first = try #require(try await h.pollWorkflowTask())
        try await h.engine.respondWorkflowTaskCompleted(
            taskToken: first.taskToken, commands: [.startTimer(.init(timerID: "t", startToFireTimeout: .seconds(100)))],
            stickyAttributes: StickyExecutionAttributes(workerTaskQueue: "sticky-1", scheduleToStartTimeout: timeout))
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "go")
        return (h, run)
    }

    @Test func laterTasksGoToTheStickyQueueWithOnlyTheNewEvents() async throws {
        let (h, run) = try await stickyRun()
        #expect(try h.describe(run).stickyTaskQueue == "sticky-1")
        #expect(try await h.pollWorkflowTask("q") == nil)
        let task = try #require(try await h.pollWorkflowTask("sticky-1"))
        #expect(task.previousStartedEventID == 3)
        #expect(task.history.map(\.eventID) == [4, 5, 6, 7, 8])
        #expect(task.history.first?.eventType == .workflowTaskCompleted)
        #expect(task.workflowExecutionTaskQueue == "q")
    }

    @Test func aStickyTaskNotPickedUpInTimeFallsBackWithTheFullHistory() async throws {
        let (h, run) = try await stickyRun(timeout: .seconds(5))
        await h.advance(.seconds(4))
        #expect(try await h.eventTypes(run).last == .workflowTaskScheduled)
        await h.advance(.seconds(1))
        let history = try await h.history(run)
        #expect(history.suffix(2).map(\.eventType) == [.workflowTaskTimedOut, .workflowTaskScheduled])
        guard case .workflowTaskTimedOut(let timedOut) = history[history.count - 2].attributes,
              case .workflowTaskScheduled(let rescheduled) = history.last?.attributes else { Issue.record("attributes"); return }
        #expect(timedOut.timeoutType == .scheduleToStart && timedOut.startedEventID == 0)
        #expect(rescheduled.taskQueue == "q")
        #expect(rescheduled.attempt == 1)
        #expect(try h.describe(run).stickyTaskQueue == nil)
        // The stale sticky task is skipped; the normal queue has the task, with the full history.
        #expect(try await h.pollWorkflowTask("sticky-1") == nil)
        let task = try #require(try await h.pollWorkflowTask("q"))
        #expect(task.history.first?.eventID == 1)
        #expect(task.attempt == 1)
    }

    @Test func shuttingTheStickyWorkerDownFallsBackAtOnce() async throws {
        let (h, run) = try await stickyRun(timeout: .seconds(60))
        #expect(try await h.engine.shutdownWorker(stickyTaskQueue: "sticky-1") == 1)
        #expect(try h.describe(run).pendingWorkflowTask?.taskQueue == "q")
        let task = try #require(try await h.pollWorkflowTask("q"))
        #expect(task.history.first?.eventID == 1)
        // Later tasks stay on the normal queue until a worker names a sticky queue again.
        try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [])
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "again")
        #expect(try await h.pollWorkflowTask("q") != nil)
    }

    @Test func resettingTheStickyQueueMovesAWaitingTask() async throws {
        let (h, run) = try await stickyRun(timeout: .seconds(60))
        try await h.engine.resetStickyTaskQueue(execution: run)
        #expect(try h.describe(run).stickyTaskQueue == nil)
        #expect(try await h.pollWorkflowTask("q") != nil)
    }

    @Test func aFailedStickyTaskIsRetriedOnTheNormalQueue() async throws {
        let (h, run) = try await stickyRun()
        let task = try #require(try await h.pollWorkflowTask("sticky-1"))
        try await h.engine.respondWorkflowTaskFailed(taskToken: task.taskToken, failure: Failure(message: "cache corrupt"))
        // As in Temporal: a failure on a sticky queue clears it and does not raise the attempt,
        // so the retry is a normal task (attempt 1, WorkflowTaskScheduled written) with the full history.
        let retry = try #require(try await h.pollWorkflowTask("q"))
        #expect(retry.attempt == 1)
        #expect(retry.history.first?.eventID == 1)
        #expect(Array(try await h.eventTypes(run).suffix(3)) == [.workflowTaskFailed, .workflowTaskScheduled, .workflowTaskStarted])
        #expect(try h.describe(run).stickyTaskQueue == nil)
    }
}
