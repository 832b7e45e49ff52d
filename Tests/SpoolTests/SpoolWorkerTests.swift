import SpoolPrimitives
import SpoolLog
import Synchronization
import Testing
@testable import Spool

/// Waits (without asserting anything about time) until `condition` holds; fails after a generous bound.
func eventually(_ what: String, _ condition: () async throws -> Bool) async throws {
    for _ in 0..<20_000 {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(1))
    }
    Issue.record("never happened: \(what)")
    throw SpoolError(.notFound, "never happened: \(what)")
}

/// One activity, then complete with its result.
let orderWorkflow: WorkflowDefinition = { context in
    for event in context.history {
        if case .activityTaskCompleted(let completed) = event.attributes { return [.completeWorkflowExecution(.init(result: completed.result))] }
        if case .activityTaskFailed(let failed) = event.attributes { return [.failWorkflowExecution(.init(failure: failed.failure))] }
    }
    if context.history.contains(where: { $0.eventType == .activityTaskScheduled }) { return [] }
    return [scheduleActivity("charge", type: "charge", input: context.input)]
}

@Suite struct SpoolWorkerTests {
    func closeEvent(_ h: EngineHarness, _ run: WorkflowExecution) async throws -> HistoryEvent? {
        try await h.engine.getWorkflowExecutionHistory(execution: run, waitNewEvent: true, historyEventFilterType: .closeEvent).history.first
    }

    @Test func aWorkerRunsWorkflowsAndActivitiesToCompletion() async throws {
        let h = try EngineHarness()
        let worker = SpoolWorker(engine: h.engine, taskQueue: "q", identity: "w1")
        worker.registerWorkflow("order", orderWorkflow)
        worker.registerActivity("charge") { context in .binary((context.task.input?.singleData ?? []) + [0xFF]) }
        let running = Task { await worker.run() }
        var runs: [WorkflowExecution] = []
        for index in 0..<5 { runs.append(try await h.start("order-\(index)", input: .binary([UInt8(index)]))) }
        for (index, run) in runs.enumerated() {
            guard case .workflowExecutionCompleted(let completed) = try await closeEvent(h, run)?.attributes else {
                Issue.record("\(run) did not complete"); continue
            }
            #expect(completed.result == .binary([UInt8(index), 0xFF]))
            // The second workflow task went to the worker's sticky queue.
            let scheduled = try await h.history(run).compactMap { event -> String? in
                if case .workflowTaskScheduled(let a) = event.attributes { return a.taskQueue }
                return nil
            }
            #expect(scheduled == ["q", worker.stickyTaskQueue])
        }
        await worker.stop()
        await running.value
    }

    @Test func workflowsStartedThroughTheWorkerRunTheirFirstTaskThereAtOnce() async throws {
        let h = try EngineHarness()
        let worker = SpoolWorker(engine: h.engine, taskQueue: "q", identity: "w1")
        worker.registerWorkflow("order", orderWorkflow)
        worker.registerActivity("charge") { context in context.task.input }
        let running = Task { await worker.run() }
        for index in 0..<5 {
            let response = try await worker.startWorkflow(.init(workflowID: "eager-\(index)", workflowType: "order", taskQueue: "q",
                                                                input: .binary([UInt8(index)])))
            #expect(response.started)
            guard case .workflowExecutionCompleted(let completed) = try await closeEvent(h, WorkflowExecution(workflowID: "eager-\(index)",
                                                                                                          runID: response.runID))?.attributes else {
                Issue.record("eager-\(index) did not complete"); continue
            }
            #expect(completed.result == .binary([UInt8(index)]))
            let history = try await h.history(WorkflowExecution(workflowID: "eager-\(index)"))
            guard case .workflowTaskStarted(let started) = history[2].attributes else { Issue.record("started"); continue }
            #expect(started.identity == "w1")
        }
        await worker.stop()
        await running.value
    }

    @Test func aWorkerRunsAtMostItsCapacityOfActivities() async throws {
        let h = try EngineHarness()
        let worker = SpoolWorker(engine: h.engine, taskQueue: "q", identity: "w1", maxConcurrentActivities: 2)
        let gate = Gate()
        worker.registerWorkflow("fan-out") { context in
            context.history.count <= 3 ? (1...5).map { scheduleActivity("a\($0)", type: "slow") } : []
        }
        worker.registerActivity("slow") { _ in
            await gate.wait()
            return nil
        }
        let running = Task { await worker.run() }
        let run = try await h.start("fan", type: "fan-out")
        try await eventually("two activities started") {
            try h.describe(run).pendingActivities.filter { $0.state == .started }.count == 2
        }
        for _ in 0..<200 { await Task.yield() }
        let states = try h.describe(run).pendingActivities.map(\.state)
        #expect(states.filter { $0 == .started }.count == 2)
        #expect(states.filter { $0 == .scheduled }.count == 3)
        gate.open()
        // Completions that arrive while a workflow task is started are buffered until it completes.
        try await eventually("all activities completed") {
            try await h.eventTypes(run).filter { $0 == .activityTaskCompleted }.count == 5
        }
        #expect(try h.describe(run).pendingActivities.isEmpty)
        await worker.stop()
        await running.value
    }

    @Test func anUnknownWorkflowTypeFailsTheTaskNotTheRun() async throws {
        let h = try EngineHarness()
        let worker = SpoolWorker(engine: h.engine, taskQueue: "q", identity: "w1")
        let running = Task { await worker.run() }
        let run = try await h.start(type: "never-registered")
        try await eventually("a workflow task failed") { try await h.eventTypes(run).contains(.workflowTaskFailed) }
        await worker.stop()
        await running.value
        let failed = try await h.history(run).first { $0.eventType == .workflowTaskFailed }
        guard case .workflowTaskFailed(let attributes) = failed?.attributes else { Issue.record("no failure"); return }
        #expect(attributes.cause == .workflowWorkerUnhandledFailure)
        #expect(attributes.failure?.message.contains("never-registered") == true)
        #expect(try h.describe(run).executionInfo.status == .running)
    }

    @Test func activityFailuresFollowTheRetryPolicy() async throws {
        let h = try EngineHarness()
        let worker = SpoolWorker(engine: h.engine, taskQueue: "q", identity: "w1")
        let attempts = Atomic<Int>(0)
        worker.registerWorkflow("order", orderWorkflow)
        worker.registerActivity("charge") { context in
            attempts.add(1, ordering: .relaxed)
            _ = try await context.heartbeat(.binary([UInt8(context.task.attempt)]))
            throw ActivityFailure(Failure.application("card declined", type: "Declined", nonRetryable: true))
        }
        let running = Task { await worker.run() }
        let run = try await h.start()
        guard case .workflowExecutionFailed(let failed) = try await closeEvent(h, run)?.attributes else {
            Issue.record("the run did not fail"); return
        }
        #expect(failed.failure.type == "Declined")
        #expect(attempts.load(ordering: .relaxed) == 1)
        await worker.stop()
        await running.value
    }

    @Test func stoppingAWorkerHandsItsStickyRunsBackAtOnce() async throws {
        let h = try EngineHarness()
        let worker = SpoolWorker(engine: h.engine, taskQueue: "q", identity: "w1", stickyScheduleToStartTimeout: .seconds(600))
        worker.registerWorkflow("order") { _ in [.startTimer(.init(timerID: "t", startToFireTimeout: .seconds(1000)))] }
        let running = Task { await worker.run() }
        let run = try await h.start()
        try await eventually("the first task completed") { try h.describe(run).stickyTaskQueue != nil }
        await worker.stop()
        await running.value
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "after the worker left")
        let task = try #require(try await h.pollWorkflowTask("q"))
        #expect(task.history.first?.eventID == 1)
    }
}

/// Holds activity functions until opened.
final class Gate: Sendable {
    private let state = LockedValue<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let resume = state.withLock { state -> Bool in
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if resume { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    @Test func aWorkerStopsPollingWhenTheEngineCloses() async throws {
        let h = try EngineHarness()
        let worker = SpoolWorker(engine: h.engine, taskQueue: "q", identity: "w1")
        try await h.engine.close()
        // Returns on its own: every poll fails with `closed`.
        await worker.run()
    }

    @Test func theHistoryCacheKeepsTheMostRecentlyUsedRuns() {
        var cache = HistoryCache(capacity: 10)
        for index in 0..<10 { cache.store("r\(index)", []) }
        _ = cache.history("r0")                          // r1 is now the least recently used
        cache.store("r10", [])
        cache.store("r11", [])                           // 12 > 10 + 1: back to 10
        #expect(cache.history("r0") != nil)
        #expect(cache.history("r1") == nil)
        #expect(cache.history("r2") == nil)
        #expect(cache.history("r3") != nil)
        #expect(cache.history("r11") != nil)
    }

    /// Issue 18, point 6: start options for memo, search attributes, cron and retry policy;
    /// workflow code reads the last completion result and upserts search attributes.
    @Test func aWorkerRunsACronChainThatUpsertsSearchAttributes() async throws {
        let h = try EngineHarness()
        try h.engine.addSearchAttributes(["Count": .int])
        let worker = SpoolWorker(engine: h.engine, taskQueue: "q", identity: "w1")
        worker.registerWorkflow("counter") { context in
            let last = context.lastCompletionResult?.first.flatMap { Int(String(decoding: $0.data, as: UTF8.self)) } ?? 0
            if last >= 2 { return [.cancelWorkflowExecution(.init())] }
            return [.upsertWorkflowSearchAttributes(.init(searchAttributes: ["Count": .json("\(last + 1)")])),
                    .completeWorkflowExecution(.init(result: .json("\(last + 1)")))]
        }
        let running = Task { await worker.run() }
        let policy = RetryPolicy(maximumAttempts: 2)
        let response = try await worker.startWorkflow(.init(
            workflowID: "c", workflowType: "counter", taskQueue: "q", retryPolicy: policy, cronSchedule: "@every 60s",
            memo: ["owner": .json("\"ann\"")], searchAttributes: ["Count": .json("0")]))
        #expect(response.eagerWorkflowTask == nil)                       // the first task waits for the schedule
        var run = WorkflowExecution(workflowID: "c", runID: response.runID)
        for expected in 1...2 {
            await h.advance(.seconds(60))
            let current = run
            try await eventually("run \(expected) completes") { try h.describe(current).executionInfo.status == .completed }
            let described = try h.describe(run)
            #expect(described.executionInfo.searchAttributes == ["Count": .json("\(expected)")])
            #expect(described.executionInfo.memo == ["owner": .json("\"ann\"")])
            #expect(described.retryPolicy == policy && described.cronSchedule == "@every 60s")
            run = WorkflowExecution(workflowID: "c", runID: try #require(described.newExecutionRunID))
            #expect(try await h.started(run).lastCompletionResult == .json("\(expected)"))
        }
        await h.advance(.seconds(60))
        let last = run
        try await eventually("the third run cancels") { try h.describe(last).executionInfo.status == .canceled }
        #expect(try h.describe(last).newExecutionRunID == nil)
        await worker.stop()
        await running.value
    }
}
