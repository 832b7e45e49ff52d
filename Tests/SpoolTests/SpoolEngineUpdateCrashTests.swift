import SpoolLogTesting
import SpoolLog
import SpoolMatching
import Testing
@testable import Spool

/// Updates and kills: an update not yet accepted lives in memory (Temporal's rule), so a kill
/// loses it and the caller retries with the same id; an accepted one is in history and completes
/// after reopen. Whatever the kill point, no update is answered twice with different results and
/// history holds one Accepted and one Completed per update.
@Suite struct SpoolEngineUpdateCrashTests {
    static func request(_ id: String) -> UpdateRequest {
        UpdateRequest(meta: UpdateMeta(updateID: id, identity: "client"), input: UpdateInput(name: "approve", args: .json("1")))
    }

    /// The worker: accepts every update of `task` (sending the request back, as SDKs do) and
    /// answers it with "done-<id>" — a result that depends only on the update, so two answers
    /// can be compared.
    static func answer(_ engine: SpoolEngine, _ task: WorkflowTask, accepted: [String] = []) async throws {
        var messages: [ProtocolMessage] = []
        for message in task.messages {
            messages.append(ProtocolMessage(id: message.protocolInstanceID + "/accept", protocolInstanceID: message.protocolInstanceID,
                                            body: .acceptance(.init(acceptedRequestMessageID: message.id,
                                                                    acceptedRequestSequencingEventID: message.eventID,
                                                                    acceptedRequest: Self.request(message.protocolInstanceID)))))
        }
        for id in task.messages.map(\.protocolInstanceID) + accepted {
            messages.append(ProtocolMessage(id: id + "/complete", protocolInstanceID: id,
                                            body: .response(.init(meta: UpdateMeta(updateID: id), outcome: .success(.json("\"done-\(id)\""))))))
        }
        try await engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [], identity: "worker", messages: messages)
    }

    static func updateCount(_ history: [HistoryEvent], _ type: EventType) -> Int { history.filter { $0.eventType == type }.count }

    @Test(arguments: [-1, 0, 1, 2, 3])
    func anUpdateKilledAtAnyPointIsAnsweredOnce(killAfter: Int) async throws {
        let h = try EngineHarness(durability: .sync)
        let run = try await h.start()
        _ = try await h.completeWorkflowTask([])
        var killed = false
        func step(_ index: Int) async throws {
            if index == killAfter {
                try await h.crashAndReopen()
                killed = true
            }
        }
        func update(_ stage: UpdateWorkflowExecutionLifecycleStage) async throws -> UpdateWorkflowExecutionResponse {
            try await h.engine.updateWorkflowExecution(workflowID: "wf", updateID: "u1", name: "approve", input: .json("1"),
                                                       identity: "client", waitFor: stage, timeout: .zero)
        }
        var answers: [UpdateOutcome] = []
        _ = try await update(.admitted)
        try await step(0)
        // Lost with the process: the caller retries (the task the kill left scheduled carries it).
        if killed { _ = try await update(.admitted) }
        let task = try #require(try await h.pollWorkflowTask())
        #expect(task.messages.map(\.protocolInstanceID) == ["u1"])
        try await step(1)
        if killAfter == 1 {
            // The caller retries while the worker still holds the task it got before the kill.
            #expect(try await update(.admitted).stage == .admitted)
        }
        // The worker answers with the token it holds (the task is still the run's after reopen).
        try await Self.answer(h.engine, task)
        try await step(2)
        let first = try await update(.completed)
        #expect(first.stage == .completed)
        answers.append(try #require(first.outcome))
        try await step(3)
        let second = try await h.engine.pollWorkflowExecutionUpdate(updateRef: UpdateRef(workflowExecution: run, updateID: "u1"))
        answers.append(try #require(second.outcome))

        #expect(answers.allSatisfy { $0 == .success(.json("\"done-u1\"")) })
        let history = try await h.history(run)
        #expect(Self.updateCount(history, .workflowExecutionUpdateAccepted) == 1)
        #expect(Self.updateCount(history, .workflowExecutionUpdateCompleted) == 1)
        #expect(history.map(\.eventType).suffix(5) == [.workflowTaskScheduled, .workflowTaskStarted, .workflowTaskCompleted,
                                                     .workflowExecutionUpdateAccepted, .workflowExecutionUpdateCompleted])
        // Nothing is left to do for the run.
        #expect(try h.describe(run).pendingWorkflowTask == nil)
    }

    /// An update accepted before the kill and answered after it: its outcome comes once, from
    /// history; its waiting caller (lost with the process) asks again with the same id.
    @Test(arguments: [false, true])
    func anAcceptedUpdateCompletesAfterReopen(cleanClose: Bool) async throws {
        let h = try EngineHarness(durability: .sync)
        let run = try await h.start()
        _ = try await h.completeWorkflowTask([])
        _ = try await h.engine.updateWorkflowExecution(workflowID: "wf", updateID: "u1", name: "approve", waitFor: .admitted)
        let task = try #require(try await h.pollWorkflowTask())
        let request = try #require(task.messages.first)
        try await h.engine.respondWorkflowTaskCompleted(
            taskToken: task.taskToken, commands: [], identity: "worker",
            messages: [ProtocolMessage(id: "a", protocolInstanceID: "u1",
                                       body: .acceptance(.init(acceptedRequestMessageID: request.id,
                                                               acceptedRequestSequencingEventID: request.eventID)))])
        if cleanClose { try await h.closeAndReopen() } else { try await h.crashAndReopen() }

        let retry = try await h.engine.updateWorkflowExecution(workflowID: "wf", updateID: "u1", name: "approve", waitFor: .accepted)
        #expect(retry.stage == .accepted && retry.outcome == nil)
        let waiting = Task { [engine = h.engine] in
            try await engine.updateWorkflowExecution(workflowID: "wf", updateID: "u1", name: "approve", waitFor: .completed)
        }
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "go")
        let next = try #require(try await h.pollWorkflowTask())
        #expect(next.messages.isEmpty)
        try await Self.answer(h.engine, next, accepted: ["u1"])
        #expect(try await waiting.value.outcome == .success(.json("\"done-u1\"")))
        try await h.crashAndReopen()
        let polled = try await h.engine.pollWorkflowExecutionUpdate(updateRef: UpdateRef(workflowExecution: run, updateID: "u1"))
        #expect(polled.outcome == .success(.json("\"done-u1\"")))
        let history = try await h.history(run)
        #expect(Self.updateCount(history, .workflowExecutionUpdateAccepted) == 1)
        #expect(Self.updateCount(history, .workflowExecutionUpdateCompleted) == 1)
        // A second response for the completed update fails the task and changes nothing of the update.
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "again")
        let third = try #require(try await h.pollWorkflowTask())
        try await Self.answer(h.engine, third, accepted: ["u1"])
        let after = try await h.history(run)
        #expect(Self.updateCount(after, .workflowExecutionUpdateCompleted) == 1)
        #expect(after.last?.eventType == .workflowTaskFailed)
    }

    /// Power cut at a random system call while updates are admitted, accepted and answered:
    /// every outcome a caller saw is the one in history after every reopen.
    @Test func updateOutcomesSurviveAPowerCut() async throws {
        let h = try EngineHarness()
        await h.engine.abandon()
        var random = SplitMix64(seed: 19)
        var seen: [String: UpdateOutcome] = [:]
        var next = 0
        for round in 0..<12 {
            let power = PowerLossSyscalls()
            var configuration = SpoolEngineConfiguration()
            configuration.clock = .manual(h.clock)
            configuration.firesTimersAutomatically = false
            configuration.checkpointEveryRecords = 5
            configuration.log = LogConfiguration(durability: .sync)
            configuration.log.syscalls = power
            let engine = try SpoolEngine.open(directory: h.directory + "/data", configuration: configuration)
            for (id, outcome) in seen {
                let polled = try await engine.pollWorkflowExecutionUpdate(
                    updateRef: UpdateRef(workflowExecution: WorkflowExecution(workflowID: "wf"), updateID: id), timeout: .zero)
                #expect(polled.outcome == outcome, "round \(round): update \(id) answered differently after the cut")
            }
            // A workflow task started before the cut times out and goes out again.
            h.clock.advance(by: .seconds(60))
            await engine.fireDueTimers()
            power.cutPower(atStep: power.stepCount + 1 + Int(random.next() % 60))
            do {
                if round == 0 {
                    _ = try await engine.startWorkflowExecution(.init(workflowID: "wf", workflowType: "order", taskQueue: "q"))
                }
                for _ in 0..<6 {
                    let id = "u\(next)"
                    next += 1
                    _ = try await engine.updateWorkflowExecution(workflowID: "wf", updateID: id, name: "approve", waitFor: .admitted)
                    while let task = try await engine.pollWorkflowTaskQueue(taskQueue: "q", identity: "w", timeout: .zero) {
                        try await Self.answer(engine, task)
                    }
                    let response = try await engine.updateWorkflowExecution(workflowID: "wf", updateID: id, name: "approve",
                                                                            waitFor: .completed, timeout: .zero)
                    if let outcome = response.outcome { seen[id] = outcome }
                }
            } catch {
                // The power went: calls fail from here on.
            }
            await engine.abandon()
            power.simulatePowerLoss()
        }
        #expect(!seen.isEmpty)
    }
}
