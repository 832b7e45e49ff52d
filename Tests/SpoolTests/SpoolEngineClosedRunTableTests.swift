#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting
import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import Spool

/// Checkpoints that keep closed runs in a closed-run table: what a reopen answers from it, the
/// merges, crashes between the files, a damaged table, and version 1 checkpoints.
@Suite struct SpoolEngineClosedRunTableTests {
    static func openEngine(_ directory: String, clock: ManualMatchingClock, mergeThreshold: Int,
                     syscalls: (any Syscalls)? = nil) throws -> SpoolEngine {
        var configuration = SpoolEngineConfiguration()
        configuration.clock = .manual(clock)
        configuration.log = LogConfiguration(durability: .sync)
        if let syscalls { configuration.log.syscalls = syscalls }
        configuration.firesTimersAutomatically = false
        configuration.checkpointEveryRecords = nil
        configuration.closedRunTableMergeThreshold = mergeThreshold
        return try SpoolEngine.open(directory: directory + "/data", configuration: configuration)
    }

    func reopen(_ h: EngineHarness, mergeThreshold: Int = 1) throws {
        h.engine = try Self.openEngine(h.directory, clock: h.clock, mergeThreshold: mergeThreshold)
    }

    /// Closed runs of several kinds (terminated, completed, continued as new, three runs of one
    /// workflow id) and open ones (a pending workflow task, a started activity).
    func populate(_ h: EngineHarness) async throws {
        for index in 0..<4 {
            let run = try await h.start("done-\(index)", type: index % 2 == 0 ? "even" : "odd")
            try await h.engine.terminateWorkflowExecution(execution: run, reason: "r\(index)")
        }
        for _ in 0..<3 {
            let run = try await h.start("again")
            try await h.engine.terminateWorkflowExecution(execution: run)
        }
        _ = try await h.start("completed")
        _ = try await h.completeWorkflowTask([.completeWorkflowExecution(.init(result: .binary([7])))])
        _ = try await h.start("continued")
        _ = try await h.completeWorkflowTask([.continueAsNewWorkflowExecution(.init(workflowType: "order", taskQueue: "q2"))])
        _ = try await h.start("busy")
        _ = try await h.completeWorkflowTask([scheduleActivity("x")])
        _ = try #require(try await h.pollActivityTask())
        _ = try await h.start("pending")
    }

    /// The visibility index (its base rows loaded from the table's visibility section) gives the
    /// full scan's answers.
    func expectIndexMatchesScan(_ engine: SpoolEngine, _ when: String) throws {
        for query in ["", "ExecutionStatus = 'Terminated'", "ExecutionStatus = 'Running'", "WorkflowId = 'w3'", "WorkflowId = 'again'",
                      "WorkflowType = 't'", "WorkflowType = 'even'", "TaskQueue = 'q2'"] {
            #expect(try SpoolEngineVisibilityIndexTests.listAll(engine, query, pageSize: 7, plan: .index)
                    == SpoolEngineVisibilityIndexTests.listAll(engine, query, pageSize: 7, plan: .scan), "\(when): \(query)")
        }
        #expect(try engine.countWorkflowExecutions(query: "GROUP BY ExecutionStatus") == engine.countWorkflowExecutions(query: "GROUP BY ExecutionStatus", plan: .scan), "\(when)")
    }

    func closedRunTables(_ h: EngineHarness) -> [String] {
        directoryEntries(h.directory + "/data").filter { $0.hasPrefix(ClosedRunTable.filePrefix) }
    }

    @Test func aReopenAnswersFromTheClosedRunTableAsBeforeClosing() async throws {
        let h = try EngineHarness(durability: .sync)
        await h.engine.abandon()
        try reopen(h)
        try await populate(h)
        let before = try await h.snapshot()
        let lists = [h.engine.listWorkflowExecutions(status: .terminated), h.engine.listWorkflowExecutions(workflowType: "even"),
                     h.engine.listWorkflowExecutions(status: .running)]
        let currentAgain = try h.describe(WorkflowExecution(workflowID: "again")).executionInfo.execution
        try await h.engine.close()
        #expect(closedRunTables(h).count == 1)
        try reopen(h)
        let report = try #require(h.engine.recovery)
        #expect(report.usedCheckpoint && report.recordsReplayed == 0)
        #expect(report.openRuns == 3)          // continued's new run, busy, pending
        #expect(report.runs == before.count)
        // Closed runs were not decoded: only the open ones are in memory.
        #expect(h.engine.registry.allHandles().count == 3)
        expectSameState(before, try await h.snapshot())
        #expect([h.engine.listWorkflowExecutions(status: .terminated), h.engine.listWorkflowExecutions(workflowType: "even"),
                 h.engine.listWorkflowExecutions(status: .running)] == lists)
        // The current run of a workflow id with three closed runs is its newest.
        #expect(try h.describe(WorkflowExecution(workflowID: "again")).executionInfo.execution == currentAgain)
        // History pages and the close-event filter of a run read from the table.
        let doneRun = try #require(before.values.first { $0.0.executionInfo.execution.workflowID == "done-0" })
        let first = try await h.engine.getWorkflowExecutionHistory(execution: doneRun.0.executionInfo.execution, maximumPageSize: 2)
        #expect(first.history == Array(doneRun.1.prefix(2)) && first.nextPageToken != nil)
        let rest = try await h.engine.getWorkflowExecutionHistory(execution: doneRun.0.executionInfo.execution, maximumPageSize: 2,
                                                                  nextPageToken: first.nextPageToken)
        #expect(rest.history == Array(doneRun.1.dropFirst(2).prefix(2)))
        let close = try await h.engine.getWorkflowExecutionHistory(execution: WorkflowExecution(workflowID: "completed"),
                                                                   historyEventFilterType: .closeEvent)
        #expect(close.history.map(\.eventType) == [.workflowExecutionCompleted])
        // Id policies see the closed runs in the table.
        await #expect(throws: SpoolError.self) { try await h.start("done-1", reuse: .rejectDuplicate) }
        await #expect(throws: SpoolError.self) { try await h.start("completed", reuse: .allowDuplicateFailedOnly) }
        await #expect(throws: SpoolError.self) { try await h.start("pending") }
        let again = try await h.start("done-2", reuse: .allowDuplicateFailedOnly)  // terminated: allowed
        #expect(try h.describe(WorkflowExecution(workflowID: "done-2")).executionInfo.execution == again)
        // Closed runs cannot be signalled, as before.
        let closed = try #require(before.values.first { $0.0.executionInfo.execution.workflowID == "done-3" }).0.executionInfo.execution
        await #expect(throws: SpoolError.self) { try await h.engine.signalWorkflowExecution(execution: closed, signalName: "s") }
    }

    @Test func checkpointsKeepNewClosedRunsUntilAMerge() async throws {
        let h = try EngineHarness(durability: .sync)
        await h.engine.abandon()
        try reopen(h, mergeThreshold: 3)
        for index in 0..<2 { try await h.engine.terminateWorkflowExecution(execution: try await h.start("a\(index)")) }
        try await h.engine.checkpoint()
        #expect(closedRunTables(h).isEmpty)     // two closed runs: in the checkpoint file
        for index in 0..<2 { try await h.engine.terminateWorkflowExecution(execution: try await h.start("b\(index)")) }
        try await h.engine.checkpoint()
        let first = closedRunTables(h)
        #expect(first.count == 1)               // four: merged into a table, and out of memory
        #expect(h.engine.registry.allHandles().isEmpty)
        for index in 0..<3 { try await h.engine.terminateWorkflowExecution(execution: try await h.start("c\(index)")) }
        _ = try await h.start("open")
        try await h.engine.checkpoint()
        let second = closedRunTables(h)
        #expect(second.count == 1 && second != first)   // the superseded table is removed
        let before = try await h.snapshot()
        #expect(before.count == 8)
        await h.engine.abandon()
        try reopen(h, mergeThreshold: 3)
        #expect(h.engine.recovery?.recordsReplayed == 0)
        expectSameState(before, try await h.snapshot())
    }

    @Test func aCrashAfterACheckpointReplaysOnlyWhatCameAfter() async throws {
        let h = try EngineHarness(durability: .sync)
        await h.engine.abandon()
        try reopen(h)
        try await populate(h)
        try await h.engine.checkpoint()
        // After the checkpoint: a new run of a workflow id whose runs are in the table, more closed runs.
        try await h.engine.terminateWorkflowExecution(execution: try await h.start("again"))
        try await h.engine.terminateWorkflowExecution(execution: WorkflowExecution(workflowID: "pending"))
        let before = try await h.snapshot()
        await h.engine.abandon()
        try reopen(h)
        #expect(h.engine.recovery?.usedCheckpoint == true)
        #expect(h.engine.recovery?.recordsReplayed == 3)
        expectSameState(before, try await h.snapshot())
        await #expect(throws: SpoolError.self) { try await h.start("again", reuse: .rejectDuplicate) }
    }

    @Test func mergesDuringStartsAndTerminationsMissNothing() async throws {
        let h = try EngineHarness(durability: .sync)
        await h.engine.abandon()
        try reopen(h, mergeThreshold: 4)
        let engine = h.engine
        let lastRuns = try await withThrowingTaskGroup(of: (String, String)?.self) { group in
            for index in 0..<12 {
                group.addTask {
                    var last = ""
                    for _ in 0..<5 {
                        // Each start's id-reuse check may find the previous run in memory or in a table.
                        let run = try await engine.startWorkflowExecution(.init(workflowID: "w\(index)", workflowType: "t", taskQueue: "q",
                                                                                workflowIDReusePolicy: .allowDuplicate))
                        try await engine.terminateWorkflowExecution(execution: WorkflowExecution(workflowID: "w\(index)", runID: run.runID))
                        last = run.runID
                    }
                    return ("w\(index)", last)
                }
            }
            group.addTask {
                for _ in 0..<6 { try await engine.checkpoint() }
                return nil
            }
            var lastRuns: [String: String] = [:]
            for try await pair in group { if let (id, run) = pair { lastRuns[id] = run } }
            return lastRuns
        }
        #expect(closedRunTables(h).count == 1)
        let before = try await h.snapshot()
        #expect(before.count == 60)
        for (id, run) in lastRuns { #expect(try h.describe(WorkflowExecution(workflowID: id)).executionInfo.execution.runID == run) }
        await h.engine.abandon()
        try reopen(h, mergeThreshold: 4)
        expectSameState(before, try await h.snapshot())
        #expect(h.engine.visibility.state.withLock { $0.baseCount } > 0)
        try expectIndexMatchesScan(h.engine, "after the merges")
        for (id, run) in lastRuns { #expect(try h.describe(WorkflowExecution(workflowID: id)).executionInfo.execution.runID == run) }
    }

    @Test func aPowerCutWhileTheFilesAreWrittenLosesNothing() async throws {
        let h = try EngineHarness(durability: .sync)
        await h.engine.abandon()
        try reopen(h)
        try await populate(h)
        try await h.engine.checkpoint()
        await h.engine.abandon()
        var cut = 1
        var sawOldCheckpoint = false, sawNewCheckpoint = false
        while true {
            let power = PowerLossSyscalls()
            let engine = try Self.openEngine(h.directory, clock: h.clock, mergeThreshold: 1, syscalls: power)
            h.engine = engine
            for index in 0..<2 { try await h.engine.terminateWorkflowExecution(execution: try await h.start("cut-\(cut)-\(index)")) }
            let before = try await h.snapshot()
            let steps = power.stepCount
            power.cutPower(atStep: steps + cut)
            var completed = true
            do { try await engine.checkpoint() } catch { completed = false }
            await engine.abandon()
            _ = power.simulatePowerLoss()
            try reopen(h)
            let report = try #require(h.engine.recovery)
            #expect(report.usedCheckpoint, "cut at step \(cut): \(report.ignoredCheckpoint ?? "")")
            if report.recordsReplayed == 0 { sawNewCheckpoint = true } else { sawOldCheckpoint = true }
            expectSameState(before, try await h.snapshot())
            try expectIndexMatchesScan(h.engine, "cut at step \(cut)")
            try await h.engine.close()
            if completed { break }
            cut += 1
        }
        #expect(cut > 4 && sawOldCheckpoint && sawNewCheckpoint)
    }

    @Test func aDamagedClosedRunTableIsIgnoredAndTheLogReplayed() async throws {
        let h = try EngineHarness(durability: .sync)
        await h.engine.abandon()
        try reopen(h)
        try await populate(h)
        let before = try await h.snapshot()
        try await h.engine.close()
        let table = try #require(closedRunTables(h).first)
        let fd = open(h.directory + "/data/" + table, O_RDWR)
        #expect(fd >= 0)
        var byte: UInt8 = 0
        _ = pread(fd, &byte, 1, 60)
        byte ^= 0x10
        _ = pwrite(fd, &byte, 1, 60)
        close(fd)
        try reopen(h)
        let report = try #require(h.engine.recovery)
        #expect(!report.usedCheckpoint)
        #expect(report.ignoredCheckpoint?.contains("closed-run table") == true)
        #expect(report.recordsReplayed > 10)
        expectSameState(before, try await h.snapshot())
    }

    @Test func closedRunsInTheTableLeaveAfterTheirRetention() async throws {
        let h = try EngineHarness(durability: .sync)
        await h.engine.abandon()
        try reopen(h)
        let old = try await h.start("old")
        try await h.engine.terminateWorkflowExecution(execution: old)
        h.clock.advance(by: .seconds(3 * 24 * 3600))
        let recent = try await h.start("recent")
        try await h.engine.terminateWorkflowExecution(execution: recent)
        try await h.engine.close()
        h.clock.advance(by: .seconds(5 * 24 * 3600))   // old: 8 days closed, recent: 5
        try reopen(h)
        #expect(throws: SpoolError.self) { try h.describe(old) }
        #expect(h.engine.listWorkflowExecutions().map(\.execution) == [recent])
        _ = try await h.start("old", reuse: .rejectDuplicate)
        await #expect(throws: SpoolError.self) { try await h.start("recent", reuse: .rejectDuplicate) }
        // A run loaded from the table leaves memory when its retention ends.
        _ = try h.describe(recent)
        await h.advance(.seconds(2 * 24 * 3600))
        #expect(throws: SpoolError.self) { try h.describe(recent) }
    }

    @Test func aVersion1CheckpointStillOpens() async throws {
        let h = try EngineHarness(durability: .sync)
        await h.engine.abandon()
        try reopen(h, mergeThreshold: 1_000)
        try await populate(h)
        let before = try await h.snapshot()
        try await h.engine.close()
        // Rewrite the (tableless) version 2 checkpoint as version 1: no table field.
        let v2 = try #require(try CheckpointStore(directory: h.directory + "/data", syscalls: SystemCalls()).read())
        let checkpoint = try EngineCheckpoint.decode(v2)
        #expect(checkpoint.closedTable == nil)
        let v1 = checkpoint.layout1Bytes()
        try CheckpointStore(directory: h.directory + "/data", syscalls: SystemCalls()).write(v1)
        try reopen(h)
        let report = try #require(h.engine.recovery)
        #expect(report.usedCheckpoint && report.recordsReplayed == 0)
        expectSameState(before, try await h.snapshot())
        // Its next checkpoint is the current version, with the closed runs in a table.
        try await h.engine.close()
        #expect(closedRunTables(h).count == 1)
        try reopen(h)
        expectSameState(before, try await h.snapshot())
    }
}

extension EngineCheckpoint {
    /// This checkpoint in layout 1, as an older build wrote it: no table field, every run in the
    /// file (so it must not name a table).
    func layout1Bytes() -> [UInt8] {
        precondition(closedTable == nil, "layout 1 has no closed-run table")
        var w = BinaryWriter()
        for byte in EngineCheckpoint.magic { w.byte(byte) }
        w.byte(1)
        w.unsigned(replayFrom)
        w.count(runs.count)
        for run in runs { run.encodeFlat(into: &w) }   // version 1 has the flat value layout
        var bytes = w.bytes
        withUnsafeBytes(of: CRC32C.checksum(bytes).littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }
}
