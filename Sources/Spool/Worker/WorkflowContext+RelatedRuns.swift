// What a workflow definition reads from its history about other workflows (issue 19, point 3):
// its parent, its children's progress and outcomes, and the fate of its signals and cancel
// requests to other workflows. A definition is a function of the history, so "awaiting" a child
// is returning no command until ``WorkflowContext/child(_:)`` says it closed.

/// Where a child workflow the run asked for stands, as the run's history tells it.
public enum ChildWorkflowState: Hashable, Sendable {
    /// The run never asked to start it.
    case notInitiated
    /// StartChildWorkflowExecutionInitiated is written; its start is not.
    case initiated
    /// The child runs (ChildWorkflowExecutionStarted): its first run.
    case started(WorkflowExecution)
    /// The child could not be started (StartChildWorkflowExecutionFailed).
    case startFailed(StartChildWorkflowExecutionFailedCause)
    /// The child closed: how, with its result, failure or details, and the run that closed.
    case closed(ChildWorkflowExecutionClosedEventAttributes.Outcome, WorkflowExecution)

    /// Whether the child will not change any more (it closed or never started).
    public var isDone: Bool {
        switch self {
        case .startFailed, .closed: true
        default: false
        }
    }
}

/// What became of a signal or cancel request the run sent to another workflow.
public enum ExternalRequestState: Hashable, Sendable {
    /// The run never sent it.
    case notInitiated
    /// Sent (…Initiated written), not delivered yet.
    case pending
    /// The target received it (ExternalWorkflowExecutionSignaled / …CancelRequested).
    case delivered
    /// The target was not found (…Failed); the cause is Temporal's.
    case failed
}

extension WorkflowContext {
    /// The parent that started this run as a child; nil for a run without one.
    public var parent: ParentExecutionInfo? { started?.parent }

    /// The state of the last child this run asked for with workflow id `workflowID`.
    /// Cost: a scan of the history.
    public func child(_ workflowID: String) -> ChildWorkflowState {
        var initiatedEventID: Int64?
        var state = ChildWorkflowState.notInitiated
        for event in history {
            switch event.attributes {
            case .startChildWorkflowExecutionInitiated(let a) where a.workflowID == workflowID:
                initiatedEventID = event.eventID
                state = .initiated
            case .childWorkflowExecutionStarted(let a) where a.initiatedEventID == initiatedEventID:
                state = .started(a.workflowExecution)
            case .startChildWorkflowExecutionFailed(let a) where a.initiatedEventID == initiatedEventID:
                state = .startFailed(a.cause)
            case .childWorkflowExecutionClosed(let a) where a.initiatedEventID == initiatedEventID:
                state = .closed(a.outcome, a.workflowExecution)
            default:
                break
            }
        }
        return state
    }

    /// What became of the last signal named `signalName` this run sent to workflow id `workflowID`.
    public func externalSignal(to workflowID: String, signalName: String) -> ExternalRequestState {
        var initiatedEventID: Int64?
        var state = ExternalRequestState.notInitiated
        for event in history {
            switch event.attributes {
            case .signalExternalWorkflowExecutionInitiated(let a) where a.workflowExecution.workflowID == workflowID && a.signalName == signalName:
                initiatedEventID = event.eventID
                state = .pending
            case .externalWorkflowExecutionSignaled(let a) where a.initiatedEventID == initiatedEventID:
                state = .delivered
            case .signalExternalWorkflowExecutionFailed(let a) where a.initiatedEventID == initiatedEventID:
                state = .failed
            default:
                break
            }
        }
        return state
    }

    /// What became of the last cancel request this run sent to workflow id `workflowID`.
    public func externalCancel(of workflowID: String) -> ExternalRequestState {
        var initiatedEventID: Int64?
        var state = ExternalRequestState.notInitiated
        for event in history {
            switch event.attributes {
            case .requestCancelExternalWorkflowExecutionInitiated(let a) where a.workflowExecution.workflowID == workflowID:
                initiatedEventID = event.eventID
                state = .pending
            case .externalWorkflowExecutionCancelRequested(let a) where a.initiatedEventID == initiatedEventID:
                state = .delivered
            case .requestCancelExternalWorkflowExecutionFailed(let a) where a.initiatedEventID == initiatedEventID:
                state = .failed
            default:
                break
            }
        }
        return state
    }

    /// Whether someone asked this run to cancel (a client, a workflow's RequestCancelExternal, or
    /// its parent's close policy).
    public var isCancelRequested: Bool { history.contains { $0.eventType == .workflowExecutionCancelRequested } }

    /// The signals this run received, in order: name, input and — for a signal another workflow
    /// sent — the sender.
    public var signals: [(name: String, input: Payloads?, sender: WorkflowExecution?)] {
        history.compactMap { event in
            guard case .workflowExecutionSignaled(let a) = event.attributes else { return nil }
            return (a.signalName, a.input, a.externalWorkflowExecution)
        }
    }
}
