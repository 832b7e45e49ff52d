/// The namespace used when a call names none, as in Temporal.
public let defaultNamespace = "default"

/// One run of a workflow: its workflow id (chosen by the client) and run id (chosen by the
/// engine at start). Temporal's `temporal.api.common.v1.WorkflowExecution`.
public struct WorkflowExecution: Hashable, Sendable, CustomStringConvertible {
    /// The client's id of the workflow; unique among the open runs of a namespace.
    public var workflowID: String
    /// The run's id: a random 128-bit UUID in its usual text form. Empty in a request means
    /// "the current run of `workflowID`".
    public var runID: String

    /// An execution; leave `runID` empty to name the current run of `workflowID`.
    public init(workflowID: String, runID: String = "") {
        self.workflowID = workflowID
        self.runID = runID
    }

    public var description: String { "\(workflowID)/\(runID)" }
}

/// The status of a workflow execution (Temporal's `WorkflowExecutionStatus`).
public enum WorkflowExecutionStatus: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// Open: the execution can still make progress.
    case running = 1
    /// Closed by a `CompleteWorkflowExecution` command.
    case completed = 2
    /// Closed by a `FailWorkflowExecution` command.
    case failed = 3
    /// Closed by a `CancelWorkflowExecution` command.
    case canceled = 4
    /// Closed by ``SpoolEngine/terminateWorkflowExecution(namespace:execution:reason:details:identity:)``.
    case terminated = 5
    /// Closed by a `ContinueAsNewWorkflowExecution` command; a new run carries on.
    case continuedAsNew = 6
    /// Closed because its run timeout passed.
    case timedOut = 7

    /// Whether the execution is closed.
    public var isClosed: Bool { self != .running }

    public var description: String {
        switch self {
        case .running: "Running"
        case .completed: "Completed"
        case .failed: "Failed"
        case .canceled: "Canceled"
        case .terminated: "Terminated"
        case .continuedAsNew: "ContinuedAsNew"
        case .timedOut: "TimedOut"
        }
    }
}

/// What a start does when a closed run with the same workflow id exists (Temporal's
/// `WorkflowIdReusePolicy`).
public enum WorkflowIDReusePolicy: UInt8, Hashable, Sendable, CaseIterable {
    /// Start a new run whatever the previous run's outcome (the default).
    case allowDuplicate = 1
    /// Start a new run only if the previous run failed, was canceled, terminated or timed out.
    case allowDuplicateFailedOnly = 2
    /// Never start a second run with this workflow id.
    case rejectDuplicate = 3
    /// Terminate a running run with this id and start a new one (Temporal's deprecated
    /// `TERMINATE_IF_RUNNING`; the same as ``WorkflowIDConflictPolicy/terminateExisting``).
    case terminateIfRunning = 4
}

/// What a start does when a run with the same workflow id is still open (Temporal's
/// `WorkflowIdConflictPolicy`).
public enum WorkflowIDConflictPolicy: UInt8, Hashable, Sendable, CaseIterable {
    /// Reject the start with ``SpoolError/Code/workflowExecutionAlreadyStarted`` (the default).
    case fail = 1
    /// Return the open run instead of starting one.
    case useExisting = 2
    /// Terminate the open run and start a new one, in one durable append.
    case terminateExisting = 3
}

/// Which timeout fired (Temporal's `TimeoutType`).
public enum TimeoutType: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// The task was started but not closed in time (one attempt).
    case startToClose = 1
    /// The task waited in its queue too long.
    case scheduleToStart = 2
    /// The activity, all attempts together, took too long.
    case scheduleToClose = 3
    /// The activity did not heartbeat in time.
    case heartbeat = 4

    public var description: String {
        switch self {
        case .startToClose: "StartToClose"
        case .scheduleToStart: "ScheduleToStart"
        case .scheduleToClose: "ScheduleToClose"
        case .heartbeat: "Heartbeat"
        }
    }
}

/// Why an activity stopped being retried (Temporal's `RetryState`).
public enum RetryState: UInt8, Hashable, Sendable, CaseIterable {
    /// Not applicable (a success, a cancellation).
    case unspecified = 0
    /// Retries continue (never written in an outcome event).
    case inProgress = 1
    /// The failure's type is one of the policy's non-retryable types, or it said it is non-retryable.
    case nonRetryableFailure = 2
    /// A timeout that is never retried (schedule-to-start, schedule-to-close) ended it, or the next
    /// attempt would have started after the schedule-to-close deadline.
    case timeout = 3
    /// The policy's maximum attempts were used.
    case maximumAttemptsReached = 4
    /// The activity has no retry policy.
    case retryPolicyNotSet = 5
    /// Cancellation of the activity was requested.
    case cancelRequested = 7
}

/// Why a workflow task failed (Temporal's `WorkflowTaskFailedCause`, the values Spool uses).
public enum WorkflowTaskFailedCause: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// A command came in that the execution could not take (a close command while new events wait).
    case unhandledCommand = 1
    /// A `ScheduleActivityTask` command is malformed (empty id or type, bad timeouts or retry policy).
    case badScheduleActivityAttributes = 2
    /// A `RequestCancelActivityTask` command names no pending activity.
    case badRequestCancelActivityAttributes = 3
    /// A `StartTimer` command is malformed (empty id, timeout not positive).
    case badStartTimerAttributes = 4
    /// A `CancelTimer` command names no pending timer.
    case badCancelTimerAttributes = 5
    /// A `RecordMarker` command has no name.
    case badRecordMarkerAttributes = 6
    /// A `CompleteWorkflowExecution` command is not the last command.
    case badCompleteWorkflowExecutionAttributes = 7
    /// A `FailWorkflowExecution` command is not the last command.
    case badFailWorkflowExecutionAttributes = 8
    /// A `CancelWorkflowExecution` command is not the last command.
    case badCancelWorkflowExecutionAttributes = 9
    /// A `ContinueAsNewWorkflowExecution` command is malformed or not the last command.
    case badContinueAsNewAttributes = 12
    /// A `StartTimer` command reuses the id of a pending timer.
    case startTimerDuplicateID = 13
    /// The worker reported a failure of its own (an unknown workflow type, a panic).
    case workflowWorkerUnhandledFailure = 17
    /// A `ScheduleActivityTask` command reuses the id of a pending activity.
    case scheduleActivityDuplicateID = 29
    /// The execution was terminated while the task was started.
    case forceCloseCommand = 24
    /// The sticky worker's cache was reset.
    case resetStickyTaskQueue = 14
    // The causes below were added later; their stored values are 100 + Temporal's number.
    /// A `RequestCancelExternalWorkflowExecution` command is malformed.
    case badRequestCancelExternalWorkflowExecutionAttributes = 110
    /// A `SignalExternalWorkflowExecution` command is malformed.
    case badSignalWorkflowExecutionAttributes = 115
    /// A `StartChildWorkflowExecution` command is malformed.
    case badStartChildExecutionAttributes = 116
    /// The task failed because the namespace failed over.
    case failoverCloseCommand = 118
    /// A signal's input is too large.
    case badSignalInputSize = 119
    /// The run was reset while the task was started.
    case resetWorkflow = 120
    /// The worker's binary is marked bad.
    case badBinary = 121
    /// An `UpsertWorkflowSearchAttributes` command is malformed.
    case badSearchAttributes = 123
    /// Replaying the history took another path than the one recorded (the SDK's non-determinism error).
    case nonDeterministicError = 124
    /// A `ModifyWorkflowProperties` command is malformed.
    case badModifyWorkflowPropertiesAttributes = 125
    /// Too many pending child workflows.
    case pendingChildWorkflowsLimitExceeded = 126
    /// Too many pending activities.
    case pendingActivitiesLimitExceeded = 127
    /// Too many pending signals to other workflows.
    case pendingSignalsLimitExceeded = 128
    /// Too many pending cancel requests to other workflows.
    case pendingRequestCancelLimitExceeded = 129
    /// An update message is malformed.
    case badUpdateWorkflowExecutionMessage = 130
    /// An update arrived that the workflow did not handle.
    case unhandledUpdate = 131
    /// The completion was larger than the server accepts.
    case grpcMessageTooLarge = 136

    /// The value of Temporal's `WorkflowTaskFailedCause` enum (`temporal.api.enums.v1`) for this
    /// cause. The stored raw values predate this mapping and differ from Temporal's numbers from 11 on.
    public var temporalValue: Int {
        switch self {
        case .unhandledCommand, .badScheduleActivityAttributes, .badRequestCancelActivityAttributes, .badStartTimerAttributes,
             .badCancelTimerAttributes, .badRecordMarkerAttributes, .badCompleteWorkflowExecutionAttributes,
             .badFailWorkflowExecutionAttributes, .badCancelWorkflowExecutionAttributes:
            Int(rawValue)
        case .badContinueAsNewAttributes: 11
        case .startTimerDuplicateID: 12
        case .resetStickyTaskQueue: 13
        case .workflowWorkerUnhandledFailure: 14
        case .forceCloseCommand: 17
        case .scheduleActivityDuplicateID: 22
        default: Int(rawValue) - 100
        }
    }

    /// The cause Temporal's number `temporalValue` names; nil for 0 (unspecified) and numbers this
    /// engine does not know.
    public init?(temporalValue: Int) {
        guard let cause = Self.allCases.first(where: { $0.temporalValue == temporalValue }) else { return nil }
        self = cause
    }

    public var description: String {
        switch self {
        case .unhandledCommand: "UnhandledCommand"
        case .badScheduleActivityAttributes: "BadScheduleActivityAttributes"
        case .badRequestCancelActivityAttributes: "BadRequestCancelActivityAttributes"
        case .badStartTimerAttributes: "BadStartTimerAttributes"
        case .badCancelTimerAttributes: "BadCancelTimerAttributes"
        case .badRecordMarkerAttributes: "BadRecordMarkerAttributes"
        case .badCompleteWorkflowExecutionAttributes: "BadCompleteWorkflowExecutionAttributes"
        case .badFailWorkflowExecutionAttributes: "BadFailWorkflowExecutionAttributes"
        case .badCancelWorkflowExecutionAttributes: "BadCancelWorkflowExecutionAttributes"
        case .badContinueAsNewAttributes: "BadContinueAsNewAttributes"
        case .startTimerDuplicateID: "StartTimerDuplicateId"
        case .workflowWorkerUnhandledFailure: "WorkflowWorkerUnhandledFailure"
        case .scheduleActivityDuplicateID: "ScheduleActivityDuplicateId"
        case .forceCloseCommand: "ForceCloseCommand"
        case .resetStickyTaskQueue: "ResetStickyTaskQueue"
        case .badRequestCancelExternalWorkflowExecutionAttributes: "BadRequestCancelExternalWorkflowExecutionAttributes"
        case .badSignalWorkflowExecutionAttributes: "BadSignalWorkflowExecutionAttributes"
        case .badStartChildExecutionAttributes: "BadStartChildExecutionAttributes"
        case .failoverCloseCommand: "FailoverCloseCommand"
        case .badSignalInputSize: "BadSignalInputSize"
        case .resetWorkflow: "ResetWorkflow"
        case .badBinary: "BadBinary"
        case .badSearchAttributes: "BadSearchAttributes"
        case .nonDeterministicError: "NonDeterministicError"
        case .badModifyWorkflowPropertiesAttributes: "BadModifyWorkflowPropertiesAttributes"
        case .pendingChildWorkflowsLimitExceeded: "PendingChildWorkflowsLimitExceeded"
        case .pendingActivitiesLimitExceeded: "PendingActivitiesLimitExceeded"
        case .pendingSignalsLimitExceeded: "PendingSignalsLimitExceeded"
        case .pendingRequestCancelLimitExceeded: "PendingRequestCancelLimitExceeded"
        case .badUpdateWorkflowExecutionMessage: "BadUpdateWorkflowExecutionMessage"
        case .unhandledUpdate: "UnhandledUpdate"
        case .grpcMessageTooLarge: "GrpcMessageTooLarge"
        }
    }
}
