import Testing
@testable import Spool

/// Queries live in memory only: a kill while queries are in flight leaves the history and every
/// run's state exactly as before, and the callers hear that the engine went away.
@Suite struct SpoolEngineQueryCrashTests {
    @Test func queriesInFlightWhenTheEngineIsKilledChangeNothing() async throws {
        let h = try EngineHarness(durability: .sync)
        let run = try await h.start()
        _ = try await h.completeWorkflowTask([scheduleActivity()])
        let idle = try await h.start("idle")
        _ = try await h.completeWorkflowTask([scheduleActivity()])
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "go")

        let engine = h.engine
        // One query attached to a started workflow task, one query-only task taken by a poll.
        let attached = Task { try await engine.queryWorkflow(execution: run, queryType: "a") }
        while engine.queries.isEmpty { await Task.yield() }
        let task = try #require(try await h.pollWorkflowTask())
        #expect(task.queries.count == 1)
        let direct = Task { try await engine.queryWorkflow(execution: idle, queryType: "b") }
        var queryTask: WorkflowTask?
        while queryTask == nil { queryTask = try await h.pollWorkflowTask() }
        #expect(queryTask?.query?.queryType == "b")

        let before = try await h.snapshot()
        try await h.crashAndReopen()
        await #expect { try await attached.value } throws: { isSpoolError($0, .closed) }
        await #expect { try await direct.value } throws: { isSpoolError($0, .closed) }
        expectSameState(before, try await h.snapshot())

        // The workflow task that was started is still the run's; a new query rides it.
        let again = Task { [engine = h.engine] in try await engine.queryWorkflow(execution: run, queryType: "a") }
        while h.engine.queries.isEmpty { await Task.yield() }
        try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [])
        let queryOnly = try #require(try await h.pollWorkflowTask())
        try await h.engine.respondQueryTaskCompleted(taskToken: try #require(queryOnly.query == nil ? nil : queryOnly.taskToken),
                                                     result: .answered(.json("3")))
        #expect(try await again.value.queryResult == .json("3"))
    }
}
