#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting
import SpoolLog
import SpoolMatching
import Testing
@testable import Spool

/// Storage failures through the log's fault-injecting system-call layer: a failed write or sync
/// must reach the caller as `storage`, leave every run as it was, and be recovered by reopening.
@Suite struct SpoolEngineFaultTests {
    func open(_ h: EngineHarness, syscalls: FaultInjectingSyscalls) throws -> SpoolEngine {
        var configuration = SpoolEngineConfiguration()
        configuration.clock = .manual(h.clock)
        configuration.firesTimersAutomatically = false
        configuration.log = LogConfiguration(durability: .sync)
        configuration.log.syscalls = syscalls
        return try SpoolEngine.open(directory: h.directory + "/data", configuration: configuration)
    }

    @Test func aFailedSyncFailsTheCallChangesNothingAndReopeningRecovers() async throws {
        let h = try EngineHarness()
        await h.engine.abandon()
        let faults = FaultInjectingSyscalls()
        h.engine = try open(h, syscalls: faults)
        let run = try await h.start()
        let before = try await h.snapshot()

        faults.fail(.fdatasync, errno: EIO, path: .suffix(".log"), occurrence: .from(1))
        await #expect { try await h.engine.signalWorkflowExecution(execution: run, signalName: "lost?") }
            throws: { isSpoolError($0, .storage) }
        expectSameState(before, try await h.snapshot())
        // The log is poisoned: later transitions fail too, and still change nothing.
        await #expect { try await h.start("other") } throws: { isSpoolError($0, .storage) }
        #expect(throws: SpoolError.self) { try h.engine.describeWorkflowExecution(execution: WorkflowExecution(workflowID: "other")) }
        // The workflow task queued before the failure is handed out, but starting it fails.
        await #expect { try await h.pollWorkflowTask() } throws: { isSpoolError($0, .storage) }

        await h.engine.abandon()
        h.engine = try open(h, syscalls: FaultInjectingSyscalls())
        // The failed append may or may not have reached the disk; everything before it did.
        let history = try await h.history(run)
        #expect(history.count == 2 || history.last?.eventType == .workflowExecutionSignaled)
        #expect(try h.describe(run).executionInfo.status == .running)
        let task = try #require(try await h.pollWorkflowTask())
        try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [.completeWorkflowExecution(.init())])
        #expect(try h.describe(run).executionInfo.status == .completed)
    }

    @Test func aCheckpointThatCannotBeWrittenLeavesTheEngineWorking() async throws {
        let h = try EngineHarness()
        await h.engine.abandon()
        let faults = FaultInjectingSyscalls()
        h.engine = try open(h, syscalls: faults)
        let run = try await h.start()
        faults.fail(.rename, errno: ENOSPC, path: .containing("checkpoint"), occurrence: .from(1))
        await #expect { try await h.engine.checkpoint() } throws: { isSpoolError($0, .io) }
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "still fine")
        let before = try await h.snapshot()
        faults.removeAllFaults()
        try await h.engine.close()
        h.engine = try open(h, syscalls: FaultInjectingSyscalls())
        #expect(h.engine.recovery?.usedCheckpoint == true)
        expectSameState(before, try await h.snapshot())
    }
}
