import SpoolLog
import Testing
@testable import Spool

/// Child workflows through the engine's Swift API (issue 19, point 1). The expected histories
/// are Temporal's for the same calls: the parent records StartChildWorkflowExecutionInitiated
/// with its workflow task, then ChildWorkflowExecutionStarted (or StartChildWorkflowExecutionFailed)
/// and a new workflow task; the child's WorkflowExecutionStarted names its parent and root; the
/// child's close reaches the parent as ChildWorkflowExecution{Completed,Failed,Canceled,TimedOut,Terminated}
/// naming the initiated and started events; the parent close policy acts on the children when
/// the parent closes.
@Suite struct SpoolEngineChildWorkflowTests {
    static func startChild(_ id: String = "child", type: String = "shipment", queue: String = "", input: Payloads? = nil,
                           runTimeout: Duration? = nil, policy: ParentClosePolicy = .unspecified,
                           control: String = "") -> Command {
        .startChildWorkflowExecution(.init(workflowID: id, workflowType: type, taskQueue: queue, input: input,
                                           workflowRunTimeout: runTimeout, parentClosePolicy: policy, control: control))
    }

    /// A parent "order" on queue q whose first workflow task started `commands`' children.
    /// Returns the parent run and its history after that task.
    func startParent(_ h: EngineHarness, _ commands: [Command], id: String = "order") async throws -> WorkflowExecution {
        let parent = try await h.start(id)
        _ = try await h.completeWorkflowTask(commands)
        return parent
    }

    func child(_ h: EngineHarness, _ id: String = "child") throws -> WorkflowExecution {
        try #require(h.engine.listWorkflowExecutions().first { $0.execution.workflowID == id }).execution
    }

    @Test func aChildOnAnotherQueueStartsWithItsParentsTaskAndItsResultReachesTheParent() async throws {
        let h = try EngineHarness()
        let parent = try await startParent(h, [Self.startChild(queue: "shipping", input: .json("7"), control: "c1")])
        let child = try child(h)
        var events = try await h.history(parent)
        #expect(events.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                            .workflowTaskCompleted, .startChildWorkflowExecutionInitiated,
                                            .childWorkflowExecutionStarted, .workflowTaskScheduled])
        guard case .startChildWorkflowExecutionInitiated(let initiated) = events[4].attributes,
              case .childWorkflowExecutionStarted(let started) = events[5].attributes else {
            Issue.record("unexpected events \(events)"); return
        }
        #expect(initiated.namespace == defaultNamespace)
        #expect(initiated.workflowID == "child" && initiated.workflowType == "shipment" && initiated.taskQueue == "shipping")
        #expect(initiated.input == .json("7") && initiated.control == "c1" && initiated.workflowTaskCompletedEventID == 4)
        #expect(initiated.parentClosePolicy == .unspecified)
        #expect(started.initiatedEventID == 5 && started.workflowExecution == child && started.workflowType == "shipment")
        #expect(started.namespace == defaultNamespace)

        // The child: its own queue, its parent and root in WorkflowExecutionStarted and describe.
        let childEvents = try await h.history(child)
        #expect(childEvents.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled])
        guard case .workflowExecutionStarted(let childStarted) = childEvents[0].attributes else { return }
        #expect(childStarted.taskQueue == "shipping" && childStarted.input == .json("7") && childStarted.identity == "")
        #expect(childStarted.parent == ParentExecutionInfo(namespace: defaultNamespace, execution: parent, initiatedEventID: 5,
                                                           rootExecution: parent))
        let described = try h.describe(child).executionInfo
        #expect(described.parentExecution == parent && described.parentNamespace == defaultNamespace)
        #expect(described.rootExecution == parent)
        #expect(try h.describe(parent).executionInfo.parentExecution == nil)
        #expect(try h.describe(parent).pendingChildren == [PendingChildExecutionInfo(
            workflowID: "child", runID: child.runID, workflowTypeName: "shipment", initiatedID: 5, parentClosePolicy: .unspecified)])

        // The child completes: the parent records the result (its task 7 is still scheduled).
        _ = try await h.completeWorkflowTask([.completeWorkflowExecution(.init(result: .json("\"shipped\"")))], queue: "shipping")
        await h.engine.waitForRelatedRunWork()
        events = try await h.history(parent)
        #expect(events.count == 8)
        #expect(events[7].eventType == .childWorkflowExecutionCompleted)
        #expect(events[7].attributes == .childWorkflowExecutionClosed(.init(
            outcome: .completed(result: .json("\"shipped\"")), namespace: defaultNamespace, workflowExecution: child,
            workflowType: "shipment", initiatedEventID: 5, startedEventID: 6)))
        #expect(try h.describe(parent).pendingChildren.isEmpty)
    }

    @Test func eachWayAChildClosesReachesItsParentWithTemporalsAttributes() async throws {
        let h = try EngineHarness()
        let parent = try await startParent(h, [
            Self.startChild("failing", queue: "c"), Self.startChild("timing-out", queue: "t", runTimeout: .seconds(10)),
            Self.startChild("terminated", queue: "x"), Self.startChild("canceled", queue: "c"),
        ])
        let failure = Failure.application("no stock", type: "OutOfStock")
        for _ in 0..<2 {
            let task = try #require(try await h.pollWorkflowTask("c"))
            let commands: [Command] = task.workflowExecution.workflowID == "failing"
                ? [.failWorkflowExecution(.init(failure: failure))] : [.cancelWorkflowExecution(.init(details: .json("1")))]
            try await h.engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: commands)
        }
        try await h.engine.terminateWorkflowExecution(execution: try child(h, "terminated"), reason: "ops")
        await h.advance(.seconds(11))
        await h.engine.waitForRelatedRunWork()

        let events = try await h.history(parent)
        // 5–8 initiated, 9–12 started, 13 the parent's task; then the four outcomes in the order they came.
        #expect(events[4...7].allSatisfy { $0.eventType == .startChildWorkflowExecutionInitiated })
        #expect(events[8...11].allSatisfy { $0.eventType == .childWorkflowExecutionStarted })
        #expect(events[12].eventType == .workflowTaskScheduled)
        var outcomes: [String: ChildWorkflowExecutionClosedEventAttributes] = [:]
        for event in events.dropFirst(13) {
            guard case .childWorkflowExecutionClosed(let a) = event.attributes else { Issue.record("\(event)"); continue }
            outcomes[a.workflowExecution.workflowID] = a
        }
        #expect(events.count == 17)
        let failing = try child(h, "failing")
        #expect(outcomes["failing"] == .init(outcome: .failed(failure: failure, retryState: .retryPolicyNotSet),
                                             namespace: defaultNamespace, workflowExecution: failing, workflowType: "shipment",
                                             initiatedEventID: 5, startedEventID: 9))
        #expect(outcomes["timing-out"]?.outcome == .timedOut(retryState: .retryPolicyNotSet))
        #expect(outcomes["timing-out"]?.initiatedEventID == 6 && outcomes["timing-out"]?.startedEventID == 10)
        #expect(outcomes["terminated"]?.outcome == .terminated)
        #expect(outcomes["canceled"]?.outcome == .canceled(details: .json("1")))
        #expect(outcomes["canceled"]?.initiatedEventID == 8 && outcomes["canceled"]?.startedEventID == 12)
        #expect(Set(events.dropFirst(13).map(\.eventType)) == [.childWorkflowExecutionFailed, .childWorkflowExecutionTimedOut,
                                                              .childWorkflowExecutionTerminated, .childWorkflowExecutionCanceled])
    }

    @Test func aChildWhoseWorkflowIDIsRunningFailsToStartWithWorkflowAlreadyExists() async throws {
        let h = try EngineHarness()
        let running = try await h.start("busy", queue: "other")
        let parent = try await startParent(h, [Self.startChild("busy", control: "ctl")])
        let events = try await h.history(parent)
        #expect(events.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                            .workflowTaskCompleted, .startChildWorkflowExecutionInitiated,
                                            .startChildWorkflowExecutionFailed, .workflowTaskScheduled])
        #expect(events[5].attributes == .startChildWorkflowExecutionFailed(.init(
            namespace: defaultNamespace, workflowID: "busy", workflowType: "shipment", cause: .workflowAlreadyExists, control: "ctl",
            initiatedEventID: 5, workflowTaskCompletedEventID: 4)))
        #expect(try h.describe(parent).pendingChildren.isEmpty)
        #expect(try await h.eventTypes(running) == [.workflowExecutionStarted, .workflowTaskScheduled])
        #expect(h.engine.listWorkflowExecutions().count == 2)
    }

    /// TERMINATE_IF_RUNNING on a running id: as Temporal's child-start transfer task, the parent
    /// writes only the initiated event with its workflow task; then the running run is terminated
    /// (reason `TerminateIfRunning WorkflowIdReusePolicy Policy`, details `terminated by new
    /// runID: <the child's run>`, identity `history-service`), the child starts, and the parent
    /// records ChildWorkflowExecutionStarted and a new workflow task.
    @Test func terminateIfRunningTerminatesTheRunningIDThenStartsTheChild() async throws {
        let h = try EngineHarness()
        let running = try await h.start("busy", queue: "other")
        let parent = try await startParent(h, [.startChildWorkflowExecution(.init(
            workflowID: "busy", workflowType: "shipment", taskQueue: "shipping", control: "ctl",
            workflowIDReusePolicy: .terminateIfRunning))])
        await h.engine.waitForRelatedRunWork()

        let child = try #require(h.engine.listWorkflowExecutions().first {
            $0.execution.workflowID == "busy" && $0.execution.runID != running.runID }).execution
        let events = try await h.history(parent)
        #expect(events.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowTaskStarted,
                                            .workflowTaskCompleted, .startChildWorkflowExecutionInitiated,
                                            .childWorkflowExecutionStarted, .workflowTaskScheduled])
        #expect(events[5].attributes == .childWorkflowExecutionStarted(.init(
            namespace: defaultNamespace, initiatedEventID: 5, workflowExecution: child, workflowType: "shipment", header: Header())))

        let old = try await h.history(running)
        #expect(old.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowExecutionTerminated])
        #expect(old[2].attributes == .workflowExecutionTerminated(.init(
            reason: "TerminateIfRunning WorkflowIdReusePolicy Policy",
            details: [Payload.jsonString("terminated by new runID: \(child.runID)")], identity: "history-service")))

        let childEvents = try await h.history(child)
        #expect(childEvents.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled])
        guard case .workflowExecutionStarted(let started) = childEvents[0].attributes else { return }
        #expect(started.taskQueue == "shipping")
        #expect(started.parent == ParentExecutionInfo(namespace: defaultNamespace, execution: parent, initiatedEventID: 5,
                                                      rootExecution: parent))
        #expect(try h.describe(parent).pendingChildren == [PendingChildExecutionInfo(
            workflowID: "busy", runID: child.runID, workflowTypeName: "shipment", initiatedID: 5, parentClosePolicy: .unspecified)])
        #expect(h.engine.listWorkflowExecutions(status: .running).map(\.execution.runID).sorted() == [parent.runID, child.runID].sorted())
    }

    /// A child can't take its own parent's id by terminating it: the start fails, as any start
    /// of a running id without TERMINATE_IF_RUNNING.
    @Test func terminateIfRunningOnTheParentsOwnIDFailsTheChildsStart() async throws {
        let h = try EngineHarness()
        let parent = try await startParent(h, [.startChildWorkflowExecution(.init(
            workflowID: "order", workflowType: "shipment", workflowIDReusePolicy: .terminateIfRunning))])
        await h.engine.waitForRelatedRunWork()
        let events = try await h.history(parent)
        #expect(events.map(\.eventType).suffix(3) == [.startChildWorkflowExecutionInitiated, .startChildWorkflowExecutionFailed,
                                                      .workflowTaskScheduled])
        #expect(try h.describe(parent).executionInfo.status == .running)
    }

    @Test func aReusePolicyThatRejectsDuplicatesFailsTheStartOfAClosedID() async throws {
        let h = try EngineHarness()
        let earlier = try await h.start("done", queue: "other")
        try await h.engine.terminateWorkflowExecution(execution: earlier)
        let parent = try await startParent(h, [.startChildWorkflowExecution(.init(
            workflowID: "done", workflowType: "shipment", workflowIDReusePolicy: .rejectDuplicate))])
        guard case .startChildWorkflowExecutionFailed(let failed) = try await h.history(parent)[5].attributes else {
            Issue.record("no StartChildWorkflowExecutionFailed"); return
        }
        #expect(failed.cause == .workflowAlreadyExists)
    }

    @Test func badChildAttributesFailTheWorkflowTaskAndChangeNothingElse() async throws {
        let h = try EngineHarness()
        let parent = try await h.start()
        _ = try await h.completeWorkflowTask([Self.startChild("", type: "shipment")])
        _ = try await h.completeWorkflowTask([.startChildWorkflowExecution(.init(namespace: "elsewhere", workflowID: "c", workflowType: "t"))])
        let events = try await h.history(parent)
        let failures = events.compactMap { event -> WorkflowTaskFailedEventAttributes? in
            if case .workflowTaskFailed(let a) = event.attributes { return a }
            return nil
        }
        #expect(failures.count == 1)       // the second attempt is transient: its failure writes nothing
        #expect(failures.first?.cause == .badStartChildExecutionAttributes)
        #expect(!events.contains { $0.eventType == .startChildWorkflowExecutionInitiated })
        #expect(h.engine.listWorkflowExecutions().count == 1)
    }

    @Test func eachParentClosePolicyActsWhenTheParentCompletes() async throws {
        let h = try EngineHarness()
        let parent = try await startParent(h, [
            Self.startChild("terminate", queue: "c", policy: .terminate), Self.startChild("abandon", queue: "c", policy: .abandon),
            Self.startChild("cancel", queue: "c", policy: .requestCancel), Self.startChild("default", queue: "c"),
        ])
        _ = try await h.completeWorkflowTask([.completeWorkflowExecution(.init())])
        await h.engine.waitForRelatedRunWork()
        #expect(try await h.eventTypes(parent).last == .workflowExecutionCompleted)

        for id in ["terminate", "default"] {
            let events = try await h.history(try child(h, id))
            #expect(events.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowExecutionTerminated], "\(id)")
            #expect(events.last?.attributes == .workflowExecutionTerminated(.init(reason: "by parent close policy", details: nil,
                                                                                   identity: "history-service")))
        }
        #expect(try await h.eventTypes(try child(h, "abandon")) == [.workflowExecutionStarted, .workflowTaskScheduled])
        #expect(try h.describe(try child(h, "abandon")).executionInfo.status == .running)
        let canceled = try await h.history(try child(h, "cancel"))
        #expect(canceled.map(\.eventType) == [.workflowExecutionStarted, .workflowTaskScheduled, .workflowExecutionCancelRequested])
        guard case .workflowExecutionCancelRequested(let request) = canceled.last?.attributes else { return }
        #expect(request == .init(cause: "", identity: "history-service", externalInitiatedEventID: 0, externalWorkflowExecution: parent))
        // The parent closed: the terminated children's close is not recorded in it.
        #expect(try await h.eventTypes(parent).count == 16)
    }

    @Test func theParentClosePolicyActsWhenTheParentIsTerminatedTimesOutOrContinuesAsNew() async throws {
        let h = try EngineHarness()
        let terminated = try await startParent(h, [Self.startChild("t1", queue: "c")], id: "p1")
        try await h.engine.terminateWorkflowExecution(execution: terminated)
        let continued = try await startParent(h, [Self.startChild("t2", queue: "c", policy: .requestCancel)], id: "p2")
        _ = try await h.completeWorkflowTask([.continueAsNewWorkflowExecution(.init())])
        let timedOut = try await h.start("p3", queue: "q3", runTimeout: .seconds(30))
        _ = try await h.completeWorkflowTask([Self.startChild("t3", queue: "c")], queue: "q3")
        await h.advance(.seconds(31))
        await h.engine.waitForRelatedRunWork()
        #expect(try await h.eventTypes(timedOut).last == .workflowExecutionTimedOut)
        #expect(try await h.eventTypes(continued).last == .workflowExecutionContinuedAsNew)
        #expect(try await h.eventTypes(try child(h, "t1")).last == .workflowExecutionTerminated)
        #expect(try await h.eventTypes(try child(h, "t2")).last == .workflowExecutionCancelRequested)
        #expect(try await h.eventTypes(try child(h, "t3")).last == .workflowExecutionTerminated)
    }

    @Test func aContinuedChildReportsItsLastRunsCloseAndKeepsItsParent() async throws {
        let h = try EngineHarness()
        let parent = try await startParent(h, [Self.startChild(queue: "c")])
        let first = try child(h)
        _ = try await h.completeWorkflowTask([.continueAsNewWorkflowExecution(.init())], queue: "c")
        await h.engine.waitForRelatedRunWork()
        // Nothing reaches the parent yet: the child's chain goes on.
        #expect(try await h.eventTypes(parent).count == 7)
        let second = try #require(try h.describe(first).newExecutionRunID)
        let secondRun = WorkflowExecution(workflowID: "child", runID: second)
        #expect(try h.describe(secondRun).executionInfo.parentExecution == parent)
        _ = try await h.completeWorkflowTask([.completeWorkflowExecution(.init(result: .json("2")))], queue: "c")
        await h.engine.waitForRelatedRunWork()
        let last = try await h.history(parent).last
        #expect(last?.attributes == .childWorkflowExecutionClosed(.init(
            outcome: .completed(result: .json("2")), namespace: defaultNamespace, workflowExecution: secondRun,
            workflowType: "shipment", initiatedEventID: 5, startedEventID: 6)))
    }

    @Test func childrenAndTheirParentsSurviveReopenAndCheckpoint() async throws {
        let h = try EngineHarness(durability: .sync)
        let parent = try await startParent(h, [Self.startChild("kept", queue: "c", policy: .abandon), Self.startChild("done", queue: "d"),
                                               Self.startChild("kept", queue: "c")])
        _ = try await h.completeWorkflowTask([.completeWorkflowExecution(.init(result: .json("1")))], queue: "d")
        await h.engine.waitForRelatedRunWork()
        let before = try await h.snapshot()
        try await h.crashAndReopen()
        await h.engine.waitForRelatedRunWork()
        expectSameState(before, try await h.snapshot())
        try await h.closeAndReopen()
        await h.engine.waitForRelatedRunWork()
        expectSameState(before, try await h.snapshot())
        #expect(try h.describe(parent).pendingChildren.map(\.workflowID) == ["kept"])
        #expect(try h.describe(try child(h, "kept")).executionInfo.parentExecution == parent)
        // The state still works after reopen: the kept child's close reaches the parent once.
        _ = try await h.completeWorkflowTask([.completeWorkflowExecution(.init())], queue: "c")
        await h.engine.waitForRelatedRunWork()
        try await h.crashAndReopen()
        await h.engine.waitForRelatedRunWork()
        let events = try await h.history(parent)
        #expect(events.filter { $0.eventType == .childWorkflowExecutionCompleted }.count == 2)
        #expect(events.filter { $0.eventType == .startChildWorkflowExecutionFailed }.count == 1)
    }

    @Test func closedParentsAndChildrenSurviveCompactionAndFullReplay() async throws {
        let h = try EngineHarness()
        let parent = try await startParent(h, [Self.startChild("kept", queue: "c", policy: .abandon),
                                               Self.startChild("ended", queue: "c", policy: .terminate),
                                               .signalExternalWorkflowExecution(.init(execution: WorkflowExecution(workflowID: "kept"),
                                                                                      signalName: "go"))])
        await h.engine.waitForRelatedRunWork()
        _ = try await h.completeWorkflowTask([.completeWorkflowExecution(.init())])
        await h.engine.waitForRelatedRunWork()
        _ = try await h.completeWorkflowTask([.completeWorkflowExecution(.init(result: .json("3")))], queue: "c")
        #expect(try h.describe(parent).executionInfo.status == .completed)
        #expect(h.engine.listWorkflowExecutions(status: .running).isEmpty)
        try await h.engine.close()
        let data = h.directory + "/data"
        let before = try await HistoryFixture.view(data, clock: h.clock)
        #expect(before.runs.count == 3)
        _ = try SpoolEngine.compactHistory(directory: data, configuration: HistoryFixture.configuration(h.clock))
        #expect(try await HistoryFixture.view(data, clock: h.clock) == before)
        #expect(try await HistoryFixture.viewByFullReplay(data, clock: h.clock) == before)
    }

    @Test func aRunStatesRelatedRunsRoundTripThroughTheCheckpointCodecAndOlderLayoutsLeaveThemEmpty() throws {
        let time = Timestamp(nanosecondsSinceEpoch: 1_750_000_000_000_000_000)
        let parent = ParentExecutionInfo(namespace: "default", execution: WorkflowExecution(workflowID: "p", runID: "p1"),
                                         initiatedEventID: 5, rootExecution: WorkflowExecution(workflowID: "root", runID: "r1"))
        var started = WorkflowExecutionStartedEventAttributes(
            workflowType: "t", taskQueue: "q", input: nil, workflowRunTimeout: nil, workflowTaskTimeout: .seconds(10),
            continuedExecutionRunID: "", firstExecutionRunID: "c1", identity: "", requestID: "", attempt: 1)
        started.parent = parent
        var state = ExecutionState(key: ExecutionKey(namespace: "default", workflowID: "c", runID: "c1"), started: started, startTime: time)
        state.related.children[7] = ChildExecutionInfo(initiatedEventID: 7, namespace: "default", workflowID: "g", workflowType: "gt",
                                                       runID: "g1", startedEventID: 8, parentClosePolicy: .requestCancel)
        state.related.signals[9] = .init(workflowTaskCompletedEventID: 6, namespace: "default",
                                         workflowExecution: WorkflowExecution(workflowID: "x", runID: ""), signalName: "go",
                                         input: .json("1"), control: "c", childWorkflowOnly: true, header: Header())
        state.related.cancels[10] = .init(workflowTaskCompletedEventID: 6, namespace: "default",
                                          workflowExecution: WorkflowExecution(workflowID: "y", runID: "y1"), control: "",
                                          childWorkflowOnly: false, reason: "why")
        var w = BinaryWriter()
        state.encode(into: &w)
        var r = BinaryReader<SpoolError>(w.bytes, context: "test")
        let decoded = try ExecutionState.decode(from: &r, layout: .current)
        #expect(r.isAtEnd)
        #expect(decoded == state)
        #expect(decoded.related.parent == parent && decoded.related.children.count == 1)
        // Read as layout 3 (a checkpoint written before), the record is not there: nothing related.
        var older = BinaryReader<SpoolError>(w.bytes, context: "test")
        #expect(try ExecutionState.decode(from: &older, layout: .extended).related.isEmpty)
    }
}
