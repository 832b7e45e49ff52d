import Testing
@testable import Spool

/// Signal-with-start, request-id idempotency and asynchronous activity completion, against what
/// Temporal writes and answers for the same calls.
@Suite struct SpoolEngineRequestIDTests {
    private func request(_ id: String = "wf", requestID: String = "",
                         conflict: WorkflowIDConflictPolicy = .useExisting) -> StartWorkflowExecutionRequest {
        StartWorkflowExecutionRequest(workflowID: id, workflowType: "order", taskQueue: "q", input: .json("1"), identity: "client",
                                      requestID: requestID, workflowIDConflictPolicy: conflict)
    }

    @Test func signalWithStartStartsARunWithTheSignalRightAfterItsStart() async throws {
        let h = try EngineHarness()
        let started = try await h.engine.signalWithStartWorkflowExecution(request(requestID: "r1"), signalName: "add",
                                                                          signalInput: .json("2"))
        #expect(started.started)
        let run = WorkflowExecution(workflowID: "wf", runID: started.runID)
        let history = try await h.history(run)
        // Temporal: WorkflowExecutionStarted, WorkflowExecutionSignaled, WorkflowTaskScheduled.
        #expect(history.map(\.eventType) == [.workflowExecutionStarted, .workflowExecutionSignaled, .workflowTaskScheduled])
        guard case .workflowExecutionSignaled(let signaled) = history[1].attributes else { Issue.record("not a signal"); return }
        #expect(signaled.signalName == "add" && signaled.input == .json("2") && signaled.identity == "client" && signaled.requestID == "r1")
        let task = try #require(try await h.pollWorkflowTask())
        #expect(task.history.count == 4)
    }

    @Test func signalWithStartSignalsTheOpenRun() async throws {
        let h = try EngineHarness()
        let run = try await h.start("wf")
        _ = try await h.completeWorkflowTask([scheduleActivity()])
        let answer = try await h.engine.signalWithStartWorkflowExecution(request(requestID: "r2"), signalName: "add")
        #expect(answer == StartWorkflowExecutionResponse(runID: run.runID, started: false))
        #expect(try await h.eventTypes(run).suffix(2) == [.workflowExecutionSignaled, .workflowTaskScheduled])
        // A retry of the same request does not signal twice.
        _ = try await h.engine.signalWithStartWorkflowExecution(request(requestID: "r2"), signalName: "add")
        #expect(try await h.eventTypes(run).filter { $0 == .workflowExecutionSignaled }.count == 1)
        await #expect { try await h.engine.signalWithStartWorkflowExecution(request(conflict: .fail), signalName: "add") }
            throws: { isSpoolError($0, .invalidArgument) }
    }

    @Test func aRetriedSignalWithStartWritesNothing() async throws {
        let h = try EngineHarness()
        let first = try await h.engine.signalWithStartWorkflowExecution(request(requestID: "same"), signalName: "add")
        let again = try await h.engine.signalWithStartWorkflowExecution(request(requestID: "same"), signalName: "add")
        #expect(again == StartWorkflowExecutionResponse(runID: first.runID, started: true))
        #expect(try await h.eventTypes(WorkflowExecution(workflowID: "wf", runID: first.runID)).count == 3)
    }

    @Test func aStartRetriedAfterItsRunClosedReturnsThatRun() async throws {
        let h = try EngineHarness()
        var start = request(requestID: "start-1", conflict: .fail)
        start.workflowIDReusePolicy = .rejectDuplicate
        let first = try await h.engine.startWorkflowExecution(start)
        // While open: the same run, nothing written.
        #expect(try await h.engine.startWorkflowExecution(start) == StartWorkflowExecutionResponse(runID: first.runID, started: true))
        _ = try await h.completeWorkflowTask([.completeWorkflowExecution(.init())])
        // Closed: still that run (Temporal checks the request id before the reuse policy), not a rejection.
        #expect(try await h.engine.startWorkflowExecution(start) == StartWorkflowExecutionResponse(runID: first.runID, started: true))
        #expect(h.engine.listWorkflowExecutions().count == 1)
        // Another request id is judged by the reuse policy.
        start.requestID = "start-2"
        await #expect { try await h.engine.startWorkflowExecution(start) } throws: { isSpoolError($0, .workflowExecutionAlreadyStarted) }
    }

    @Test func aRetriedSignalIsWrittenOnce() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        let task = try #require(try await h.pollWorkflowTask())
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "s", requestID: "sig-1")   // buffered
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "s", requestID: "sig-1")
        try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [])
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "s", requestID: "sig-1")
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "s")
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "s")
        // One for sig-1, two without a request id (never deduplicated).
        #expect(try await h.eventTypes(run).filter { $0 == .workflowExecutionSignaled }.count == 3)
    }

    @Test func aCancelRequestForAClosedRunSucceedsAndWritesNothing() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        try await h.engine.requestCancelWorkflowExecution(execution: run, reason: "stop")
        try await h.engine.requestCancelWorkflowExecution(execution: run, reason: "stop")
        _ = try await h.completeWorkflowTask([.cancelWorkflowExecution(.init())])
        let before = try await h.history(run)
        try await h.engine.requestCancelWorkflowExecution(execution: run, reason: "stop")
        #expect(try await h.history(run) == before)
        #expect(before.filter { $0.eventType == .workflowExecutionCancelRequested }.count == 1)
    }

    @Test func anActivityIsCompletedByIDWithoutItsToken() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        _ = try await h.completeWorkflowTask([scheduleActivity("approval")])
        // Not running yet: nothing to complete.
        await #expect { try await h.engine.respondActivityTaskCompletedByID(workflowID: run.workflowID, activityID: "approval") }
            throws: { isSpoolError($0, .staleTaskToken) }
        _ = try #require(try await h.pollActivityTask())
        let beat = try await h.engine.recordActivityTaskHeartbeatByID(workflowID: run.workflowID, runID: run.runID, activityID: "approval",
                                                                      details: .json("\"half\""))
        #expect(!beat.cancelRequested)
        #expect(try h.describe(run).pendingActivities.first?.heartbeatDetails == .json("\"half\""))
        try await h.engine.respondActivityTaskCompletedByID(workflowID: run.workflowID, runID: run.runID, activityID: "approval",
                                                            result: .json("\"ok\""), identity: "approver")
        let history = try await h.history(run)
        #expect(history.suffix(3).map(\.eventType) == [.activityTaskStarted, .activityTaskCompleted, .workflowTaskScheduled])
        guard case .activityTaskCompleted(let completed) = history[history.count - 2].attributes else { Issue.record("not completed"); return }
        #expect(completed.result == .json("\"ok\"") && completed.scheduledEventID == 5 && completed.identity == "approver")
        await #expect { try await h.engine.respondActivityTaskCompletedByID(workflowID: run.workflowID, activityID: "approval") }
            throws: { isSpoolError($0, .notFound) }
    }

    @Test func anActivityIsFailedAndCanceledByID() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        _ = try await h.completeWorkflowTask([scheduleActivity("a", retry: RetryPolicy(maximumAttempts: 1)), scheduleActivity("b")])
        _ = try #require(try await h.pollActivityTask())
        _ = try #require(try await h.pollActivityTask())
        try await h.engine.respondActivityTaskFailedByID(workflowID: run.workflowID, activityID: "a", failure: .application("no"))
        try await h.engine.respondActivityTaskCanceledByID(workflowID: run.workflowID, activityID: "b")
        let types = try await h.eventTypes(run)
        #expect(types.contains(.activityTaskFailed) && types.contains(.activityTaskCanceled))
    }
}
