import SpoolLog
import SpoolLogTesting
import SpoolMatching
import Testing
@testable import Spool

/// Child workflows and external signals with the engine killed at many points and with the power
/// cut (issue 19, "the engine's crash tests cover children, external signals"): after every
/// reopen each parent and child goes on as it would have without the crash — every parent sees
/// exactly one outcome for its child and one outcome for its signal, every signal target is
/// signaled exactly once, and no history is rewritten.
@Suite struct SpoolEngineChildWorkflowCrashTests {
    static let parents = 8

    /// The workload: parent `p<i>` (queue q) starts child `c<i>` (queue c) and signals `s<i>`
    /// (queue s), then completes once it has both outcomes; a child completes (even i) or fails
    /// (odd i); a signal target completes once signaled.
    static func commands(for task: WorkflowTask) -> [Command] {
        let id = task.workflowExecution.workflowID
        let types = task.history.map(\.eventType)
        let index = String(id.dropFirst())
        switch id.first {
        case "p":
            if !types.contains(.startChildWorkflowExecutionInitiated) {
                return [.startChildWorkflowExecution(.init(workflowID: "c\(index)", workflowType: "child", taskQueue: "c")),
                        .signalExternalWorkflowExecution(.init(execution: WorkflowExecution(workflowID: "s\(index)"), signalName: "go"))]
            }
            let childDone = types.contains { [.childWorkflowExecutionCompleted, .childWorkflowExecutionFailed].contains($0) }
            let signalDone = types.contains(.externalWorkflowExecutionSignaled)
            return childDone && signalDone ? [.completeWorkflowExecution(.init())] : []
        case "c":
            return (Int(index) ?? 0) % 2 == 0 ? [.completeWorkflowExecution(.init(result: .json(index)))]
                : [.failWorkflowExecution(.init(failure: .application("child \(index) failed")))]
        default:
            return types.contains(.workflowExecutionSignaled) ? [.completeWorkflowExecution(.init())] : []
        }
    }

    /// Polls each queue once and completes what it got; false when there was nothing to do.
    static func step(_ engine: SpoolEngine) async throws -> Bool {
        var worked = false
        for queue in ["q", "c", "s"] {
            if let task = try await engine.pollWorkflowTaskQueue(taskQueue: queue, identity: "w", timeout: .zero) {
                try await engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: commands(for: task))
                worked = true
            }
        }
        return worked
    }

    static func startWorkload(_ engine: SpoolEngine) async throws {
        for index in 0..<parents {
            try await engine.startWorkflowExecution(.init(workflowID: "s\(index)", workflowType: "target", taskQueue: "s"))
            try await engine.startWorkflowExecution(.init(workflowID: "p\(index)", workflowType: "parent", taskQueue: "q"))
        }
    }

    /// Every parent closed with one outcome for its child and its signal; every target signaled once.
    static func expectSettled(_ engine: SpoolEngine) async throws {
        #expect(engine.listWorkflowExecutions(status: .running).isEmpty)
        for index in 0..<parents {
            let parent = try await engine.getWorkflowExecutionHistory(execution: WorkflowExecution(workflowID: "p\(index)")).history
            let types = parent.map(\.eventType)
            #expect(types.last == .workflowExecutionCompleted, "p\(index)")
            #expect(types.filter { $0 == .startChildWorkflowExecutionInitiated }.count == 1, "p\(index)")
            #expect(types.filter { $0 == .childWorkflowExecutionStarted }.count == 1, "p\(index)")
            let outcome: EventType = index % 2 == 0 ? .childWorkflowExecutionCompleted : .childWorkflowExecutionFailed
            #expect(types.filter { $0 == outcome }.count == 1, "p\(index)")
            #expect(types.filter { $0 == .externalWorkflowExecutionSignaled }.count == 1, "p\(index)")
            #expect(!types.contains(.signalExternalWorkflowExecutionFailed), "p\(index)")
            let target = try await engine.getWorkflowExecutionHistory(execution: WorkflowExecution(workflowID: "s\(index)")).history
            #expect(target.filter { $0.eventType == .workflowExecutionSignaled }.count == 1, "s\(index)")
            let child = try await engine.getWorkflowExecutionHistory(execution: WorkflowExecution(workflowID: "c\(index)")).history
            guard case .workflowExecutionStarted(let started)? = child.first?.attributes else { Issue.record("c\(index)"); continue }
            #expect(started.parent?.execution.workflowID == "p\(index)")
        }
        #expect(engine.listWorkflowExecutions().count == 3 * parents)
    }

    /// Runs `step` (one poll of each queue; false when nothing was there) until no run is open,
    /// at most 400 times, killing the engine at random points of a seeded sequence: after the next
    /// append is durable, or at once. Checks after every step that no history was rewritten.
    /// Returns the number of crashes.
    static func runKillingAtRandom(_ h: EngineHarness, seed: UInt64, step: () async throws -> Bool) async throws -> Int {
        var random = SplitMix64(seed: seed)
        var seen: [String: [HistoryEvent]] = [:]
        var crashes = 0
        for _ in 0..<400 {
            if h.engine.listWorkflowExecutions(status: .running).isEmpty { break }
            switch random.next() % 4 {
            case 0: h.crashAfterNextAppend()
            case 1: try await h.crashAndReopen(); crashes += 1
            case 2: await h.engine.waitForRelatedRunWork()
            default: break
            }
            do {
                if try await !step() {
                    await h.engine.waitForRelatedRunWork()
                    await h.advance(.seconds(20))       // tasks the crashes left started time out
                }
            } catch let error as SpoolError where error.code == .storage || error.code == .staleTaskToken || error.code == .closed {
                if error.code != .staleTaskToken { try await h.crashAndReopen(); crashes += 1 }
            }
            for info in h.engine.listWorkflowExecutions() {
                let history = try await h.history(info.execution)
                let previous = seen[info.execution.runID] ?? []
                #expect(Array(history.prefix(previous.count)) == previous, "history of \(info.execution) was rewritten")
                seen[info.execution.runID] = history
            }
        }
        return crashes
    }

    @Test func everyParentSeesOneOutcomePerChildAndSignalWhateverTheKillPoint() async throws {
        let h = try EngineHarness(durability: .sync, injectingFaults: true)
        try await Self.startWorkload(h.engine)
        let crashes = try await Self.runKillingAtRandom(h, seed: 19) { try await Self.step(h.engine) }
        #expect(crashes > 5)
        await h.engine.waitForRelatedRunWork()
        try await Self.expectSettled(h.engine)
    }

    /// TERMINATE_IF_RUNNING children, killed at many points: parent `p<i>` starts child `t<i>`
    /// whose id a client's run holds; after every reopen the deferred start goes on, so each old
    /// run is terminated once (with Temporal's reason), each parent records one start and one
    /// outcome of its child, and no history is rewritten.
    @Test func aChildThatTerminatesTheRunningIDStartsOnceWhateverTheKillPoint() async throws {
        let h = try EngineHarness(durability: .sync, injectingFaults: true)
        for index in 0..<Self.parents {
            try await h.engine.startWorkflowExecution(.init(workflowID: "t\(index)", workflowType: "old", taskQueue: "o"))
            try await h.engine.startWorkflowExecution(.init(workflowID: "p\(index)", workflowType: "parent", taskQueue: "q"))
        }
        func step() async throws -> Bool {
            var worked = false
            for queue in ["q", "c"] {
                guard let task = try await h.engine.pollWorkflowTaskQueue(taskQueue: queue, identity: "w", timeout: .zero) else { continue }
                let id = task.workflowExecution.workflowID
                let types = task.history.map(\.eventType)
                let commands: [Command]
                if queue == "c" {
                    commands = [.completeWorkflowExecution(.init(result: .json("1")))]
                } else if !types.contains(.startChildWorkflowExecutionInitiated) {
                    commands = [.startChildWorkflowExecution(.init(workflowID: "t\(id.dropFirst())", workflowType: "child", taskQueue: "c",
                                                                   workflowIDReusePolicy: .terminateIfRunning))]
                } else {
                    commands = types.contains(.childWorkflowExecutionCompleted) ? [.completeWorkflowExecution(.init())] : []
                }
                try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: commands)
                worked = true
            }
            return worked
        }
        let crashes = try await Self.runKillingAtRandom(h, seed: 1923, step: step)
        #expect(crashes > 5)
        await h.engine.waitForRelatedRunWork()
        #expect(h.engine.listWorkflowExecutions(status: .running).isEmpty)
        for index in 0..<Self.parents {
            let parent = try await h.engine.getWorkflowExecutionHistory(execution: WorkflowExecution(workflowID: "p\(index)")).history
            let types = parent.map(\.eventType)
            #expect(types.last == .workflowExecutionCompleted, "p\(index)")
            #expect(types.filter { $0 == .childWorkflowExecutionStarted }.count == 1, "p\(index)")
            #expect(types.filter { $0 == .childWorkflowExecutionCompleted }.count == 1, "p\(index)")
            #expect(!types.contains(.startChildWorkflowExecutionFailed), "p\(index)")
            let runs = h.engine.listWorkflowExecutions().filter { $0.execution.workflowID == "t\(index)" }
            #expect(runs.count == 2, "t\(index)")
            for run in runs {
                let history = try await h.history(run.execution)
                guard case .workflowExecutionStarted(let started)? = history.first?.attributes else { Issue.record("t\(index)"); continue }
                if started.workflowType == "old" {
                    #expect(history.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowExecutionTerminated])
                    guard case .workflowExecutionTerminated(let terminated)? = history.last?.attributes else { continue }
                    #expect(terminated.reason == "TerminateIfRunning WorkflowIdReusePolicy Policy" && terminated.identity == "history-service")
                } else {
                    #expect(started.parent?.execution.workflowID == "p\(index)")
                    #expect(history.last?.eventType == .workflowExecutionCompleted)
                }
            }
        }
    }

    /// The crash the deferred start exists for: the running run's termination is durable, the
    /// child's start is not. The reopened engine starts the child and records it in the parent;
    /// the old run stays terminated once.
    @Test func aCrashBetweenTheTerminationAndTheChildsStartIsFinishedAtReopen() async throws {
        let h = try EngineHarness(durability: .sync, injectingFaults: true)
        let running = try await h.start("busy", queue: "other")
        let parent = try await h.start("order")
        let task = try #require(try await h.pollWorkflowTask())
        // The first fdatasync of the history log from here is the workflow task's completion; the
        // second, the termination's, reaches the disk and then fails: the engine dies there.
        h.faults?.failAfterForwarding(.fdatasync, path: .suffix(".log"), occurrence: .only(2))
        try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [.startChildWorkflowExecution(.init(
            workflowID: "busy", workflowType: "shipment", taskQueue: "shipping", workflowIDReusePolicy: .terminateIfRunning))])
        await h.engine.waitForRelatedRunWork()
        #expect(try await h.eventTypes(parent).last == .startChildWorkflowExecutionInitiated)

        try await h.crashAndReopen()
        await h.engine.waitForRelatedRunWork()
        #expect(try await h.eventTypes(running) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowExecutionTerminated])
        let child = try #require(h.engine.listWorkflowExecutions(status: .running).first { $0.execution.workflowID == "busy" }).execution
        let events = try await h.history(parent)
        #expect(events.map(\.eventType).suffix(3) == [.startChildWorkflowExecutionInitiated, .childWorkflowExecutionStarted,
                                                      .workflowTaskScheduled])
        guard case .childWorkflowExecutionStarted(let started)? = events.dropLast().last?.attributes else { return }
        #expect(started.workflowExecution == child && started.initiatedEventID == 5)
    }

    func open(_ directory: String, clock: ManualMatchingClock, power: PowerLossSyscalls) throws -> SpoolEngine {
        var configuration = SpoolEngineConfiguration()
        configuration.clock = .manual(clock)
        configuration.firesTimersAutomatically = false
        configuration.checkpointEveryRecords = 7
        configuration.log = LogConfiguration(durability: .sync)
        configuration.log.syscalls = power
        return try SpoolEngine.open(directory: directory + "/data", configuration: configuration)
    }

    @Test func everyParentSeesOneOutcomePerChildAndSignalAfterPowerCuts() async throws {
        let h = try EngineHarness()
        await h.engine.abandon()
        var random = SplitMix64(seed: 1919)
        var acknowledged: [String: [HistoryEvent]] = [:]
        var workloadStarted = false
        for round in 0..<12 {
            let power = PowerLossSyscalls()
            let engine = try open(h.directory, clock: h.clock, power: power)
            for (runID, history) in acknowledged {
                guard let info = engine.listWorkflowExecutions().first(where: { $0.execution.runID == runID }) else {
                    Issue.record("round \(round): run \(runID) lost"); continue
                }
                let recovered = try await engine.getWorkflowExecutionHistory(execution: info.execution).history
                #expect(Array(recovered.prefix(history.count)) == history, "round \(round): \(info.execution) lost acknowledged events")
            }
            power.cutPower(atStep: power.stepCount + 1 + Int(random.next() % 150))
            do {
                if !workloadStarted {
                    try await Self.startWorkload(engine)
                    workloadStarted = true
                }
                for _ in 0..<20 {
                    if try await !Self.step(engine) {
                        await engine.waitForRelatedRunWork()
                        h.clock.advance(by: .seconds(20))
                        await engine.fireDueTimers()
                    }
                    for info in engine.listWorkflowExecutions() {
                        acknowledged[info.execution.runID] = try await engine.getWorkflowExecutionHistory(execution: info.execution).history
                    }
                }
            } catch {
                // The power went: calls fail from here on.
            }
            await engine.abandon()
            await engine.waitForRelatedRunWork()
            power.simulatePowerLoss()
        }
        let engine = try open(h.directory, clock: h.clock, power: PowerLossSyscalls())
        if !workloadStarted || engine.listWorkflowExecutions().count < 2 * SpoolEngineChildWorkflowCrashTests.parents {
            // A cut before the starts were durable: start what is missing.
            for index in 0..<Self.parents {
                for (id, type, queue) in [("s\(index)", "target", "s"), ("p\(index)", "parent", "q")] {
                    _ = try? await engine.startWorkflowExecution(.init(workflowID: id, workflowType: type, taskQueue: queue,
                                                                      workflowIDConflictPolicy: .useExisting))
                }
            }
        }
        for _ in 0..<300 {
            if engine.listWorkflowExecutions(status: .running).isEmpty { break }
            if try await !Self.step(engine) {
                await engine.waitForRelatedRunWork()
                h.clock.advance(by: .seconds(20))
                await engine.fireDueTimers()
            }
        }
        await engine.waitForRelatedRunWork()
        try await Self.expectSettled(engine)
        try await engine.close()
    }
}
