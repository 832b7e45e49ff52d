import Testing
@testable import Spool

/// SignalExternalWorkflowExecution and RequestCancelExternalWorkflowExecution (issue 19, point 2).
/// Expected histories are Temporal's: the sender writes …Initiated with its workflow task, the
/// target gets WorkflowExecutionSignaled / WorkflowExecutionCancelRequested naming the sender,
/// then the sender gets ExternalWorkflowExecutionSignaled / ExternalWorkflowExecutionCancelRequested
/// (or …Failed with EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND) and a new workflow task.
@Suite struct SpoolEngineExternalRequestTests {
    static func signal(_ workflowID: String, runID: String = "", name: String = "go", input: Payloads? = .json("1"),
                       childOnly: Bool = false) -> Command {
        .signalExternalWorkflowExecution(.init(execution: WorkflowExecution(workflowID: workflowID, runID: runID), signalName: name,
                                               input: input, control: "ctl", childWorkflowOnly: childOnly))
    }

    static func cancel(_ execution: WorkflowExecution, childOnly: Bool = false, reason: String = "stop") -> Command {
        .requestCancelExternalWorkflowExecution(.init(execution: execution, control: "ctl", childWorkflowOnly: childOnly, reason: reason))
    }

    @Test func aSignalReachesTheTargetAndTheSenderRecordsIt() async throws {
        let h = try EngineHarness()
        let target = try await h.start("target", queue: "t")
        let sender = try await h.start("sender")
        _ = try await h.completeWorkflowTask([Self.signal("target")])
        await h.engine.waitForRelatedRunWork()

        let targetEvents = try await h.history(target)
        #expect(targetEvents.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowExecutionSignaled])
        guard case .workflowExecutionSignaled(let signaled) = targetEvents[2].attributes else { return }
        #expect(signaled.signalName == "go" && signaled.input == .json("1") && signaled.identity == "history-service")
        #expect(signaled.externalWorkflowExecution == sender)

        let events = try await h.history(sender)
        #expect(events.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                            .workflowTaskCompleted, .signalExternalWorkflowExecutionInitiated,
                                            .externalWorkflowExecutionSignaled, .workflowTaskScheduled])
        #expect(events[4].attributes == .signalExternalWorkflowExecutionInitiated(.init(
            workflowTaskCompletedEventID: 4, namespace: defaultNamespace, workflowExecution: WorkflowExecution(workflowID: "target", runID: ""),
            signalName: "go", input: .json("1"), control: "ctl", childWorkflowOnly: false, header: Header())))
        #expect(events[5].attributes == .externalWorkflowExecutionSignaled(.init(
            initiatedEventID: 5, namespace: defaultNamespace, workflowExecution: WorkflowExecution(workflowID: "target", runID: ""),
            control: "ctl")))
    }

    @Test func aSignalToAMissingOrClosedRunFailsWithExternalWorkflowExecutionNotFound() async throws {
        let h = try EngineHarness()
        let closed = try await h.start("closed", queue: "t")
        try await h.engine.terminateWorkflowExecution(execution: closed)
        let sender = try await h.start("sender")
        _ = try await h.completeWorkflowTask([Self.signal("nobody"), Self.signal("closed", runID: closed.runID)])
        await h.engine.waitForRelatedRunWork()
        let events = try await h.history(sender)
        let failed = events.compactMap { event -> SignalExternalWorkflowExecutionFailedEventAttributes? in
            if case .signalExternalWorkflowExecutionFailed(let a) = event.attributes { return a }
            return nil
        }
        #expect(failed.count == 2)
        #expect(failed.first { $0.initiatedEventID == 5 } == .init(
            cause: .externalWorkflowExecutionNotFound, workflowTaskCompletedEventID: 4, namespace: defaultNamespace,
            workflowExecution: WorkflowExecution(workflowID: "nobody", runID: ""), initiatedEventID: 5, control: "ctl"))
        #expect(failed.first { $0.initiatedEventID == 6 }?.cause == .externalWorkflowExecutionNotFound)
        // One new workflow task for both outcomes (the second arrives while it is still scheduled).
        #expect(events.filter { $0.eventType == .workflowTaskScheduled }.count == 2)
        #expect(try await h.eventTypes(closed).last == .workflowExecutionTerminated)
    }

    @Test func childWorkflowOnlyRefusesARunThatIsNotTheSendersChild() async throws {
        let h = try EngineHarness()
        let stranger = try await h.start("stranger", queue: "t")
        let sender = try await h.start("sender")
        _ = try await h.completeWorkflowTask([Self.signal("stranger", childOnly: true), Self.cancel(stranger, childOnly: true)])
        await h.engine.waitForRelatedRunWork()
        #expect(try await h.eventTypes(stranger) == [.workflowExecutionStarted, .workflowTaskScheduled])
        let types = try await h.eventTypes(sender)
        #expect(types.contains(.signalExternalWorkflowExecutionFailed))
        #expect(types.contains(.requestCancelExternalWorkflowExecutionFailed))
    }

    @Test func aParentCancelsItsChildThroughRequestCancelExternal() async throws {
        let h = try EngineHarness()
        let parent = try await h.start("order")
        _ = try await h.completeWorkflowTask([SpoolEngineChildWorkflowTests.startChild(queue: "c")])
        let child = try #require(h.engine.listWorkflowExecutions().first { $0.execution.workflowID == "child" }).execution
        // The parent's task 7 sees the child started and asks it to cancel.
        _ = try await h.completeWorkflowTask([Self.cancel(WorkflowExecution(workflowID: "child", runID: child.runID), childOnly: true)])
        await h.engine.waitForRelatedRunWork()

        let childEvents = try await h.history(child)
        #expect(childEvents.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowExecutionCancelRequested])
        #expect(childEvents[2].attributes == .workflowExecutionCancelRequested(.init(
            cause: "stop", identity: "history-service", externalInitiatedEventID: 10, externalWorkflowExecution: parent)))
        var events = try await h.history(parent)
        #expect(Array(events.map(\.eventType)[7...]) == [.workflowTaskStarted, .workflowTaskCompleted,
                                                         .requestCancelExternalWorkflowExecutionInitiated,
                                                         .externalWorkflowExecutionCancelRequested, .workflowTaskScheduled])
        #expect(events[9].attributes == .requestCancelExternalWorkflowExecutionInitiated(.init(
            workflowTaskCompletedEventID: 9, namespace: defaultNamespace, workflowExecution: child, control: "ctl",
            childWorkflowOnly: true, reason: "stop")))
        #expect(events[10].attributes == .externalWorkflowExecutionCancelRequested(.init(
            initiatedEventID: 10, namespace: defaultNamespace, workflowExecution: child)))

        // The child accepts: the parent records ChildWorkflowExecutionCanceled.
        _ = try await h.completeWorkflowTask([.cancelWorkflowExecution(.init())], queue: "c")
        await h.engine.waitForRelatedRunWork()
        events = try await h.history(parent)
        #expect(events.last?.attributes == .childWorkflowExecutionClosed(.init(
            outcome: .canceled(details: nil), namespace: defaultNamespace, workflowExecution: child, workflowType: "shipment",
            initiatedEventID: 5, startedEventID: 6)))
    }

    @Test func aCancelRequestToAMissingRunFailsAndToAClosedRunSucceeds() async throws {
        let h = try EngineHarness()
        let closed = try await h.start("closed", queue: "t")
        try await h.engine.terminateWorkflowExecution(execution: closed)
        let sender = try await h.start("sender")
        _ = try await h.completeWorkflowTask([Self.cancel(WorkflowExecution(workflowID: "nobody", runID: "")), Self.cancel(closed)])
        await h.engine.waitForRelatedRunWork()
        let events = try await h.history(sender)
        #expect(events.contains { $0.attributes == .requestCancelExternalWorkflowExecutionFailed(.init(
            cause: .externalWorkflowExecutionNotFound, workflowTaskCompletedEventID: 4, namespace: defaultNamespace,
            workflowExecution: WorkflowExecution(workflowID: "nobody", runID: ""), initiatedEventID: 5, control: "ctl")) })
        #expect(events.contains { $0.attributes == .externalWorkflowExecutionCancelRequested(.init(
            initiatedEventID: 6, namespace: defaultNamespace, workflowExecution: closed)) })
    }

    @Test func anEmptySignalNameFailsTheWorkflowTask() async throws {
        let h = try EngineHarness()
        let sender = try await h.start("sender")
        _ = try await h.completeWorkflowTask([Self.signal("target", name: "")])
        let events = try await h.history(sender)
        guard case .workflowTaskFailed(let failed) = events.last?.attributes else { Issue.record("\(events)"); return }
        #expect(failed.cause == .badSignalWorkflowExecutionAttributes)
    }

    @Test func pendingRequestsSurviveReopenAndAreDeliveredOnce() async throws {
        let h = try EngineHarness(durability: .sync, injectingFaults: true)
        let target = try await h.start("target", queue: "t")
        let sender = try await h.start("sender")
        let task = try #require(try await h.pollWorkflowTask())
        // The completion is durable but the process dies before acting on it: nothing delivered yet.
        h.crashAfterNextAppend()
        await #expect { try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: [Self.signal("target")]) }
            throws: { isSpoolError($0, .storage) }
        try await h.crashAndReopen()
        await h.engine.waitForRelatedRunWork()
        #expect(try await h.eventTypes(target).filter { $0 == .workflowExecutionSignaled }.count == 1)
        #expect(try await h.eventTypes(sender).filter { $0 == .externalWorkflowExecutionSignaled }.count == 1)
        try await h.crashAndReopen()
        await h.engine.waitForRelatedRunWork()
        #expect(try await h.eventTypes(target).filter { $0 == .workflowExecutionSignaled }.count == 1)
        #expect(try await h.eventTypes(sender).filter { $0 == .externalWorkflowExecutionSignaled }.count == 1)
    }
}
