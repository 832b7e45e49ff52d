import SpoolMatching
import Testing
@testable import Spool

/// Issue 21, point 1: Temporal's `Priority` on workflows and activities — recorded in history
/// (WorkflowExecutionStarted.priority, ActivityTaskScheduled.priority), inherited field by field
/// (`priorities.Merge` in Temporal's history service: the command's fields over the workflow's),
/// and honoured by dispatch from memory and after a reopen.
@Suite struct SpoolEnginePriorityTests {
    func start(_ h: EngineHarness, _ id: String, priority: Priority, queue: String = "q") async throws -> WorkflowExecution {
        var request = StartWorkflowExecutionRequest(workflowID: id, workflowType: "order", taskQueue: queue)
        request.priority = priority
        let response = try await h.engine.startWorkflowExecution(request)
        return WorkflowExecution(workflowID: id, runID: response.runID)
    }

    func activity(_ id: String, _ priority: Priority = Priority(), queue: String = "") -> Command {
        var attributes = ScheduleActivityTaskCommandAttributes(activityID: id, activityType: "charge", taskQueue: queue,
                                                               startToCloseTimeout: .seconds(30))
        attributes.priority = priority
        return .scheduleActivityTask(attributes)
    }

    func scheduledPriorities(_ h: EngineHarness, _ run: WorkflowExecution) async throws -> [String: Priority] {
        var result: [String: Priority] = [:]
        for event in try await h.history(run) {
            if case .activityTaskScheduled(let a) = event.attributes { result[a.activityID] = a.priority }
        }
        return result
    }

    func startedPriority(_ h: EngineHarness, _ run: WorkflowExecution) async throws -> Priority? {
        guard case .workflowExecutionStarted(let a) = try await h.history(run).first?.attributes else { return nil }
        return a.priority
    }

    /// Drains the activity queue `queue`, returning the activity ids in dispatch order.
    func drainActivities(_ h: EngineHarness, _ queue: String = "q", limit: Int = .max) async throws -> [String] {
        var ids: [String] = []
        while ids.count < limit, let task = try await h.pollActivityTask(queue) { ids.append(task.activityID) }
        return ids
    }

    @Test func theStartRecordsThePriorityAndActivitiesInheritItFieldByField() async throws {
        let h = try EngineHarness()
        let workflow = Priority(priorityKey: 2, fairnessKey: "tenant-a", fairnessWeight: 2.5)
        let run = try await start(h, "wf", priority: workflow)
        #expect(try await startedPriority(h, run) == workflow)
        _ = try await h.completeWorkflowTask([
            activity("inherits"),
            activity("own-key", Priority(fairnessKey: "tenant-b")),
            activity("own-everything", Priority(priorityKey: 5, fairnessKey: "tenant-c", fairnessWeight: 0.5)),
        ])
        let scheduled = try await scheduledPriorities(h, run)
        #expect(scheduled["inherits"] == workflow)
        #expect(scheduled["own-key"] == Priority(priorityKey: 2, fairnessKey: "tenant-b", fairnessWeight: 2.5))
        #expect(scheduled["own-everything"] == Priority(priorityKey: 5, fairnessKey: "tenant-c", fairnessWeight: 0.5))

        // A workflow without a priority: activities keep exactly what they set (unset stays unset).
        let plain = try await start(h, "plain", priority: Priority())
        #expect(try await startedPriority(h, plain) == Priority())
        _ = try await h.completeWorkflowTask([activity("p", Priority(priorityKey: 4))])
        #expect(try await scheduledPriorities(h, plain)["p"] == Priority(priorityKey: 4))
    }

    @Test func badPrioritiesAreRefusedNamingTheField() async throws {
        let h = try EngineHarness()
        let cases: [(Priority, String)] = [
            (Priority(priorityKey: 6), "priority.priorityKey"),
            (Priority(priorityKey: -1), "priority.priorityKey"),
            (Priority(fairnessKey: String(repeating: "k", count: 65)), "priority.fairnessKey"),
            (Priority(fairnessWeight: 0.0001), "priority.fairnessWeight"),
            (Priority(fairnessWeight: 1001), "priority.fairnessWeight"),
            (Priority(fairnessWeight: -1), "priority.fairnessWeight"),
            (Priority(fairnessWeight: .nan), "priority.fairnessWeight"),
        ]
        for (index, (priority, field)) in cases.enumerated() {
            do {
                _ = try await start(h, "bad-\(index)", priority: priority)
                Issue.record("\(priority) was accepted")
            } catch {
                let refusal = error as? SpoolError
                #expect(refusal?.code == .invalidArgument)
                #expect(refusal?.message.contains(field) == true, "\(error)")
            }
        }
        #expect(h.engine.listWorkflowExecutions().isEmpty)
        // The limits themselves are accepted.
        _ = try await start(h, "edges", priority: Priority(priorityKey: 5, fairnessKey: String(repeating: "k", count: 64), fairnessWeight: 0.001))
        _ = try await start(h, "edges-2", priority: Priority(priorityKey: 1, fairnessWeight: 1000))

        // In a command, a bad priority fails the workflow task (Temporal: BadScheduleActivityAttributes).
        let run = try await start(h, "wf", priority: Priority(), queue: "commands")
        let task = try #require(try await h.pollWorkflowTask("commands"))
        try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [activity("a", Priority(priorityKey: 9))],
                                                        identity: "worker")
        let failed = try await h.history(run).last { $0.eventType == .workflowTaskFailed }
        guard case .workflowTaskFailed(let attributes) = failed?.attributes else { Issue.record("no WorkflowTaskFailed"); return }
        #expect(attributes.cause == .badScheduleActivityAttributes)
        #expect(attributes.failure?.message.contains("priority.priorityKey") == true)
        #expect(try await scheduledPriorities(h, run).isEmpty)
    }

    @Test func activitiesAreDispatchedLowestPriorityKeyFirstFromMemoryAndAfterReopen() async throws {
        for reopen in ["none", "clean", "crash"] {
            let h = try EngineHarness()
            _ = try await start(h, "wf", priority: Priority())
            // Queued first: five of priority 5; then five of priority 1; then five inheriting the default 3.
            var commands = (0..<5).map { activity("low-\($0)", Priority(priorityKey: 5)) }
            commands += (0..<5).map { activity("high-\($0)", Priority(priorityKey: 1)) }
            commands += (0..<5).map { activity("default-\($0)") }
            _ = try await h.completeWorkflowTask(commands)
            if reopen == "clean" { try await h.closeAndReopen() }
            if reopen == "crash" { try await h.crashAndReopen() }
            let order = try await drainActivities(h)
            #expect(order.count == 15, "\(reopen)")
            #expect(order.prefix(5).allSatisfy { $0.hasPrefix("high-") }, "\(reopen): \(order)")
            #expect(order.dropFirst(5).prefix(5).allSatisfy { $0.hasPrefix("default-") }, "\(reopen): \(order)")
            #expect(order.suffix(5).allSatisfy { $0.hasPrefix("low-") }, "\(reopen): \(order)")
        }
    }

    @Test func workflowTasksAreDispatchedByTheirRunsPriority() async throws {
        for reopen in [false, true] {
            let h = try EngineHarness()
            _ = try await start(h, "five", priority: Priority(priorityKey: 5))
            _ = try await start(h, "unset", priority: Priority())
            _ = try await start(h, "one", priority: Priority(priorityKey: 1))
            _ = try await start(h, "four", priority: Priority(priorityKey: 4))
            if reopen { try await h.crashAndReopen() }
            var order: [String] = []
            while let task = try await h.pollWorkflowTask() { order.append(task.workflowExecution.workflowID) }
            #expect(order == ["one", "unset", "four", "five"], "reopen: \(reopen)")
        }
    }

    /// Stride scheduling over fairness keys: with deep backlogs of two keys of weights 1 and 3,
    /// one poller gets them 1 : 3; a key that shows up later is served at once, not after the
    /// older backlog.
    @Test func fairnessKeysShareDispatchByWeight() async throws {
        let h = try EngineHarness()
        _ = try await start(h, "wf", priority: Priority())
        var commands = (0..<300).map { activity("light-\($0)", Priority(fairnessKey: "light", fairnessWeight: 1)) }
        commands += (0..<300).map { activity("heavy-\($0)", Priority(fairnessKey: "heavy", fairnessWeight: 3)) }
        _ = try await h.completeWorkflowTask(commands)
        let first = try await drainActivities(h, limit: 400)
        let light = first.filter { $0.hasPrefix("light-") }.count
        let heavy = first.filter { $0.hasPrefix("heavy-") }.count
        #expect(light + heavy == 400)
        #expect(abs(light - 100) <= 4, "light \(light), heavy \(heavy)")
        #expect(abs(heavy - 300) <= 4, "light \(light), heavy \(heavy)")

        // 200 'light' tasks are left; a new key arrives behind them and is served right away.
        _ = try await start(h, "late", priority: Priority(fairnessKey: "late"))
        _ = try await h.completeWorkflowTask((0..<10).map { activity("late-\($0)") })
        let next = try await drainActivities(h, limit: 20)
        #expect(next.filter { $0.hasPrefix("late-") }.count >= 9, "\(next)")
    }

    @Test func continueAsNewKeepsThePriorityWhereTheCommandSetsNone() async throws {
        let h = try EngineHarness()
        let run = try await start(h, "wf", priority: Priority(priorityKey: 1, fairnessKey: "tenant"))
        var command = ContinueAsNewWorkflowExecutionCommandAttributes()
        command.priority = Priority(fairnessWeight: 5)
        _ = try await h.completeWorkflowTask([.continueAsNewWorkflowExecution(command)])
        let next = try #require(h.engine.listWorkflowExecutions().first { $0.execution.runID != run.runID }?.execution)
        #expect(try await startedPriority(h, next) == Priority(priorityKey: 1, fairnessKey: "tenant", fairnessWeight: 5))
        // The new run's own workflow task goes out with priority 1, ahead of a default one queued before it.
        _ = try await start(h, "other", priority: Priority())
        #expect(try await h.pollWorkflowTask()?.workflowExecution.workflowID == "wf")
    }

    @Test func signalWithStartRecordsThePriority() async throws {
        let h = try EngineHarness()
        var request = StartWorkflowExecutionRequest(workflowID: "wf", workflowType: "order", taskQueue: "q",
                                                    workflowIDConflictPolicy: .useExisting)
        request.priority = Priority(priorityKey: 2, fairnessKey: "t")
        let response = try await h.engine.signalWithStartWorkflowExecution(request, signalName: "go", signalInput: nil)
        #expect(try await startedPriority(h, WorkflowExecution(workflowID: "wf", runID: response.runID)) == request.priority)
        request.priority = Priority(priorityKey: 7)
        await #expect(throws: SpoolError.self) {
            _ = try await h.engine.signalWithStartWorkflowExecution(request, signalName: "go", signalInput: nil)
        }
    }

    /// The new fields survive the log (crash), the checkpoint (clean close) and compaction of closed runs.
    @Test func prioritiesRoundTripThroughReopenAndCompaction() async throws {
        let h = try EngineHarness()
        let open = try await start(h, "open", priority: Priority(priorityKey: 2, fairnessKey: "a", fairnessWeight: 0.25))
        _ = try await h.completeWorkflowTask([activity("x", Priority(priorityKey: 4))])
        let closed = try await start(h, "closed", priority: Priority(priorityKey: 5, fairnessKey: "b", fairnessWeight: 7))
        _ = try await h.completeWorkflowTask([.completeWorkflowExecution(.init())])
        let before = try await h.snapshot()
        try await h.crashAndReopen()
        expectSameState(before, try await h.snapshot())
        try await h.closeAndReopen()
        expectSameState(before, try await h.snapshot())
        try await h.engine.close()
        var configuration = SpoolEngineConfiguration()
        configuration.clock = .manual(h.clock)
        configuration.firesTimersAutomatically = false
        _ = try SpoolEngine.compactHistory(directory: h.directory + "/data", configuration: configuration)
        h.engine = try EngineHarness.open(h.directory, clock: h.clock, durability: h.durability)
        expectSameState(before, try await h.snapshot())
        #expect(try await startedPriority(h, closed) == Priority(priorityKey: 5, fairnessKey: "b", fairnessWeight: 7))
        #expect(try await scheduledPriorities(h, open)["x"] == Priority(priorityKey: 4, fairnessKey: "a", fairnessWeight: 0.25))
    }
}
