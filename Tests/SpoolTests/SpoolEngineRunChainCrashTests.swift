import SpoolLogTesting
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
}

extension Array {
    func asyncFirst(where predicate: (Element) async throws -> Bool) async rethrows -> Element? {
        for element in self where try await predicate(element) { return element }
        return nil
    }
}
