import Spool
import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing

/// Issue 25, point 6: `spool workflow list` (a read) never drops a closed run, whatever the
/// wall clock says: run under a clock far past the runs' retention (here: the real clock,
/// with runs written under a manual clock in mid-2025), it lists them, and they stay.
@Suite struct WorkflowListRetentionTests {
    @Test("workflow list, describe and show under a clock past retention drop nothing")
    func readsDropNothing() async throws {
        let scratch = ScratchDirectory()
        let data = scratch.path + "/data"
        // Two runs closed 8 days apart, long ago by the machine's clock.
        let clock = ManualMatchingClock(start: MatchingInstant(nanoseconds: 1_750_000_000_000_000_000))
        var configuration = SpoolEngineConfiguration()
        configuration.clock = .manual(clock)
        configuration.firesTimersAutomatically = false
        let engine = try SpoolEngine.open(directory: data, configuration: configuration)
        for id in ["old", "newer"] {
            let started = try await engine.startWorkflowExecution(.init(workflowID: id, workflowType: "t", taskQueue: "q"))
            try await engine.terminateWorkflowExecution(execution: WorkflowExecution(workflowID: id, runID: started.runID))
            clock.advance(by: .seconds(8 * 24 * 3600))
        }
        try await engine.close()

        for _ in 0..<2 {
            let list = try SpoolProcess.run(["workflow", "list", "--data", data])
            #expect(list.status == 0, "\(list.stderr)")
            #expect(list.stdout.contains("old") && list.stdout.contains("newer"), "\(list.stdout)")
            for command in ["describe", "show"] {
                let read = try SpoolProcess.run(["workflow", command, "--data", data, "--id", "old"])
                #expect(read.status == 0, "\(command): \(read.stderr)")
            }
        }
        // An engine that applies retention (the system clock, far ahead of these records) goes
        // by the log's own times: "old" closed more than 7 days before the newest record is
        // past retention, "newer" (the newest record) is not.
        let live = try SpoolEngine.open(directory: data)
        let ids = Set(live.listWorkflowExecutions().map(\.execution.workflowID))
        try await live.close()
        #expect(ids == ["newer"], "\(ids)")
    }
}
