import Testing
@testable import Spool

/// Queries through the public API, against Temporal's rules (service/history/api/queryworkflow):
/// a query rides the next workflow task when one is outstanding, goes as a query-only task
/// otherwise or to a closed run, honours the reject condition, and writes nothing.
@Suite struct SpoolEngineQueryTests {
    /// Starts a run and completes its first workflow task by scheduling an activity: the run is
    /// open with no workflow task outstanding (history: 1 started … 5 activity scheduled).
    private func idleRun(_ h: EngineHarness) async throws -> WorkflowExecution {
        let run = try await h.start()
        _ = try await h.completeWorkflowTask([scheduleActivity()])
        return run
    }

    /// Sends a query from another task and returns once the engine holds it.
    private func sendQuery(_ h: EngineHarness, _ run: WorkflowExecution, type: String = "status",
                           args: Payloads? = nil, timeout: Duration = .seconds(30)) async -> Task<QueryWorkflowResponse, any Error> {
        let engine = h.engine
        let task = Task { try await engine.queryWorkflow(execution: run, queryType: type, args: args, timeout: timeout) }
        while engine.queries.isEmpty { await Task.yield() }
        return task
    }

    @Test func aQueryOnAnIdleRunIsAQueryOnlyTaskWithTheWholeHistory() async throws {
        let h = try EngineHarness()
        let run = try await idleRun(h)
        let before = try await h.history(run)
        let pending = await sendQuery(h, run, args: .json("\"x\""))

        let task = try #require(try await h.pollWorkflowTask())
        #expect(task.query == WorkflowQuery(queryType: "status", queryArgs: .json("\"x\"")))
        #expect(task.queries.isEmpty)
        #expect(task.taskToken.kind == .query)
        #expect(task.startedEventID == 0)
        #expect(task.previousStartedEventID == 3)
        #expect(task.history == before)
        try await h.engine.respondQueryTaskCompleted(taskToken: task.taskToken, result: .answered(.json("42")))
        #expect(try await pending.value == QueryWorkflowResponse(queryResult: .json("42")))

        // Nothing written, nothing scheduled.
        #expect(try await h.history(run) == before)
        #expect(try h.describe(run).pendingWorkflowTask == nil)
        // An answer to a query that no longer waits is refused.
        await #expect { try await h.engine.respondQueryTaskCompleted(taskToken: task.taskToken, result: .answered(nil)) }
            throws: { isSpoolError($0, .notFound) }
    }

    @Test func aQueryWaitsForTheOutstandingWorkflowTaskAndIsAnsweredInItsCompletion() async throws {
        let h = try EngineHarness()
        let run = try await idleRun(h)
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "go")   // 6 signaled, 7 scheduled
        let pending = await sendQuery(h, run)

        let task = try #require(try await h.pollWorkflowTask())
        #expect(task.query == nil)
        #expect(task.startedEventID == 8)
        let (id, query) = try #require(task.queries.first)
        #expect(task.queries.count == 1)
        #expect(query.queryType == "status")
        try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [], identity: "worker",
                                                        queryResults: [id: .answered(.json("\"after go\""))])
        #expect(try await pending.value.queryResult == .json("\"after go\""))
        // What Temporal writes for the signal and the task; the query adds nothing.
        #expect(try await h.eventTypes(run) == [
            .workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted, .workflowTaskCompleted,
            .activityTaskScheduled, .workflowExecutionSignaled, .workflowTaskScheduled, .workflowTaskStarted,
            .workflowTaskCompleted,
        ])
    }

    @Test func aQueryTheCompletionLeavesUnansweredBecomesAQueryOnlyTask() async throws {
        let h = try EngineHarness()
        let run = try await idleRun(h)
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "go")
        let pending = await sendQuery(h, run)
        let task = try #require(try await h.pollWorkflowTask())
        #expect(task.queries.count == 1)
        try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [], identity: "worker")

        let queryTask = try #require(try await h.pollWorkflowTask())
        let query = try #require(queryTask.query)
        #expect(query.queryType == "status")
        #expect(queryTask.history.count == 9)
        try await h.engine.respondQueryTaskCompleted(taskToken: queryTask.taskToken, result: .answered(.json("1")))
        #expect(try await pending.value.queryResult == .json("1"))
    }

    @Test func aQueryAttachedToAFailedWorkflowTaskGoesWithTheNextAttempt() async throws {
        let h = try EngineHarness()
        let run = try await idleRun(h)
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "go")
        let pending = await sendQuery(h, run)
        let first = try #require(try await h.pollWorkflowTask())
        #expect(first.queries.count == 1)
        try await h.engine.respondWorkflowTaskFailed(taskToken: first.taskToken, failure: .application("boom"))

        let second = try #require(try await h.pollWorkflowTask())
        #expect(second.attempt == 2)
        let id = try #require(second.queries.keys.first)
        try await h.engine.respondWorkflowTaskCompleted(taskToken: second.taskToken, commands: [],
                                                        queryResults: [id: .answered(.json("2"))])
        #expect(try await pending.value.queryResult == .json("2"))
    }

    @Test func aFailedQueryThrowsQueryFailedWithTheWorkersFailure() async throws {
        let h = try EngineHarness()
        let run = try await idleRun(h)
        let pending = await sendQuery(h, run)
        let task = try #require(try await h.pollWorkflowTask())
        let failure = Failure.application("no such query", type: "QueryNotFound")
        try await h.engine.respondQueryTaskCompleted(taskToken: task.taskToken, result: .failed("no such query", failure: failure))
        await #expect { try await pending.value } throws: { error in
            guard let error = error as? SpoolError else { return false }
            return error.code == .queryFailed && error.message == "no such query" && error.failure == failure
        }
    }

    @Test func aClosedRunIsQueriedWithItsWholeHistoryUnlessTheRejectConditionRefuses() async throws {
        let h = try EngineHarness()
        let completed = try await h.start("done")
        _ = try await h.completeWorkflowTask([.completeWorkflowExecution(.init(result: .json("1")))])
        let failed = try await h.start("failed")
        _ = try await h.completeWorkflowTask([.failWorkflowExecution(.init(failure: .application("bad")))])

        #expect(try await h.engine.queryWorkflow(execution: completed, queryType: "q", rejectCondition: .notOpen)
                == QueryWorkflowResponse(queryRejected: .completed))
        #expect(try await h.engine.queryWorkflow(execution: failed, queryType: "q", rejectCondition: .notCompletedCleanly)
                == QueryWorkflowResponse(queryRejected: .failed))

        // notCompletedCleanly lets a completed run through, to a worker.
        let engine = h.engine
        let pending = Task { try await engine.queryWorkflow(execution: completed, queryType: "q", rejectCondition: .notCompletedCleanly) }
        let task = try #require(try await h.engine.pollWorkflowTaskQueue(taskQueue: "q", timeout: .seconds(3600)))
        #expect(task.workflowExecution == completed)
        #expect(task.history.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                                  .workflowTaskCompleted, .workflowExecutionCompleted])
        try await h.engine.respondQueryTaskCompleted(taskToken: task.taskToken, result: .answered(.json("\"done\"")))
        #expect(try await pending.value.queryResult == .json("\"done\""))
    }

    @Test func aQueryNoWorkerAnswersTimesOutAndLeavesNoTaskBehind() async throws {
        let h = try EngineHarness()
        let run = try await idleRun(h)
        let pending = await sendQuery(h, run, timeout: .seconds(5))
        h.clock.advance(by: .seconds(6))
        await #expect { try await pending.value } throws: { isSpoolError($0, .queryTimedOut) }
        // Its query-only task is dropped when it comes up.
        #expect(try await h.pollWorkflowTask() == nil)
        #expect(h.engine.queries.isEmpty)
    }

    @Test func aRunWhoseWorkflowTaskKeepsFailingIsNotReady() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        for _ in 0..<2 {
            let task = try #require(try await h.pollWorkflowTask())
            try await h.engine.respondWorkflowTaskFailed(taskToken: task.taskToken, failure: .application("panic"))
        }
        await #expect { try await h.engine.queryWorkflow(execution: run, queryType: "q") } throws: { isSpoolError($0, .workflowNotReady) }
    }

    @Test func queriesToUnknownRunsAndEmptyTypesAreRefused() async throws {
        let h = try EngineHarness()
        let run = try await idleRun(h)
        await #expect { try await h.engine.queryWorkflow(execution: .init(workflowID: "nope"), queryType: "q") }
            throws: { isSpoolError($0, .notFound) }
        await #expect { try await h.engine.queryWorkflow(execution: run, queryType: "") } throws: { isSpoolError($0, .invalidArgument) }
    }

    @Test func theWorkerAnswersWithItsQueryHandlers() async throws {
        let h = try EngineHarness()
        let worker = SpoolWorker(engine: h.engine, taskQueue: "q", identity: "w", stickyCacheSize: 0)
        worker.registerWorkflow("order") { context in
            context.history.contains { $0.eventType == .workflowExecutionSignaled } ? [.completeWorkflowExecution(.init())] : []
        }
        worker.registerQuery("order", "events") { context in .json("\(context.history.count)") }
        worker.registerQuery("order", "fails") { _ in throw QueryTestError() }
        let running = Task { await worker.run() }
        let run = try await h.start()
        // Once the first workflow task completed (event 4), no task is outstanding.
        while try h.describe(run).executionInfo.historyLength < 4 { await Task.yield() }
        #expect(try await h.engine.queryWorkflow(execution: run, queryType: "events").queryResult == .json("4"))
        await #expect { try await h.engine.queryWorkflow(execution: run, queryType: "fails") } throws: { isSpoolError($0, .queryFailed) }
        await #expect { try await h.engine.queryWorkflow(execution: run, queryType: "missing") } throws: { error in
            (error as? SpoolError)?.message.contains("KnownQueryTypes=[__stack_trace __temporal_workflow_metadata events fails]") == true
        }
        await worker.stop()
        await running.value
    }
}

private struct QueryTestError: Error {}
