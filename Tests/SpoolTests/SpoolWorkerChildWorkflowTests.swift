import Testing
@testable import Spool

/// SpoolWorker running workflows that start children, signal and cancel other workflows
/// (issue 19, point 4): the definitions read their children's and requests' state from the
/// history (``WorkflowContext/child(_:)``, ``WorkflowContext/externalSignal(to:signalName:)``).
@Suite struct SpoolWorkerChildWorkflowTests {
    /// Starts child `invoice` on queue `kids`, signals it `paid` once it started, and closes as the child did.
    static let order: WorkflowDefinition = { context in
        switch context.child("invoice") {
        case .notInitiated:
            return [.startChildWorkflowExecution(.init(workflowID: "invoice", workflowType: "invoice", taskQueue: "kids",
                                                       input: context.input, parentClosePolicy: .terminate))]
        case .initiated:
            return []
        case .started(let child):
            guard context.externalSignal(to: "invoice", signalName: "paid") == .notInitiated else { return [] }
            return [.signalExternalWorkflowExecution(.init(execution: child, signalName: "paid", input: .json("42"),
                                                           childWorkflowOnly: true))]
        case .startFailed(let cause):
            return [.failWorkflowExecution(.init(failure: .application("invoice not started: \(cause)")))]
        case .closed(.completed(let result), _):
            return [.completeWorkflowExecution(.init(result: result))]
        case .closed(.failed(let failure, _), _):
            return [.failWorkflowExecution(.init(failure: .application("invoice failed", type: "InvoiceFailed", cause: failure)))]
        case .closed(let outcome, _):
            return [.failWorkflowExecution(.init(failure: .application("invoice ended: \(outcome)")))]
        }
    }

    /// Completes once its parent signaled `paid`, with the amount; cancels when asked to.
    static let invoice: WorkflowDefinition = { context in
        if context.isCancelRequested { return [.cancelWorkflowExecution(.init())] }
        guard let paid = context.signals.first(where: { $0.name == "paid" }) else { return [] }
        guard paid.sender == context.parent?.execution else {
            return [.failWorkflowExecution(.init(failure: .application("paid by a stranger")))]
        }
        return [.completeWorkflowExecution(.init(result: paid.input))]
    }

    @Test func aParentStartsAChildOnAnotherQueueSignalsItAndGetsItsResult() async throws {
        let h = try EngineHarness()
        let parents = SpoolWorker(engine: h.engine, taskQueue: "q", identity: "parents")
        let children = SpoolWorker(engine: h.engine, taskQueue: "kids", identity: "children")
        parents.registerWorkflow("order", Self.order)
        children.registerWorkflow("invoice", Self.invoice)
        let running = [Task { await parents.run() }, Task { await children.run() }]
        let run = try await h.start("order-1", type: "order")
        let close = try await h.engine.getWorkflowExecutionHistory(execution: run, waitNewEvent: true, historyEventFilterType: .closeEvent)
        guard case .workflowExecutionCompleted(let completed)? = close.history.first?.attributes else {
            Issue.record("the order did not complete: \(close.history)"); return
        }
        #expect(completed.result == .json("42"))
        let types = try await h.eventTypes(run)
        for type in [EventType.startChildWorkflowExecutionInitiated, .childWorkflowExecutionStarted,
                     .signalExternalWorkflowExecutionInitiated, .externalWorkflowExecutionSignaled, .childWorkflowExecutionCompleted] {
            #expect(types.filter { $0 == type }.count == 1, "\(type)")
        }
        for worker in [parents, children] { await worker.stop() }
        for task in running { await task.value }
    }

    @Test func aParentCancelsItsChildAndSeesItCanceled() async throws {
        let h = try EngineHarness()
        let worker = SpoolWorker(engine: h.engine, taskQueue: "q", identity: "w")
        worker.registerWorkflow("invoice", Self.invoice)
        worker.registerWorkflow("saga") { context in
            switch context.child("invoice") {
            case .notInitiated:
                return [.startChildWorkflowExecution(.init(workflowID: "invoice", workflowType: "invoice"))]
            case .started(let child):
                guard context.externalCancel(of: "invoice") == .notInitiated else { return [] }
                return [.requestCancelExternalWorkflowExecution(.init(execution: child, childWorkflowOnly: true, reason: "saga undone"))]
            case .closed(.canceled, _):
                return [.completeWorkflowExecution(.init(result: .json("\"undone\"")))]
            case .closed, .startFailed:
                return [.failWorkflowExecution(.init(failure: .application("unexpected")))]
            case .initiated:
                return []
            }
        }
        let running = Task { await worker.run() }
        let run = try await h.start("saga-1", type: "saga")
        let close = try await h.engine.getWorkflowExecutionHistory(execution: run, waitNewEvent: true, historyEventFilterType: .closeEvent)
        guard case .workflowExecutionCompleted(let completed)? = close.history.first?.attributes else {
            Issue.record("the saga did not complete: \(close.history)"); return
        }
        #expect(completed.result == .json("\"undone\""))
        #expect(try await h.eventTypes(run).contains(.childWorkflowExecutionCanceled))
        await worker.stop()
        await running.value
    }
}
