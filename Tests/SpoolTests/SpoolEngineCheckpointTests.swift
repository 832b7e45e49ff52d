#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Spool

@Suite struct SpoolEngineCheckpointTests {
    /// Runs in every interesting state: a started workflow task with a buffered signal, a started
    /// activity with heartbeat details, one in retry backoff, a pending timer, a sticky queue,
    /// a closed run and a continued-as-new chain.
    func busyEngine() async throws -> EngineHarness {
        let h = try EngineHarness(durability: .sync)
        let a = try await h.start("a")
        let task = try #require(try await h.pollWorkflowTask())
        try await h.engine.respondWorkflowTaskCompleted(
            taskToken: task.taskToken,
            commands: [scheduleActivity("x", heartbeat: .seconds(20)), scheduleActivity("y", retry: RetryPolicy(initialInterval: .seconds(50))),
                       .startTimer(.init(timerID: "t", startToFireTimeout: .seconds(100)))],
            stickyAttributes: StickyExecutionAttributes(workerTaskQueue: "sticky-1"))
        let x = try #require(try await h.pollActivityTask())
        let y = try #require(try await h.pollActivityTask())
        let (running, retried) = x.activityID == "x" ? (x, y) : (y, x)
        try await h.engine.recordActivityTaskHeartbeat(taskToken: running.taskToken, details: .binary([1, 2, 3]))
        try await h.engine.respondActivityTaskFailed(taskToken: retried.taskToken, failure: Failure.application("flaky", type: "IO"))
        try await h.engine.signalWorkflowExecution(execution: a, signalName: "go")
        _ = try #require(try await h.pollWorkflowTask("sticky-1"))
        try await h.engine.signalWorkflowExecution(execution: a, signalName: "buffered", input: .binary([9]))
        let b = try await h.start("b")
        try await h.engine.terminateWorkflowExecution(execution: b, reason: "done")
        _ = try await h.start("c")
        return h
    }

    @Test func checkpointsRoundTripEveryField() async throws {
        let h = try await busyEngine()
        let runs = h.engine.registry.allHandles().map { EngineCheckpoint.Run(state: $0.state, recordOffsets: $0.historyOrOffsets.offsets) }
        #expect(runs.contains { !$0.state.buffered.isEmpty && $0.state.stickyTaskQueue != nil && $0.state.activities.count == 2 })
        let checkpoint = EngineCheckpoint(replayFrom: 17, runs: runs)
        #expect(try EngineCheckpoint.decode(checkpoint.encoded()) == checkpoint)
        var damaged = checkpoint.encoded()
        damaged[damaged.count / 2] ^= 0x40
        #expect(throws: SpoolError.self) { try EngineCheckpoint.decode(damaged) }
    }

    @Test func aCleanCloseReopensWithoutReplayingTheLog() async throws {
        let h = try await busyEngine()
        let before = try await h.snapshot()
        try await h.closeAndReopen()
        let report = try #require(h.engine.recovery)
        #expect(report.usedCheckpoint)
        #expect(report.recordsReplayed == 0)
        #expect(report.runs == 3)
        #expect(report.openRuns == 2)
        expectSameState(before, try await h.snapshot())
        // The restored run still works: its activity in backoff comes back when the backoff ends.
        await h.advance(.seconds(50))
        let retry = try #require(try await h.pollActivityTask())
        #expect(retry.attempt == 2)
    }

    @Test func afterACrashOnlyTheRecordsAfterTheCheckpointAreReplayed() async throws {
        let h = try await busyEngine()
        try await h.engine.checkpoint()
        let c = WorkflowExecution(workflowID: "c")
        for index in 0..<5 { try await h.engine.signalWorkflowExecution(execution: c, signalName: "s\(index)") }
        _ = try await h.start("d")
        let before = try await h.snapshot()
        try await h.crashAndReopen()
        let report = try #require(h.engine.recovery)
        #expect(report.usedCheckpoint)
        #expect(report.recordsReplayed == 6)
        expectSameState(before, try await h.snapshot())
    }

    @Test func aCheckpointTakenDuringTransitionsMissesNothingAndDoublesNothing() async throws {
        let h = try EngineHarness(durability: .sync)
        let count = 20
        for index in 0..<count { try await h.start("w\(index)") }
        let engine = h.engine
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<count {
                group.addTask {
                    for signal in 0..<10 {
                        try await engine.signalWorkflowExecution(execution: WorkflowExecution(workflowID: "w\(index)"), signalName: "s\(signal)")
                    }
                }
            }
            group.addTask {
                for _ in 0..<3 { try await engine.checkpoint() }
            }
            try await group.waitForAll()
        }
        let before = try await h.snapshot()
        try await h.crashAndReopen()
        #expect(h.engine.recovery?.usedCheckpoint == true)
        expectSameState(before, try await h.snapshot())
        for info in h.engine.listWorkflowExecutions() {
            #expect(try await h.eventTypes(info.execution).filter { $0 == .workflowExecutionSignaled }.count == 10)
        }
    }

    @Test func aDamagedCheckpointIsIgnoredAndTheWholeLogReplayed() async throws {
        let h = try await busyEngine()
        let before = try await h.snapshot()
        try await h.engine.close()
        let path = h.directory + "/data/checkpoint"
        let fd = open(path, O_WRONLY)
        #expect(fd >= 0)
        var byte: UInt8 = 0xFF
        _ = pwrite(fd, &byte, 1, 40)
        close(fd)
        h.engine = try EngineHarness.open(h.directory, clock: h.clock, durability: h.durability)
        let report = try #require(h.engine.recovery)
        #expect(!report.usedCheckpoint)
        #expect(report.ignoredCheckpoint != nil)
        #expect(report.recordsReplayed > 10)
        expectSameState(before, try await h.snapshot())
    }

    @Test func periodicCheckpointsBoundTheReplay() async throws {
        let h = try EngineHarness(durability: .none)
        await h.engine.abandon()
        var configuration = SpoolEngineConfiguration()
        configuration.clock = .manual(h.clock)
        configuration.firesTimersAutomatically = false
        configuration.checkpointEveryRecords = 10
        h.engine = try SpoolEngine.open(directory: h.directory + "/data", configuration: configuration)
        let run = try await h.start()
        for index in 0..<35 { try await h.engine.signalWorkflowExecution(execution: run, signalName: "s\(index)") }
        try await h.engine.checkpoint()     // waits for any periodic one in flight, then writes its own
        for index in 0..<3 { try await h.engine.signalWorkflowExecution(execution: run, signalName: "t\(index)") }
        let before = try await h.snapshot()
        await h.engine.abandon()
        h.engine = try SpoolEngine.open(directory: h.directory + "/data", configuration: configuration)
        #expect(h.engine.recovery?.recordsReplayed == 3)
        expectSameState(before, try await h.snapshot())
    }
}
