import SpoolLogTesting
import SpoolLog
import SpoolMatching
import Testing
@testable import Spool

/// Power cut at a random system call (``PowerLossSyscalls``: every byte not synced and every
/// directory entry not made durable is dropped), while workflows run and checkpoints are written.
/// After each reopen, everything a caller saw acknowledged must be there: each run's history as
/// last read is a prefix of its recovered history, and the workload then completes.
@Suite struct SpoolEnginePowerLossTests {
    func open(_ directory: String, clock: ManualMatchingClock, power: PowerLossSyscalls) throws -> SpoolEngine {
        var configuration = SpoolEngineConfiguration()
        configuration.clock = .manual(clock)
        configuration.firesTimersAutomatically = false
        configuration.checkpointEveryRecords = 7
        configuration.log = LogConfiguration(durability: .sync)
        configuration.log.syscalls = power
        return try SpoolEngine.open(directory: directory + "/data", configuration: configuration)
    }

    /// One step of a one-activity workflow workload; false when there was nothing to do.
    func step(_ engine: SpoolEngine, clock: ManualMatchingClock) async throws -> Bool {
        if let task = try await engine.pollWorkflowTaskQueue(taskQueue: "q", identity: "w", timeout: .zero) {
            let done = task.history.contains { $0.eventType == .activityTaskCompleted }
            let scheduled = task.history.contains { $0.eventType == .activityTaskScheduled }
            let commands: [Command] = done ? [.completeWorkflowExecution(.init())] : scheduled ? [] : [scheduleActivity(startToClose: .seconds(20))]
            try await engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: commands)
            return true
        }
        if let activity = try await engine.pollActivityTaskQueue(taskQueue: "q", identity: "w", timeout: .zero) {
            try await engine.respondActivityTaskCompleted(taskToken: activity.taskToken, result: .binary([1]))
            return true
        }
        return false
    }

    @Test func everythingAcknowledgedSurvivesAPowerCut() async throws {
        let h = try EngineHarness()
        await h.engine.abandon()
        var random = SplitMix64(seed: 7)
        var acknowledged: [String: [HistoryEvent]] = [:]
        var started = 0
        for round in 0..<16 {
            let power = PowerLossSyscalls()
            let engine = try open(h.directory, clock: h.clock, power: power)
            // What this open recovered must extend everything acknowledged before the cut.
            for (workflowID, history) in acknowledged {
                let recovered = try await engine.getWorkflowExecutionHistory(execution: WorkflowExecution(workflowID: workflowID)).history
                #expect(Array(recovered.prefix(history.count)) == history, "round \(round): \(workflowID) lost acknowledged events")
            }
            power.cutPower(atStep: power.stepCount + 1 + Int(random.next() % 120))
            do {
                for _ in 0..<2 {
                    try await engine.startWorkflowExecution(.init(workflowID: "w\(started)", workflowType: "order", taskQueue: "q"))
                    started += 1
                }
                for _ in 0..<30 {
                    if try await !step(engine, clock: h.clock) {
                        h.clock.advance(by: .seconds(30))
                        await engine.fireDueTimers()
                    }
                    for info in engine.listWorkflowExecutions() {
                        acknowledged[info.execution.workflowID] = try await engine.getWorkflowExecutionHistory(execution: info.execution).history
                    }
                }
            } catch {
                // The power went: calls fail from here on.
            }
            await engine.abandon()
            power.simulatePowerLoss()
        }
        // With the power back for good, every started workflow completes.
        let engine = try open(h.directory, clock: h.clock, power: PowerLossSyscalls())
        for (workflowID, history) in acknowledged {
            let recovered = try await engine.getWorkflowExecutionHistory(execution: WorkflowExecution(workflowID: workflowID)).history
            #expect(Array(recovered.prefix(history.count)) == history, "\(workflowID) lost acknowledged events")
        }
        for _ in 0..<500 {
            if engine.listWorkflowExecutions(status: .running).isEmpty { break }
            if try await !step(engine, clock: h.clock) {
                h.clock.advance(by: .seconds(30))
                await engine.fireDueTimers()
            }
        }
        #expect(engine.listWorkflowExecutions(status: .running).isEmpty)
        #expect(engine.listWorkflowExecutions(status: .completed).count >= acknowledged.count)
        for info in engine.listWorkflowExecutions() {
            let history = try await engine.getWorkflowExecutionHistory(execution: info.execution).history
            #expect(history.map(\.eventID) == Array(1...Int64(history.count)))
            #expect(history.filter { $0.eventType == .activityTaskCompleted }.count == 1)
        }
        try await engine.close()
    }
}
