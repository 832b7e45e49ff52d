import Testing
@testable import Spool

/// Update handlers in SpoolWorker: a validator that throws rejects (history unchanged), an
/// accepted update's handler result is its outcome, and the workflow sees the completed update.
@Suite struct SpoolWorkerUpdateTests {
    /// Completes with the argument of the first successful "approve" update; waits until then.
    static let approval: WorkflowDefinition = { context in
        guard let approved = context.completedUpdates.first(where: { $0.request.input.name == "approve" }),
              case .success = approved.outcome else { return [] }
        return [.completeWorkflowExecution(.init(result: approved.request.input.args))]
    }

    static func worker(_ h: EngineHarness) -> SpoolWorker {
        let worker = SpoolWorker(engine: h.engine, taskQueue: "q", identity: "w1")
        worker.registerWorkflow("approval", approval)
        worker.registerUpdate("approval", "approve", validator: { context in
            guard let args = context.args, args.singleData?.isEmpty == false else { throw ApprovalError.empty }
        }) { context in .binary("approved by \(context.request.meta.identity)".utf8.map { $0 }) }
        return worker
    }

    enum ApprovalError: Error { case empty }

    @Test func aValidatorRejectsWithoutATraceAndAnAcceptedUpdateDrivesTheWorkflow() async throws {
        let h = try EngineHarness()
        let worker = Self.worker(h)
        let running = Task { await worker.run() }
        let run = try await h.start(type: "approval")
        try await eventually("the first task completed") { try await h.history(run).count == 4 }
        let before = try await h.history(run)

        let rejected = try await h.engine.updateWorkflowExecution(workflowID: "wf", updateID: "u0", name: "approve", input: .binary([]),
                                                                  identity: "alice", waitFor: .completed)
        guard case .failure(let failure)? = rejected.outcome else { Issue.record("not rejected: \(rejected)"); return }
        #expect(failure.applicationType == "ApprovalError" && failure.source == SpoolWorker.failureSource)
        #expect(try await h.history(run) == before)

        let unknown = try await h.engine.updateWorkflowExecution(workflowID: "wf", updateID: "u1", name: "cancel-order", waitFor: .completed)
        guard case .failure(let notRegistered)? = unknown.outcome else { Issue.record("not rejected: \(unknown)"); return }
        #expect(notRegistered.applicationType == "UpdateNotRegistered")
        #expect(try await h.history(run) == before)

        let accepted = try await h.engine.updateWorkflowExecution(workflowID: "wf", updateID: "u2", name: "approve", input: .binary([1]),
                                                                  identity: "alice", waitFor: .completed)
        #expect(accepted.outcome == .success(.binary("approved by alice".utf8.map { $0 })))
        try await eventually("the workflow completed") { try h.describe(run).executionInfo.status == .completed }
        let history = try await h.history(run)
        #expect(history.map(\.eventType) == [
            .workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted, .workflowTaskCompleted,
            // The speculative task that carried u2, written because the worker accepted it.
            .workflowTaskScheduled, .workflowTaskStarted, .workflowTaskCompleted,
            .workflowExecutionUpdateAccepted, .workflowExecutionUpdateCompleted,
            // The task the worker asked for, in which the workflow sees the update.
            .workflowTaskScheduled, .workflowTaskStarted, .workflowTaskCompleted, .workflowExecutionCompleted])
        guard case .workflowExecutionCompleted(let completed) = history.last?.attributes else { return }
        #expect(completed.result == .binary([1]))
        await worker.stop()
        await running.value
    }

    @Test func updateWithStartRunsTheHandlerOnTheFirstTask() async throws {
        let h = try EngineHarness()
        let worker = Self.worker(h)
        let running = Task { await worker.run() }
        let (start, update) = try await h.engine.updateWithStartWorkflowExecution(
            StartWorkflowExecutionRequest(workflowID: "wf", workflowType: "approval", taskQueue: "q", workflowIDConflictPolicy: .useExisting),
            updateID: "u1", name: "approve", input: .binary([7]), identity: "bob", waitFor: .completed)
        #expect(start.started)
        #expect(update.outcome == .success(.binary("approved by bob".utf8.map { $0 })))
        let run = WorkflowExecution(workflowID: "wf", runID: start.runID)
        try await eventually("the workflow completed") { try h.describe(run).executionInfo.status == .completed }
        #expect(try await h.eventTypes(run).prefix(6) == [
            .workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted, .workflowTaskCompleted,
            .workflowExecutionUpdateAccepted, .workflowExecutionUpdateCompleted])
        await worker.stop()
        await running.value
    }
}
