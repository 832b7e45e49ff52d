import Spool
import SpoolTestSupport
import Testing

/// An app that embeds the engine imports `Spool` alone: the lower layers' types of its public
/// API (the log's configuration, the manual clock) are reachable through it. This file imports no
/// other Spool module, so it stops compiling if one of them is no longer re-exported.
@Suite struct SpoolExportsTests {
    @Test func anEngineIsConfiguredAndOpenedWithOnlyTheSpoolModuleImported() async throws {
        let clock = ManualMatchingClock(start: MatchingInstant(nanoseconds: 1_750_000_000_000_000_000))
        var configuration = SpoolEngineConfiguration()
        configuration.clock = .manual(clock)
        configuration.log = LogConfiguration(durability: .interval(milliseconds: 5))
        configuration.firesTimersAutomatically = false
        #expect(configuration.log.durability == .interval(milliseconds: 5))

        let directory = "/tmp/spool-exports-test-\(UInt64.random(in: 0 ... .max))"
        defer { removeTree(directory) }
        let engine = try SpoolEngine.open(directory: directory, configuration: configuration)
        let run = try await engine.startWorkflowExecution(
            StartWorkflowExecutionRequest(workflowID: "w", workflowType: "t", taskQueue: "q"))
        clock.advance(by: .seconds(1))
        let described = try engine.describeWorkflowExecution(execution: WorkflowExecution(workflowID: "w", runID: run.runID))
        #expect(described.executionInfo.status == .running)
        try await engine.close()
    }
}
