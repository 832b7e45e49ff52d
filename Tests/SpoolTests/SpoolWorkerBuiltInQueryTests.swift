import Testing
@testable import Spool

/// The queries Temporal's SDKs answer themselves, answered by SpoolWorker.
@Suite struct SpoolWorkerBuiltInQueryTests {
    @Test func theWorkerAnswersStackTraceAndWorkflowMetadata() async throws {
        let h = try EngineHarness()
        let worker = SpoolWorker(engine: h.engine, taskQueue: "q", identity: "w", stickyCacheSize: 0)
        worker.registerWorkflow("order") { context in
            context.history.count == 3
                ? [scheduleActivity("a", type: "charge", queue: "elsewhere"),
                   .startTimer(.init(timerID: "t", startToFireTimeout: .seconds(10)))]
                : []
        }
        worker.registerQuery("order", "events") { context in .json("\(context.history.count)") }
        let running = Task { await worker.run() }
        let run = try await h.start()
        while try h.describe(run).executionInfo.historyLength < 6 { await Task.yield() }

        let trace = try await h.engine.queryWorkflow(execution: run, queryType: "__stack_trace").queryResult
        let expected = "workflow order after event 6\n"
            + "waiting on activity a (charge), scheduled by event 5\n"
            + "waiting on timer t (\(Duration.seconds(10))), started by event 6"
        #expect(trace == [Payload.jsonString(expected)])

        let metadata = try #require(try await h.engine.queryWorkflow(execution: run, queryType: "__temporal_workflow_metadata")
            .queryResult?.first)
        #expect(metadata.encoding == "json/protobuf")
        #expect(metadata.metadata["messageType"] == Array("temporal.api.sdk.v1.WorkflowMetadata".utf8))
        #expect(String(decoding: metadata.data, as: UTF8.self) == """
            {"definition":{"type":"order","queryDefinitions":[{"name":"__stack_trace"},\
            {"name":"__temporal_workflow_metadata"},{"name":"events"}]}}
            """)
        // Built-in queries write nothing.
        #expect(try h.describe(run).executionInfo.historyLength == 6)

        // A closed run's trace names what closed it.
        try await h.engine.terminateWorkflowExecution(execution: run)
        let closed = try await h.engine.queryWorkflow(execution: run, queryType: "__stack_trace").queryResult
        #expect(closed == [Payload.jsonString("workflow order after event 7\nclosed by \(EventType.workflowExecutionTerminated)")])
        await worker.stop()
        await running.value
    }

    @Test func aRegisteredHandlerReplacesTheBuiltInAnswer() async throws {
        let h = try EngineHarness()
        let worker = SpoolWorker(engine: h.engine, taskQueue: "q", identity: "w", stickyCacheSize: 0)
        worker.registerWorkflow("order") { _ in [] }
        worker.registerQuery("order", "__stack_trace") { _ in .json("\"mine\"") }
        let running = Task { await worker.run() }
        let run = try await h.start()
        while try h.describe(run).executionInfo.historyLength < 4 { await Task.yield() }
        #expect(try await h.engine.queryWorkflow(execution: run, queryType: "__stack_trace").queryResult == .json("\"mine\""))
        await worker.stop()
        await running.value
    }
}
