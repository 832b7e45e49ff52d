import SpoolLog
import SpoolMatching
import Testing
@testable import Spool

/// A namespace's own retention: its closed runs leave the engine after it (live, after a reopen,
/// and in offline compaction) while other namespaces keep theirs.
@Suite struct SpoolEngineNamespaceRetentionTests {
    func closedRun(_ engine: SpoolEngine, namespace: String, id: String, input: Payloads? = nil) async throws -> WorkflowExecution {
        let started = try await engine.startWorkflowExecution(.init(namespace: namespace, workflowID: id, workflowType: "t",
                                                                    taskQueue: "q", input: input))
        let run = WorkflowExecution(workflowID: id, runID: started.runID)
        try await engine.terminateWorkflowExecution(namespace: namespace, execution: run, reason: "done")
        return run
    }

    func exists(_ engine: SpoolEngine, _ namespace: String, _ run: WorkflowExecution) -> Bool {
        (try? engine.describeWorkflowExecution(namespace: namespace, execution: run)) != nil
    }

    @Test func aNamespacesRetentionDropsOnlyItsClosedRuns() async throws {
        // The engine's default retention is 7 days; "short" keeps closed runs one hour.
        let h = try EngineHarness(durability: .sync)
        try h.engine.registerNamespace("short", retention: .seconds(3600))
        let short = try await closedRun(h.engine, namespace: "short", id: "s")
        let kept = try await closedRun(h.engine, namespace: "default", id: "d")
        await h.advance(.seconds(1800))
        #expect(exists(h.engine, "short", short) && exists(h.engine, "default", kept))
        await h.advance(.seconds(3600))
        #expect(!exists(h.engine, "short", short))
        #expect(exists(h.engine, "default", kept))
        #expect(try h.engine.countWorkflowExecutions(namespace: "short", query: "").count == 0)
        try await h.crashAndReopen()
        #expect(!exists(h.engine, "short", short) && exists(h.engine, "default", kept))
    }

    @Test func aShorterRetentionAppliesToRunsThatClosedBefore() async throws {
        let h = try EngineHarness(durability: .sync)
        let run = try await closedRun(h.engine, namespace: "default", id: "d")
        await h.advance(.seconds(7200))
        #expect(exists(h.engine, "default", run))
        try h.engine.updateNamespace("default", NamespaceUpdate(retention: .some(.seconds(3600))))
        await h.advance(.seconds(1))
        #expect(!exists(h.engine, "default", run))
    }

    @Test func offlineCompactionDropsTheRecordsOfANamespaceWhoseRetentionEnded() async throws {
        let h = try EngineHarness()
        let data = h.directory + "/compact"
        // The engine keeps closed runs forever; "short" keeps them 30 s.
        var engine = try SpoolEngine.open(directory: data, configuration: HistoryFixture.configuration(h.clock, retention: nil))
        try engine.registerNamespace("short", retention: .seconds(30))
        for i in 0..<40 {
            _ = try await closedRun(engine, namespace: "short", id: "s\(i)", input: HistoryFixture.input(i))
            _ = try await closedRun(engine, namespace: "default", id: "d\(i)", input: HistoryFixture.input(i))
        }
        // Newer records, so that the closed runs are in sealed segments and the log's own time is
        // past their retention.
        h.clock.advance(by: .seconds(60))
        for i in 0..<80 {
            _ = try await engine.startWorkflowExecution(.init(workflowID: "filler-\(i)", workflowType: "t", taskQueue: "f",
                                                              input: HistoryFixture.input(i)))
        }
        try await engine.close()
        let summary = try SpoolEngine.compactHistory(directory: data, configuration: HistoryFixture.configuration(h.clock, retention: nil))
        #expect(summary.runsDropped == 40)
        engine = try SpoolEngine.open(directory: data, configuration: HistoryFixture.configuration(h.clock, retention: nil))
        #expect(try engine.countWorkflowExecutions(namespace: "short", query: "").count == 0)
        #expect(try engine.countWorkflowExecutions(query: "").count == 40 + 80)
        try await engine.close()
    }
}
