import SpoolLog
import SpoolLogTesting
import SpoolMatching
import Testing
@testable import Spool

/// Workflow retries and cron chains with the engine killed at many points (issue 18, "the crash
/// tests cover cron and workflow retries"): after every reopen each chain goes on as it would
/// have without the crash — no run lost, none started twice, no history rewritten.
@Suite struct SpoolEngineRunChainCrashTests {
    static let retryIDs = (0..<5).map { "retry\($0)" }
    static let cronIDs = (0..<5).map { "cron\($0)" }

    /// A retried workflow always fails; a cron workflow completes with a count one more than the
    /// last run's, and cancels its run (ending the chain) once it has seen 2.
    static func commands(for task: WorkflowTask) -> [Command] {
        guard case .workflowExecutionStarted(let started)? = task.history.first?.attributes else { return [] }
        if task.workflowExecution.workflowID.hasPrefix("retry") {
            return [.failWorkflowExecution(.init(failure: .application("attempt \(started.attempt)", type: "Flaky")))]
        }
        let last = started.lastCompletionResult.flatMap { $0.first }.map { Int(String(decoding: $0.data, as: UTF8.self)) ?? 0 } ?? 0
        if last >= 2 { return [.cancelWorkflowExecution(.init())] }
        return [.completeWorkflowExecution(.init(result: .json("\(last + 1)")))]
    }

    @Test func everyChainEndsAsWithoutTheCrashes() async throws {
        let h = try EngineHarness(durability: .sync, injectingFaults: true)
        for id in Self.retryIDs {
            try await h.start(request(id, retry: RetryPolicy(initialInterval: .seconds(1), maximumAttempts: 3)))
        }
        for id in Self.cronIDs { try await h.start(request(id, cron: "@every 60s")) }
        var random = SplitMix64(seed: 18)
        var seen: [String: [HistoryEvent]] = [:]
        var crashes = 0
        for _ in 0..<600 {
            if h.engine.listWorkflowExecutions(status: .running).isEmpty { break }
            if random.next() % 5 == 0 {
                if random.next() % 2 == 0 { h.crashAfterNextAppend() } else { try await h.crashAndReopen(); crashes += 1 }
            }
            do {
                if let task = try await h.pollWorkflowTask() {
                    try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: Self.commands(for: task))
                } else {
                    await h.advance(.seconds(20))       // backoffs, cron waits, and tasks the crashes left started
                }
            } catch let error as SpoolError where error.code == .storage || error.code == .staleTaskToken {
                if error.code == .storage { try await h.crashAndReopen(); crashes += 1 }
            }
            for info in h.engine.listWorkflowExecutions() {
                let history = try await h.history(info.execution)
                let previous = seen[info.execution.runID] ?? []
                #expect(Array(history.prefix(previous.count)) == previous, "history of \(info.execution) was rewritten")
                seen[info.execution.runID] = history
            }
        }
        #expect(crashes > 5)
        #expect(h.engine.listWorkflowExecutions(status: .running).isEmpty)
        let runs = h.engine.listWorkflowExecutions()
        for id in Self.retryIDs + Self.cronIDs {
            // Three runs per workflow id, linked in order from the first.
            let ofID = runs.filter { $0.execution.workflowID == id }
            #expect(ofID.count == 3, "\(id) has \(ofID.count) runs")
            // In chain order: each run names the one it continues (a retry may start at its
            // predecessor's instant, so start times do not order them).
            var chain: [WorkflowExecutionInfo] = []
            var link = ""
            while let next = try await ofID.asyncFirst(where: { try await h.started($0.execution).continuedExecutionRunID == link }) {
                chain.append(next)
                link = next.execution.runID
            }
            #expect(chain.count == 3, "\(id): the chain from its first run has \(chain.count) runs")
            guard chain.count == 3 else { continue }
            var previous = ""
            for (index, info) in chain.enumerated() {
                let started = try await h.started(info.execution)
                #expect(started.continuedExecutionRunID == previous)
                #expect(started.firstExecutionRunID == chain[0].execution.runID)
                previous = info.execution.runID
                let history = try await h.history(info.execution)
                #expect(history.map(\.eventID) == Array(1...Int64(history.count)))
                if id.hasPrefix("retry") {
                    #expect(started.attempt == Int32(index + 1))
                    #expect(info.status == .failed)
                    guard case .workflowExecutionFailed(let failed)? = history.last?.attributes else { continue }
                    #expect(failed.retryState == (index < 2 ? .inProgress : .maximumAttemptsReached))
                } else {
                    #expect(started.lastCompletionResult == (index == 0 ? nil : .json("\(index)")))
                    #expect(info.status == (index < 2 ? .completed : .canceled))
                }
            }
        }
    }

    /// The same workloads with the power cut at random system calls (unsynced bytes dropped):
    /// what a caller saw acknowledged survives, and every chain still ends with its three runs.
    @Test func everyChainEndsDespitePowerCuts() async throws {
        let h = try EngineHarness()
        await h.engine.abandon()
        func open(_ power: PowerLossSyscalls) throws -> SpoolEngine {
            var configuration = SpoolEngineConfiguration()
            configuration.clock = .manual(h.clock)
            configuration.firesTimersAutomatically = false
            configuration.checkpointEveryRecords = 5
            configuration.log = LogConfiguration(durability: .sync)
            configuration.log.syscalls = power
            return try SpoolEngine.open(directory: h.directory + "/data", configuration: configuration)
        }
        func step(_ engine: SpoolEngine) async throws {
            if let task = try await engine.pollWorkflowTaskQueue(taskQueue: "q", identity: "w", timeout: .zero) {
                try await engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: Self.commands(for: task))
            } else {
                h.clock.advance(by: .seconds(20))
                await engine.fireDueTimers()
            }
        }
        var random = SplitMix64(seed: 1818)
        var acknowledged: [String: AcknowledgedHistory] = [:]
        var started: [String] = []
        for round in 0..<12 {
            let power = PowerLossSyscalls()
            let engine = try open(power)
            for (runID, history) in acknowledged {
                let recovered = try await engine.getWorkflowExecutionHistory(execution: WorkflowExecution(workflowID: history.workflowID, runID: runID)).history
                #expect(Array(recovered.prefix(history.events.count)) == history.events, "round \(round): run \(runID) lost acknowledged events")
            }
            power.cutPower(atStep: power.stepCount + 1 + Int(random.next() % 150))
            do {
                let id = round % 2 == 0 ? "retry-p\(round)" : "cron-p\(round)"
                try await engine.startWorkflowExecution(round % 2 == 0
                    ? request(id, retry: RetryPolicy(initialInterval: .seconds(1), maximumAttempts: 3))
                    : request(id, cron: "@every 60s"))
                started.append(id)
                for _ in 0..<25 {
                    try await step(engine)
                    for info in engine.listWorkflowExecutions() {
                        acknowledged[info.execution.runID] = .init(
                            workflowID: info.execution.workflowID,
                            events: try await engine.getWorkflowExecutionHistory(execution: info.execution).history)
                    }
                }
            } catch {
                // The power went: calls fail from here on.
            }
            await engine.abandon()
            power.simulatePowerLoss()
        }
        let engine = try open(PowerLossSyscalls())
        for _ in 0..<400 {
            if engine.listWorkflowExecutions(status: .running).isEmpty { break }
            try await step(engine)
        }
        #expect(engine.listWorkflowExecutions(status: .running).isEmpty)
        let runs = engine.listWorkflowExecutions()
        #expect(started.count >= 6)
        for id in Set(runs.map(\.execution.workflowID)).union(started) {
            let ofID = runs.filter { $0.execution.workflowID == id }
            #expect(ofID.count == 3, "\(id) has \(ofID.count) runs")
            // One first run, and each run continued by at most one.
            var continued: [String: Int] = [:]
            for info in ofID {
                let history = try await engine.getWorkflowExecutionHistory(execution: info.execution).history
                #expect(history.map(\.eventID) == Array(1...Int64(history.count)))
                guard case .workflowExecutionStarted(let a)? = history.first?.attributes else { continue }
                continued[a.continuedExecutionRunID, default: 0] += 1
            }
            #expect(continued.values.allSatisfy { $0 == 1 } && continued[""] == 1, "\(id): \(continued)")
        }
        try await engine.close()
    }
}

extension Array {
    func asyncFirst(where predicate: (Element) async throws -> Bool) async rethrows -> Element? {
        for element in self where try await predicate(element) { return element }
        return nil
    }
}

/// A run's history as last acknowledged, with its workflow id.
struct AcknowledgedHistory {
    var workflowID: String
    var events: [HistoryEvent]
}
