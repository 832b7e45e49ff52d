import Testing
@testable import Spool

/// Workflow updates through the engine's API, with the histories Temporal 1.32 writes for the
/// same calls (`service/history/workflow/update`, docs/architecture/workflow-update.md): an
/// update on an idle run goes out on a speculative workflow task; an accepted update writes the
/// task's Scheduled/Started/Completed, then WorkflowExecutionUpdateAccepted (request recorded,
/// `accepted_request_message_id` = "<id>/request") and WorkflowExecutionUpdateCompleted
/// (`accepted_event_id`, outcome); a rejected one writes nothing.
@Suite struct SpoolEngineUpdateTests {
    static let request = UpdateRequest(meta: UpdateMeta(updateID: "u1", identity: "client"),
                                       input: UpdateInput(name: "approve", args: .json("\"yes\"")))

    /// A run whose first workflow task completed with no command: idle, events 1–4.
    func idleRun(_ h: EngineHarness, _ workflowID: String = "wf") async throws -> WorkflowExecution {
        let run = try await h.start(workflowID)
        _ = try await h.completeWorkflowTask([])
        return run
    }

    /// Admits update u1 (waiting only for the admitted stage).
    @discardableResult
    func admit(_ h: EngineHarness, _ run: WorkflowExecution, id: String = "u1") async throws -> UpdateWorkflowExecutionResponse {
        try await h.engine.updateWorkflowExecution(workflowID: run.workflowID, updateID: id, name: "approve",
                                                   input: .json("\"yes\""), identity: "client", waitFor: .admitted)
    }

    func accept(_ message: ProtocolMessage) -> ProtocolMessage {
        ProtocolMessage(id: message.protocolInstanceID + "/accept", protocolInstanceID: message.protocolInstanceID,
                        body: .acceptance(.init(acceptedRequestMessageID: message.id, acceptedRequestSequencingEventID: message.eventID,
                                                acceptedRequest: Self.request)))
    }

    func respond(_ updateID: String, _ outcome: UpdateOutcome) -> ProtocolMessage {
        ProtocolMessage(id: updateID + "/complete", protocolInstanceID: updateID,
                        body: .response(.init(meta: UpdateMeta(updateID: updateID, identity: "client"), outcome: outcome)))
    }

    func reject(_ message: ProtocolMessage, _ reason: String) -> ProtocolMessage {
        ProtocolMessage(id: message.protocolInstanceID + "/reject", protocolInstanceID: message.protocolInstanceID,
                        body: .rejection(.init(rejectedRequestMessageID: message.id, rejectedRequestSequencingEventID: message.eventID,
                                               rejectedRequest: Self.request, failure: .application(reason, type: "Invalid"))))
    }

    /// Completes `task` accepting and answering each of its update requests with `result`.
    func acceptAndComplete(_ h: EngineHarness, _ task: WorkflowTask, result: Payloads? = .json("\"done\""),
                           commands: [Command] = []) async throws {
        var messages: [ProtocolMessage] = []
        var ordering: [Command] = []
        for request in task.messages {
            let accepted = accept(request)
            let response = respond(request.protocolInstanceID, .success(result))
            messages += [accepted, response]
            ordering += [.protocolMessage(.init(messageID: accepted.id)), .protocolMessage(.init(messageID: response.id))]
        }
        try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: ordering + commands, identity: "worker",
                                                        messages: messages)
    }

    @Test func anAcceptedUpdateWritesTheSpeculativeTaskThenAcceptedAndCompleted() async throws {
        let h = try EngineHarness()
        let run = try await idleRun(h)
        let admitted = try await admit(h, run)
        #expect(admitted.stage == .admitted && admitted.outcome == nil)
        #expect(admitted.updateRef == UpdateRef(workflowExecution: run, updateID: "u1"))
        // Nothing written yet: the speculative task is in the state only.
        #expect(try await h.history(run).count == 4)

        let task = try #require(try await h.pollWorkflowTask())
        // The task's history ends with its (unwritten) Scheduled and Started; one request message,
        // sequenced after the event before WorkflowTaskStarted.
        #expect(task.history.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                                  .workflowTaskCompleted, .workflowTaskScheduled, .workflowTaskStarted])
        #expect(task.startedEventID == 6 && task.previousStartedEventID == 3 && task.attempt == 1)
        #expect(task.messages == [ProtocolMessage(id: "u1/request", protocolInstanceID: "u1", eventID: 5, body: .request(Self.request))])
        try await acceptAndComplete(h, task)

        let history = try await h.history(run)
        #expect(history.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                             .workflowTaskCompleted, .workflowTaskScheduled, .workflowTaskStarted,
                                             .workflowTaskCompleted, .workflowExecutionUpdateAccepted,
                                             .workflowExecutionUpdateCompleted])
        #expect(history.map(\.eventID) == Array(1...9))
        #expect(Array(history[4...5]) == Array(task.history[4...5]))
        guard case .workflowTaskScheduled(let scheduled) = history[4].attributes,
              case .workflowTaskCompleted(let completed) = history[6].attributes,
              case .workflowExecutionUpdateAccepted(let accepted) = history[7].attributes,
              case .workflowExecutionUpdateCompleted(let done) = history[8].attributes else { Issue.record("attributes"); return }
        #expect(scheduled.attempt == 1 && scheduled.taskQueue == "q")
        #expect(completed.scheduledEventID == 5 && completed.startedEventID == 6)
        #expect(accepted == WorkflowExecutionUpdateAcceptedEventAttributes(
            protocolInstanceID: "u1", acceptedRequestMessageID: "u1/request", acceptedRequestSequencingEventID: 5,
            acceptedRequest: Self.request))
        #expect(done == WorkflowExecutionUpdateCompletedEventAttributes(
            meta: UpdateMeta(updateID: "u1", identity: "client"), acceptedEventID: 8, outcome: .success(.json("\"done\""))))

        let polled = try await h.engine.pollWorkflowExecutionUpdate(updateRef: UpdateRef(workflowExecution: run, updateID: "u1"))
        #expect(polled.stage == .completed && polled.outcome == .success(.json("\"done\"")))
        // Nothing is pending: no further workflow task.
        #expect(try h.describe(run).pendingWorkflowTask == nil)
        #expect(try await h.pollWorkflowTask() == nil)
    }

    @Test func aRejectedUpdateLeavesHistoryUnchanged() async throws {
        let h = try EngineHarness()
        let run = try await idleRun(h)
        let before = try await h.history(run)
        let waiting = Task { [engine = h.engine] in
            try await engine.updateWorkflowExecution(workflowID: "wf", updateID: "u1", name: "approve", input: .json("\"yes\""),
                                                     identity: "client", waitFor: .completed)
        }
        var task: WorkflowTask?
        while task == nil { task = try await h.pollWorkflowTask(); await Task.yield() }
        let rejection = reject(try #require(task?.messages.first), "not now")
        try await h.engine.respondWorkflowTaskCompleted(taskToken: try #require(task).taskToken, commands: [], identity: "worker",
                                                        messages: [rejection])
        let response = try await waiting.value
        #expect(response.stage == .completed)
        #expect(response.outcome == .failure(.application("not now", type: "Invalid")))

        let after = try await h.history(run)
        #expect(after == before)
        #expect(try h.describe(run).pendingWorkflowTask == nil)
        // A rejected update is not kept: polling it is NotFound, as in Temporal.
        await #expect { try await h.engine.pollWorkflowExecutionUpdate(updateRef: UpdateRef(workflowExecution: run, updateID: "u1")) }
            throws: { isSpoolError($0, .notFound) }
        // The run's next event takes the id the speculative task had reserved.
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "go")
        #expect(try await h.history(run).last?.eventID == 6)
        #expect(try await h.eventTypes(run).suffix(2) == [.workflowExecutionSignaled, .workflowTaskScheduled])
        let next = try #require(try await h.pollWorkflowTask())
        #expect(next.previousStartedEventID == 3)
    }

    @Test func anUpdateArrivingWhileATaskRunsGoesOutOnASpeculativeTaskAfterIt() async throws {
        let h = try EngineHarness()
        let run = try await idleRun(h)
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "go")
        let running = try #require(try await h.pollWorkflowTask())
        try await admit(h, run)
        try await h.engine.respondWorkflowTaskCompleted(taskToken: running.taskToken, commands: [], identity: "worker")
        // The completion wrote no new WorkflowTaskScheduled: the update waits on a speculative task.
        let before = try await h.history(run)
        #expect(before.map(\.eventType).suffix(4) == [.workflowExecutionSignaled, .workflowTaskScheduled, .workflowTaskStarted,
                                                     .workflowTaskCompleted])
        let task = try #require(try await h.pollWorkflowTask())
        #expect(task.startedEventID == 10 && task.messages.map(\.protocolInstanceID) == ["u1"])
        try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [], identity: "worker",
                                                        messages: [reject(try #require(task.messages.first), "no")])
        #expect(try await h.history(run) == before)
        #expect(try h.describe(run).pendingWorkflowTask == nil)
    }

    @Test func anUpdateTheWorkerIgnoresIsRejectedForIt() async throws {
        let h = try EngineHarness()
        let run = try await idleRun(h)
        let before = try await h.history(run)
        try await admit(h, run)
        let task = try #require(try await h.pollWorkflowTask())
        try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [], identity: "worker")
        #expect(try await h.history(run) == before)
        // The in-flight update was answered with Temporal's unprocessed-update rejection.
        await #expect { try await h.engine.pollWorkflowExecutionUpdate(updateRef: UpdateRef(workflowExecution: run, updateID: "u1")) }
            throws: { isSpoolError($0, .notFound) }
    }

    @Test func aDuplicateIDAttachesToTheUpdateInFlightAndAfterItCompleted() async throws {
        let h = try EngineHarness()
        let run = try await idleRun(h)
        try await admit(h, run)
        // Same id again while in flight: no second request, no second task.
        let again = try await admit(h, run)
        #expect(again.stage == .admitted)
        let waiter = Task { [engine = h.engine] in
            try await engine.updateWorkflowExecution(workflowID: "wf", updateID: "u1", name: "approve", waitFor: .completed)
        }
        let task = try #require(try await h.pollWorkflowTask())
        #expect(task.messages.count == 1)
        try await acceptAndComplete(h, task)
        #expect(try await waiter.value.outcome == .success(.json("\"done\"")))
        let history = try await h.history(run)

        // After completion: the outcome from history, nothing new scheduled or written, whatever
        // the new request's input.
        let late = try await h.engine.updateWorkflowExecution(workflowID: "wf", updateID: "u1", name: "other", input: .json("1"),
                                                              waitFor: .accepted)
        #expect(late.stage == .completed && late.outcome == .success(.json("\"done\"")))
        #expect(try await h.history(run) == history)
        #expect(try h.describe(run).pendingWorkflowTask == nil)
        // A new id is a new update.
        try await admit(h, run, id: "u2")
        #expect(try #require(try await h.pollWorkflowTask()).messages.map(\.protocolInstanceID) == ["u2"])
    }

    @Test func waitingForEachStage() async throws {
        let h = try EngineHarness()
        let run = try await idleRun(h)
        let admitted = try await admit(h, run)
        #expect(admitted.stage == .admitted)
        let accepted = Task { [engine = h.engine] in
            try await engine.updateWorkflowExecution(workflowID: "wf", updateID: "u1", name: "approve", waitFor: .accepted)
        }
        let completed = Task { [engine = h.engine] in
            try await engine.updateWorkflowExecution(workflowID: "wf", updateID: "u1", name: "approve", waitFor: .completed)
        }
        // The worker accepts; the handler answers in a later task.
        let task = try #require(try await h.pollWorkflowTask())
        let request = try #require(task.messages.first)
        let acceptance = accept(request)
        try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [.protocolMessage(.init(messageID: acceptance.id))],
                                                        identity: "worker", messages: [acceptance])
        let reached = try await accepted.value
        #expect(reached.stage == .accepted && reached.outcome == nil)
        // Not completed yet: a poll with a short timeout returns the stage reached.
        let polled = try await h.engine.pollWorkflowExecutionUpdate(updateRef: UpdateRef(workflowExecution: run, updateID: "u1"),
                                                                   waitFor: .completed, timeout: .zero)
        #expect(polled.stage == .accepted && polled.outcome == nil)

        try await h.engine.signalWorkflowExecution(execution: run, signalName: "go")
        let next = try #require(try await h.pollWorkflowTask())
        #expect(next.messages.isEmpty)
        let response = respond("u1", .failure(.application("handler failed", type: "Boom")))
        try await h.engine.respondWorkflowTaskCompleted(taskToken: next.taskToken, commands: [.protocolMessage(.init(messageID: response.id))],
                                                        identity: "worker", messages: [response])
        let done = try await completed.value
        #expect(done.stage == .completed && done.outcome == .failure(.application("handler failed", type: "Boom")))
        let history = try await h.history(run)
        #expect(Array(history.map(\.eventType).suffix(5)) == [.workflowExecutionSignaled, .workflowTaskScheduled, .workflowTaskStarted,
                                                             .workflowTaskCompleted, .workflowExecutionUpdateCompleted])
        guard case .workflowExecutionUpdateCompleted(let a) = history.last?.attributes else { Issue.record("last event"); return }
        #expect(a.acceptedEventID == 8)
    }

    @Test func anUpdateTimesOutAtTheStageItReached() async throws {
        let h = try EngineHarness()
        let run = try await idleRun(h)
        let waiting = Task { [engine = h.engine] in
            try await engine.updateWorkflowExecution(workflowID: "wf", updateID: "u1", name: "approve", waitFor: .completed,
                                                     timeout: .seconds(10))
        }
        while h.engine.updates.isEmpty { await Task.yield() }
        while try h.describe(run).pendingWorkflowTask == nil { await Task.yield() }
        h.clock.advance(by: .seconds(11))
        let response = try await waiting.value
        #expect(response.stage == .admitted && response.outcome == nil)
    }

    @Test func updatesOnAClosedRunFail() async throws {
        let h = try EngineHarness()
        let run = try await h.start()
        _ = try await h.completeWorkflowTask([.completeWorkflowExecution(.init())])
        await #expect { try await admit(h, run) } throws: { error in
            isSpoolError(error, .notFound) && "\(error)".contains("workflow execution already completed")
        }
        await #expect { try await h.engine.updateWorkflowExecution(workflowID: "wf", updateID: "u1", name: "") }
            throws: { isSpoolError($0, .invalidArgument) }
    }

    @Test func pendingUpdatesFailWhenTheRunCloses() async throws {
        let h = try EngineHarness()
        let run = try await idleRun(h)
        // u1 accepted, not answered.
        try await admit(h, run)
        let task = try #require(try await h.pollWorkflowTask())
        let acceptance = accept(try #require(task.messages.first))
        try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [], identity: "worker", messages: [acceptance])
        // A signal's workflow task is started; u2 arrives meanwhile and is never sent.
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "stop")
        let closing = try #require(try await h.pollWorkflowTask())
        let u1 = Task { [engine = h.engine] in
            try await engine.updateWorkflowExecution(workflowID: "wf", updateID: "u1", name: "approve", waitFor: .completed)
        }
        let u2 = Task { [engine = h.engine] in
            try await engine.updateWorkflowExecution(workflowID: "wf", updateID: "u2", name: "approve", waitFor: .completed)
        }
        while h.engine.updates.lookup(.init(run: ExecutionKey(namespace: defaultNamespace, workflowID: "wf", runID: run.runID),
                                            updateID: "u2")) == nil { await Task.yield() }
        try await h.engine.respondWorkflowTaskCompleted(taskToken: closing.taskToken, commands: [.completeWorkflowExecution(.init())],
                                                        identity: "worker")
        #expect(try await u1.value.outcome == .failure(.acceptedUpdateCompletedWorkflow))
        await #expect { try await u2.value } throws: { isSpoolError($0, .notFound) }
        // Afterwards too: the accepted one from history, the other as on any closed run.
        let again = try await h.engine.updateWorkflowExecution(workflowID: "wf", updateID: "u1", name: "approve")
        #expect(again.outcome == .failure(.acceptedUpdateCompletedWorkflow))
        await #expect { try await admit(h, run, id: "u2") } throws: { isSpoolError($0, .notFound) }
    }

    @Test func updateWithStartOnANewID() async throws {
        let h = try EngineHarness()
        let waiting = Task { [engine = h.engine] in
            try await engine.updateWithStartWorkflowExecution(
                StartWorkflowExecutionRequest(workflowID: "wf", workflowType: "order", taskQueue: "q",
                                              workflowIDConflictPolicy: .useExisting),
                updateID: "u1", name: "approve", input: .json("\"yes\""), identity: "client", waitFor: .completed)
        }
        var task: WorkflowTask?
        while task?.messages.isEmpty ?? true { task = try await h.pollWorkflowTask(); await Task.yield() }
        let first = try #require(task)
        // The update rides the run's first workflow task.
        #expect(first.startedEventID == 3)
        #expect(first.messages.map(\.id) == ["u1/request"] && first.messages.first?.eventID == 2)
        try await acceptAndComplete(h, first)
        let (start, update) = try await waiting.value
        #expect(start.started)
        #expect(update.outcome == .success(.json("\"done\"")) && update.updateRef.workflowExecution.runID == start.runID)
        #expect(try await h.eventTypes(WorkflowExecution(workflowID: "wf", runID: start.runID)) == [
            .workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted, .workflowTaskCompleted,
            .workflowExecutionUpdateAccepted, .workflowExecutionUpdateCompleted])
    }

    @Test func updateWithStartOnARunningID() async throws {
        let h = try EngineHarness()
        let run = try await idleRun(h)
        let start = StartWorkflowExecutionRequest(workflowID: "wf", workflowType: "order", taskQueue: "q", workflowIDConflictPolicy: .useExisting)
        let waiting = Task { [engine = h.engine] in
            try await engine.updateWithStartWorkflowExecution(start, updateID: "u1", name: "approve", input: .json("\"yes\""),
                                                              identity: "client", waitFor: .completed)
        }
        var task: WorkflowTask?
        while task == nil { task = try await h.pollWorkflowTask(); await Task.yield() }
        try await acceptAndComplete(h, try #require(task))
        let (started, update) = try await waiting.value
        #expect(!started.started && started.runID == run.runID)
        #expect(update.outcome == .success(.json("\"done\"")))
        #expect(try await h.eventTypes(run).count == 9)
        // With the conflict policy fail, an open run fails the whole call.
        var failing = start
        failing.workflowIDConflictPolicy = .fail
        await #expect { try await h.engine.updateWithStartWorkflowExecution(failing, updateID: "u2", name: "approve") }
            throws: { isSpoolError($0, .workflowExecutionAlreadyStarted) }
    }

    @Test func anInvalidMessageFailsTheWorkflowTask() async throws {
        let h = try EngineHarness()
        let run = try await idleRun(h)
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "go")
        let task = try #require(try await h.pollWorkflowTask())
        // A response for an update never accepted.
        let response = respond("ghost", .success(nil))
        try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [.protocolMessage(.init(messageID: response.id))],
                                                        identity: "worker", messages: [response])
        let history = try await h.history(run)
        guard case .workflowTaskFailed(let failed) = history.last(where: { $0.eventType == .workflowTaskFailed })?.attributes else {
            Issue.record("no WorkflowTaskFailed"); return
        }
        #expect(failed.cause == .badUpdateWorkflowExecutionMessage)
        #expect(!history.contains { $0.eventType == .workflowExecutionUpdateCompleted })
    }

    @Test func updateEventsSurviveReopenAndCompaction() async throws {
        let h = try EngineHarness(durability: .sync)
        let run = try await idleRun(h)
        try await admit(h, run)
        try await acceptAndComplete(h, try #require(try await h.pollWorkflowTask()))
        let history = try await h.history(run)
        try await h.closeAndReopen()
        #expect(try await h.history(run) == history)
        try await h.crashAndReopen()
        #expect(try await h.history(run) == history)
        let again = try await h.engine.updateWorkflowExecution(workflowID: "wf", updateID: "u1", name: "approve")
        #expect(again.outcome == .success(.json("\"done\"")))
        // Closed, compacted: still answered from history.
        try await h.engine.signalWorkflowExecution(execution: run, signalName: "stop")
        _ = try await h.completeWorkflowTask([.completeWorkflowExecution(.init())])
        let closed = try await h.history(run)
        try await h.engine.close()
        var configuration = SpoolEngineConfiguration()
        configuration.clock = .manual(h.clock)
        _ = try SpoolEngine.compactHistory(directory: h.directory + "/data", configuration: configuration)
        h.engine = try EngineHarness.open(h.directory, clock: h.clock, durability: h.durability)
        #expect(try await h.history(run) == closed)
        let polled = try await h.engine.pollWorkflowExecutionUpdate(updateRef: UpdateRef(workflowExecution: run, updateID: "u1"))
        #expect(polled.outcome == .success(.json("\"done\"")))
    }
}
