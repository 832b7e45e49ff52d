// Workflows that act on other workflows (issue 19, points 1 and 2): the commands that start a
// child workflow, signal another workflow or ask it to cancel, their history events, and the
// state a run keeps about its parent, its pending children and its pending requests. Shaped after
// Temporal's `temporal.api.command.v1` and `temporal.api.history.v1` messages (Swift casing).

/// What happens to a child workflow when its parent closes, for any reason (Temporal's
/// `ParentClosePolicy`, same numbers).
public enum ParentClosePolicy: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// Not set: the server's default, ``terminate``.
    case unspecified = 0
    /// The child is terminated.
    case terminate = 1
    /// The child goes on alone.
    case abandon = 2
    /// The child is asked to cancel.
    case requestCancel = 3

    /// The policy applied: ``unspecified`` is ``terminate``, as in Temporal.
    public var effective: ParentClosePolicy { self == .unspecified ? .terminate : self }

    /// Temporal's name of the policy, such as `"Terminate"`.
    public var description: String {
        switch self {
        case .unspecified: "Unspecified"
        case .terminate: "Terminate"
        case .abandon: "Abandon"
        case .requestCancel: "RequestCancel"
        }
    }
}

/// Why a child workflow could not be started (Temporal's `StartChildWorkflowExecutionFailedCause`).
public enum StartChildWorkflowExecutionFailedCause: UInt8, Hashable, Sendable, CaseIterable {
    /// Not set.
    case unspecified = 0
    /// A run with the child's workflow id is open, or the id reuse policy refuses a new run.
    case workflowAlreadyExists = 1
    /// The child's namespace does not exist.
    case namespaceNotFound = 2
}

/// Why a signal to another workflow failed (Temporal's `SignalExternalWorkflowExecutionFailedCause`).
public enum SignalExternalWorkflowExecutionFailedCause: UInt8, Hashable, Sendable, CaseIterable {
    /// Not set.
    case unspecified = 0
    /// No open run matches (no such workflow, the run closed, or — with `childWorkflowOnly` —
    /// the run is not a child of the sender).
    case externalWorkflowExecutionNotFound = 1
    /// The target namespace does not exist.
    case namespaceNotFound = 2
}

/// Why a cancel request to another workflow failed (Temporal's `CancelExternalWorkflowExecutionFailedCause`).
public enum CancelExternalWorkflowExecutionFailedCause: UInt8, Hashable, Sendable, CaseIterable {
    /// Not set.
    case unspecified = 0
    /// No run matches (or — with `childWorkflowOnly` — it is not a child of the sender).
    case externalWorkflowExecutionNotFound = 1
    /// The target namespace does not exist.
    case namespaceNotFound = 2
}

// MARK: Commands

/// The fields of ``Command/startChildWorkflowExecution(_:)`` (Temporal's
/// `StartChildWorkflowExecutionCommandAttributes`).
public struct StartChildWorkflowExecutionCommandAttributes: Hashable, Sendable {
    /// The child's namespace; empty means the parent's. Spool starts children only in the
    /// parent's namespace (another one fails the workflow task).
    public var namespace: String
    /// The child's workflow id; not empty.
    public var workflowID: String
    /// The child's workflow type; not empty.
    public var workflowType: String
    /// The child's task queue; empty means the parent's.
    public var taskQueue: String
    /// The child's input.
    public var input: Payloads?
    /// The child's execution timeout (all its runs); nil: none.
    public var workflowExecutionTimeout: Duration?
    /// The child's run timeout; nil: none (the execution timeout when that is set).
    public var workflowRunTimeout: Duration?
    /// The child's workflow task timeout; nil: the engine's default.
    public var workflowTaskTimeout: Duration?
    /// What happens to the child when this run closes.
    public var parentClosePolicy: ParentClosePolicy
    /// Opaque data for the workflow, echoed in the start-failed event (Temporal's deprecated `control`).
    public var control: String
    /// Whether a new run may use the child's workflow id after earlier runs closed.
    public var workflowIDReusePolicy: WorkflowIDReusePolicy
    /// How a failed or timed-out child run is retried as a whole; nil: it is not.
    public var retryPolicy: RetryPolicy?
    /// The child's cron schedule, or empty.
    public var cronSchedule: String
    /// Context for the child (tracing, auth), recorded in its WorkflowExecutionStarted.
    public var header: Header
    /// The child's memo.
    public var memo: [String: Payload]
    /// The child's search attributes.
    public var searchAttributes: [String: Payload]
    /// The child's priority; each unset field is the parent's (Temporal's inheritance).
    public var priority: Priority
    /// A summary and details for people reading the history, recorded on the initiated event
    /// and on the child's WorkflowExecutionStarted.
    public var userMetadata: UserMetadata?

    /// The fields of a `StartChildWorkflowExecution` command.
    public init(namespace: String = "", workflowID: String, workflowType: String, taskQueue: String = "", input: Payloads? = nil,
                workflowExecutionTimeout: Duration? = nil, workflowRunTimeout: Duration? = nil, workflowTaskTimeout: Duration? = nil,
                parentClosePolicy: ParentClosePolicy = .unspecified, control: String = "",
                workflowIDReusePolicy: WorkflowIDReusePolicy = .allowDuplicate, retryPolicy: RetryPolicy? = nil,
                cronSchedule: String = "", header: Header = Header(), memo: [String: Payload] = [:],
                searchAttributes: [String: Payload] = [:], priority: Priority = Priority(), userMetadata: UserMetadata? = nil) {
        self.namespace = namespace
        self.workflowID = workflowID
        self.workflowType = workflowType
        self.taskQueue = taskQueue
        self.input = input
        self.workflowExecutionTimeout = workflowExecutionTimeout
        self.workflowRunTimeout = workflowRunTimeout
        self.workflowTaskTimeout = workflowTaskTimeout
        self.parentClosePolicy = parentClosePolicy
        self.control = control
        self.workflowIDReusePolicy = workflowIDReusePolicy
        self.retryPolicy = retryPolicy
        self.cronSchedule = cronSchedule
        self.header = header
        self.memo = memo
        self.searchAttributes = searchAttributes
        self.priority = priority
        self.userMetadata = userMetadata
    }
}

/// The fields of ``Command/signalExternalWorkflowExecution(_:)`` (Temporal's
/// `SignalExternalWorkflowExecutionCommandAttributes`).
public struct SignalExternalWorkflowExecutionCommandAttributes: Hashable, Sendable {
    /// The target's namespace; empty means the sender's (the only one Spool signals).
    public var namespace: String
    /// The target: a workflow id, and a run id or empty for the id's current run.
    public var execution: WorkflowExecution
    /// The signal's name; not empty.
    public var signalName: String
    /// The signal's arguments.
    public var input: Payloads?
    /// Opaque data echoed in the outcome events.
    public var control: String
    /// Deliver only if the target is a child of the sender.
    public var childWorkflowOnly: Bool
    /// Context for the signal, recorded in the target's WorkflowExecutionSignaled.
    public var header: Header

    /// The fields of a `SignalExternalWorkflowExecution` command.
    public init(namespace: String = "", execution: WorkflowExecution, signalName: String, input: Payloads? = nil,
                control: String = "", childWorkflowOnly: Bool = false, header: Header = Header()) {
        self.namespace = namespace
        self.execution = execution
        self.signalName = signalName
        self.input = input
        self.control = control
        self.childWorkflowOnly = childWorkflowOnly
        self.header = header
    }
}

/// The fields of ``Command/requestCancelExternalWorkflowExecution(_:)`` (Temporal's
/// `RequestCancelExternalWorkflowExecutionCommandAttributes`).
public struct RequestCancelExternalWorkflowExecutionCommandAttributes: Hashable, Sendable {
    /// The target's namespace; empty means the sender's (the only one Spool reaches).
    public var namespace: String
    /// The target: a workflow id, and a run id or empty for the id's current run.
    public var execution: WorkflowExecution
    /// Opaque data echoed in the outcome events.
    public var control: String
    /// Ask only if the target is a child of the sender.
    public var childWorkflowOnly: Bool
    /// Why; recorded as the cause of the target's WorkflowExecutionCancelRequested.
    public var reason: String

    /// The fields of a `RequestCancelExternalWorkflowExecution` command.
    public init(namespace: String = "", execution: WorkflowExecution, control: String = "", childWorkflowOnly: Bool = false,
                reason: String = "") {
        self.namespace = namespace
        self.execution = execution
        self.control = control
        self.childWorkflowOnly = childWorkflowOnly
        self.reason = reason
    }
}

// MARK: Events

/// A `StartChildWorkflowExecution` command was accepted (event 29).
public struct StartChildWorkflowExecutionInitiatedEventAttributes: Hashable, Sendable {
    /// The child's namespace.
    public var namespace: String
    /// The child's workflow id.
    public var workflowID: String
    /// The child's workflow type.
    public var workflowType: String
    /// The child's task queue.
    public var taskQueue: String
    /// The child's input.
    public var input: Payloads?
    /// The child's execution timeout; nil: none.
    public var workflowExecutionTimeout: Duration?
    /// The child's run timeout; nil: none.
    public var workflowRunTimeout: Duration?
    /// The child's workflow task timeout.
    public var workflowTaskTimeout: Duration?
    /// What happens to the child when the parent closes.
    public var parentClosePolicy: ParentClosePolicy
    /// The command's control data.
    public var control: String
    /// The workflow task whose command initiated it.
    public var workflowTaskCompletedEventID: Int64
    /// The child's workflow id reuse policy.
    public var workflowIDReusePolicy: WorkflowIDReusePolicy
    /// The child's retry policy.
    public var retryPolicy: RetryPolicy?
    /// The child's cron schedule.
    public var cronSchedule: String
    /// The child's header.
    public var header: Header
    /// The child's memo.
    public var memo: [String: Payload]
    /// The child's search attributes.
    public var searchAttributes: [String: Payload]
    /// The child's priority as the command gave it (the child's start merges the parent's under it).
    public var priority: Priority
}

/// The child could not be started (event 30).
public struct StartChildWorkflowExecutionFailedEventAttributes: Hashable, Sendable {
    /// The child's namespace.
    public var namespace: String
    /// The child's workflow id.
    public var workflowID: String
    /// The child's workflow type.
    public var workflowType: String
    /// Why.
    public var cause: StartChildWorkflowExecutionFailedCause
    /// The command's control data.
    public var control: String
    /// The StartChildWorkflowExecutionInitiated event.
    public var initiatedEventID: Int64
    /// The workflow task whose command initiated it.
    public var workflowTaskCompletedEventID: Int64
}

/// The child's first run started (event 31).
public struct ChildWorkflowExecutionStartedEventAttributes: Hashable, Sendable {
    /// The child's namespace.
    public var namespace: String
    /// The StartChildWorkflowExecutionInitiated event.
    public var initiatedEventID: Int64
    /// The child's workflow id and first run id.
    public var workflowExecution: WorkflowExecution
    /// The child's workflow type.
    public var workflowType: String
    /// The child's header.
    public var header: Header
}

/// How a child closed, as its parent's history records it (events 32–36): the fields all five
/// events share, and the outcome's own.
public struct ChildWorkflowExecutionClosedEventAttributes: Hashable, Sendable {
    /// How the child closed, and what it returned.
    public enum Outcome: Hashable, Sendable {
        /// ChildWorkflowExecutionCompleted (32) with the child's result.
        case completed(result: Payloads?)
        /// ChildWorkflowExecutionFailed (33) with the child's failure and retry state.
        case failed(failure: Failure, retryState: RetryState)
        /// ChildWorkflowExecutionCanceled (34) with the child's details.
        case canceled(details: Payloads?)
        /// ChildWorkflowExecutionTimedOut (35) with the child's retry state.
        case timedOut(retryState: RetryState)
        /// ChildWorkflowExecutionTerminated (36).
        case terminated
    }
    /// The outcome and its fields.
    public var outcome: Outcome
    /// The child's namespace.
    public var namespace: String
    /// The child's workflow id and the run id of its run that closed.
    public var workflowExecution: WorkflowExecution
    /// The child's workflow type.
    public var workflowType: String
    /// The StartChildWorkflowExecutionInitiated event.
    public var initiatedEventID: Int64
    /// The ChildWorkflowExecutionStarted event.
    public var startedEventID: Int64
}

/// A `SignalExternalWorkflowExecution` command was accepted (event 37).
public struct SignalExternalWorkflowExecutionInitiatedEventAttributes: Hashable, Sendable {
    /// The workflow task whose command initiated it.
    public var workflowTaskCompletedEventID: Int64
    /// The target's namespace.
    public var namespace: String
    /// The target (run id empty: the current run).
    public var workflowExecution: WorkflowExecution
    /// The signal's name.
    public var signalName: String
    /// The signal's arguments.
    public var input: Payloads?
    /// The command's control data.
    public var control: String
    /// Whether only a child of the sender may receive it.
    public var childWorkflowOnly: Bool
    /// The signal's header.
    public var header: Header
}

/// The signal could not be delivered (event 38).
public struct SignalExternalWorkflowExecutionFailedEventAttributes: Hashable, Sendable {
    /// Why.
    public var cause: SignalExternalWorkflowExecutionFailedCause
    /// The workflow task whose command initiated the signal.
    public var workflowTaskCompletedEventID: Int64
    /// The target's namespace.
    public var namespace: String
    /// The target as the command named it.
    public var workflowExecution: WorkflowExecution
    /// The SignalExternalWorkflowExecutionInitiated event.
    public var initiatedEventID: Int64
    /// The command's control data.
    public var control: String
}

/// The signal reached the target (event 39).
public struct ExternalWorkflowExecutionSignaledEventAttributes: Hashable, Sendable {
    /// The SignalExternalWorkflowExecutionInitiated event.
    public var initiatedEventID: Int64
    /// The target's namespace.
    public var namespace: String
    /// The target as the command named it.
    public var workflowExecution: WorkflowExecution
    /// The command's control data.
    public var control: String
}

/// A `RequestCancelExternalWorkflowExecution` command was accepted (event 22).
public struct RequestCancelExternalWorkflowExecutionInitiatedEventAttributes: Hashable, Sendable {
    /// The workflow task whose command initiated it.
    public var workflowTaskCompletedEventID: Int64
    /// The target's namespace.
    public var namespace: String
    /// The target (run id empty: the current run).
    public var workflowExecution: WorkflowExecution
    /// The command's control data.
    public var control: String
    /// Whether only a child of the sender may be asked.
    public var childWorkflowOnly: Bool
    /// Why.
    public var reason: String
}

/// The cancel request could not be delivered (event 23).
public struct RequestCancelExternalWorkflowExecutionFailedEventAttributes: Hashable, Sendable {
    /// Why.
    public var cause: CancelExternalWorkflowExecutionFailedCause
    /// The workflow task whose command initiated the request.
    public var workflowTaskCompletedEventID: Int64
    /// The target's namespace.
    public var namespace: String
    /// The target as the command named it.
    public var workflowExecution: WorkflowExecution
    /// The RequestCancelExternalWorkflowExecutionInitiated event.
    public var initiatedEventID: Int64
    /// The command's control data.
    public var control: String
}

/// The cancel request reached the target (event 24).
public struct ExternalWorkflowExecutionCancelRequestedEventAttributes: Hashable, Sendable {
    /// The RequestCancelExternalWorkflowExecutionInitiated event.
    public var initiatedEventID: Int64
    /// The target's namespace.
    public var namespace: String
    /// The target as the command named it.
    public var workflowExecution: WorkflowExecution
}

/// The run's parent, as its WorkflowExecutionStarted records it (Temporal's
/// `parent_workflow_namespace`, `parent_workflow_execution`, `parent_initiated_event_id`,
/// `root_workflow_execution`).
public struct ParentExecutionInfo: Hashable, Sendable {
    /// The parent's namespace.
    public var namespace: String
    /// The parent run.
    public var execution: WorkflowExecution
    /// The parent's StartChildWorkflowExecutionInitiated event.
    public var initiatedEventID: Int64
    /// The first run of the tree of parents this run belongs to (the parent's root, or the
    /// parent itself when it has no parent).
    public var rootExecution: WorkflowExecution

    /// A parent link.
    public init(namespace: String, execution: WorkflowExecution, initiatedEventID: Int64, rootExecution: WorkflowExecution) {
        self.namespace = namespace
        self.execution = execution
        self.initiatedEventID = initiatedEventID
        self.rootExecution = rootExecution
    }
}

/// A child the run started that has not closed yet (Temporal's `PendingChildExecutionInfo`).
public struct PendingChildExecutionInfo: Hashable, Sendable {
    /// The child's workflow id.
    public var workflowID: String
    /// The child's first run.
    public var runID: String
    /// The child's workflow type.
    public var workflowTypeName: String
    /// The parent's StartChildWorkflowExecutionInitiated event.
    public var initiatedID: Int64
    /// What happens to the child when the parent closes.
    public var parentClosePolicy: ParentClosePolicy

    /// A pending child's summary.
    public init(workflowID: String, runID: String, workflowTypeName: String, initiatedID: Int64, parentClosePolicy: ParentClosePolicy) {
        self.workflowID = workflowID
        self.runID = runID
        self.workflowTypeName = workflowTypeName
        self.initiatedID = initiatedID
        self.parentClosePolicy = parentClosePolicy
    }
}

extension ChildWorkflowExecutionClosedEventAttributes.Outcome {
    /// The event type this outcome is written as.
    public var eventType: EventType {
        switch self {
        case .completed: .childWorkflowExecutionCompleted
        case .failed: .childWorkflowExecutionFailed
        case .canceled: .childWorkflowExecutionCanceled
        case .timedOut: .childWorkflowExecutionTimedOut
        case .terminated: .childWorkflowExecutionTerminated
        }
    }
}

extension Command {
    /// Whether the command starts a child workflow.
    var isStartChild: Bool {
        if case .startChildWorkflowExecution = self { return true }
        return false
    }
}
