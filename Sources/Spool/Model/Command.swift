/// What a workflow asks the engine to do, returned by a worker when it completes a workflow task
/// (Temporal's `temporal.api.command.v1.Command`). Commands are applied in order, all or none:
/// an invalid one fails the workflow task and changes nothing else.
public enum Command: Hashable, Sendable {
    /// Schedule an activity (→ ActivityTaskScheduled).
    case scheduleActivityTask(ScheduleActivityTaskCommandAttributes)
    /// Ask a pending activity to cancel (→ ActivityTaskCancelRequested, and ActivityTaskCanceled
    /// at once when it has not started).
    case requestCancelActivityTask(RequestCancelActivityTaskCommandAttributes)
    /// Start a user timer (→ TimerStarted, later TimerFired).
    case startTimer(StartTimerCommandAttributes)
    /// Cancel a pending user timer (→ TimerCanceled).
    case cancelTimer(CancelTimerCommandAttributes)
    /// Record a marker (→ MarkerRecorded).
    case recordMarker(RecordMarkerCommandAttributes)
    /// Close the run with a result (→ WorkflowExecutionCompleted). Must be the last command.
    case completeWorkflowExecution(CompleteWorkflowExecutionCommandAttributes)
    /// Close the run with a failure (→ WorkflowExecutionFailed). Must be the last command.
    case failWorkflowExecution(FailWorkflowExecutionCommandAttributes)
    /// Close the run as canceled (→ WorkflowExecutionCanceled). Must be the last command.
    case cancelWorkflowExecution(CancelWorkflowExecutionCommandAttributes)
    /// Close the run and start a new one with the same workflow id
    /// (→ WorkflowExecutionContinuedAsNew). Must be the last command.
    case continueAsNewWorkflowExecution(ContinueAsNewWorkflowExecutionCommandAttributes)
    /// Merge search attributes into the run's (→ UpsertWorkflowSearchAttributes).
    case upsertWorkflowSearchAttributes(UpsertWorkflowSearchAttributesCommandAttributes)
    /// Merge memo fields into the run's memo (→ WorkflowPropertiesModified).
    case modifyWorkflowProperties(ModifyWorkflowPropertiesCommandAttributes)
    /// Process the completion's protocol message with this id here, among the commands
    /// (→ WorkflowExecutionUpdateAccepted or …Completed for an update's acceptance or response;
    /// nothing for a rejection).
    case protocolMessage(ProtocolMessageCommandAttributes)
    /// Start a child workflow (→ StartChildWorkflowExecutionInitiated, then
    /// ChildWorkflowExecutionStarted or StartChildWorkflowExecutionFailed).
    case startChildWorkflowExecution(StartChildWorkflowExecutionCommandAttributes)
    /// Signal another workflow (→ SignalExternalWorkflowExecutionInitiated, then
    /// ExternalWorkflowExecutionSignaled or SignalExternalWorkflowExecutionFailed).
    case signalExternalWorkflowExecution(SignalExternalWorkflowExecutionCommandAttributes)
    /// Ask another workflow to cancel (→ RequestCancelExternalWorkflowExecutionInitiated, then
    /// ExternalWorkflowExecutionCancelRequested or RequestCancelExternalWorkflowExecutionFailed).
    case requestCancelExternalWorkflowExecution(RequestCancelExternalWorkflowExecutionCommandAttributes)

    /// Whether the command closes the run.
    var isClosing: Bool {
        switch self {
        case .completeWorkflowExecution, .failWorkflowExecution, .cancelWorkflowExecution, .continueAsNewWorkflowExecution: true
        default: false
        }
    }
}

/// The fields of ``Command/scheduleActivityTask(_:)``.
///
/// At least one of `scheduleToCloseTimeout` and `startToCloseTimeout` is required; a missing
/// start-to-close timeout is the schedule-to-close timeout, as in Temporal.
public struct ScheduleActivityTaskCommandAttributes: Hashable, Sendable {
    /// The workflow's id for the activity: not empty, unique among its pending activities.
    public var activityID: String
    /// The activity function to run.
    public var activityType: String
    /// The queue of its tasks; empty means the workflow's task queue.
    public var taskQueue: String
    /// The activity's input.
    public var input: Payloads?
    /// All attempts together; nil or zero: the run timeout (no limit when the run has none).
    /// Either this or ``startToCloseTimeout`` must be set. Every timeout is capped by the run
    /// timeout; ActivityTaskScheduled records the values filled in (Temporal's rules).
    public var scheduleToCloseTimeout: Duration?
    /// Time in the queue per attempt; nil or zero: the schedule-to-close timeout (the run
    /// timeout when that is unset too), and never more than it.
    public var scheduleToStartTimeout: Duration?
    /// One attempt; nil or zero: the schedule-to-close timeout, and never more than it.
    public var startToCloseTimeout: Duration?
    /// Longest gap between heartbeats; nil or zero when the activity need not heartbeat; never
    /// more than the start-to-close timeout.
    public var heartbeatTimeout: Duration?
    /// How failed attempts are retried; nil means Temporal's default policy.
    public var retryPolicy: RetryPolicy?
    /// Ask for the activity's first attempt to come back started in the workflow task's
    /// response (Temporal's eager activity execution), instead of through the queue. Honoured
    /// when the activity's queue is the workflow's; otherwise the task goes on the queue.
    public var requestEagerExecution: Bool
    /// Context for the activity (tracing, auth), recorded in ActivityTaskScheduled and delivered
    /// with each attempt's task.
    public var header: Header
    /// A summary and details for people reading the history (Temporal's `Command.user_metadata`),
    /// recorded on the ActivityTaskScheduled event.
    public var userMetadata: UserMetadata?
    /// The activity's priority; each unset field is the workflow's (Temporal's inheritance).
    /// A bad value fails the workflow task (`badScheduleActivityAttributes`, naming the field).
    public var priority: Priority = Priority()

    /// The fields of a `ScheduleActivityTask` command.
    public init(activityID: String, activityType: String, taskQueue: String = "", input: Payloads? = nil,
                scheduleToCloseTimeout: Duration? = nil, scheduleToStartTimeout: Duration? = nil,
                startToCloseTimeout: Duration? = nil, heartbeatTimeout: Duration? = nil, retryPolicy: RetryPolicy? = nil,
                requestEagerExecution: Bool = false, header: Header = Header(), userMetadata: UserMetadata? = nil) {
        self.header = header
        self.userMetadata = userMetadata
        self.activityID = activityID
        self.activityType = activityType
        self.taskQueue = taskQueue
        self.input = input
        self.scheduleToCloseTimeout = scheduleToCloseTimeout
        self.scheduleToStartTimeout = scheduleToStartTimeout
        self.startToCloseTimeout = startToCloseTimeout
        self.heartbeatTimeout = heartbeatTimeout
        self.retryPolicy = retryPolicy
        self.requestEagerExecution = requestEagerExecution
    }
}

/// The fields of ``Command/requestCancelActivityTask(_:)``.
public struct RequestCancelActivityTaskCommandAttributes: Hashable, Sendable {
    /// The ActivityTaskScheduled event of a pending activity.
    public var scheduledEventID: Int64
    /// The fields of a `RequestCancelActivityTask` command.
    public init(scheduledEventID: Int64) { self.scheduledEventID = scheduledEventID }
}

/// The fields of ``Command/startTimer(_:)``.
public struct StartTimerCommandAttributes: Hashable, Sendable {
    /// The workflow's id for the timer: not empty, unique among its pending timers.
    public var timerID: String
    /// When it fires, from now; must be positive.
    public var startToFireTimeout: Duration
    /// A summary and details for people reading the history (Temporal's `Command.user_metadata`),
    /// recorded on the TimerStarted event.
    public var userMetadata: UserMetadata?
    /// The fields of a `StartTimer` command.
    public init(timerID: String, startToFireTimeout: Duration, userMetadata: UserMetadata? = nil) {
        self.timerID = timerID
        self.userMetadata = userMetadata
        self.startToFireTimeout = startToFireTimeout
    }
}

/// The fields of ``Command/cancelTimer(_:)``.
public struct CancelTimerCommandAttributes: Hashable, Sendable {
    /// The id of a pending timer.
    public var timerID: String
    /// The fields of a `CancelTimer` command.
    public init(timerID: String) { self.timerID = timerID }
}

/// The fields of ``Command/recordMarker(_:)``.
public struct RecordMarkerCommandAttributes: Hashable, Sendable {
    /// The marker's name; not empty.
    public var markerName: String
    /// Its details, by key.
    public var details: [String: Payloads]
    /// A failure to record, if any.
    public var failure: Failure?
    /// The command's header, recorded in MarkerRecorded.
    public var header: Header
    /// The fields of a `RecordMarker` command.
    public init(markerName: String, details: [String: Payloads] = [:], failure: Failure? = nil, header: Header = Header()) {
        self.header = header
        self.markerName = markerName
        self.details = details
        self.failure = failure
    }
}

/// The fields of ``Command/completeWorkflowExecution(_:)``.
public struct CompleteWorkflowExecutionCommandAttributes: Hashable, Sendable {
    /// The workflow's result.
    public var result: Payloads?
    /// The fields of a `CompleteWorkflowExecution` command.
    public init(result: Payloads? = nil) { self.result = result }
}

/// The fields of ``Command/failWorkflowExecution(_:)``.
public struct FailWorkflowExecutionCommandAttributes: Hashable, Sendable {
    /// Why the workflow failed.
    public var failure: Failure
    /// The fields of a `FailWorkflowExecution` command.
    public init(failure: Failure) { self.failure = failure }
}

/// The fields of ``Command/cancelWorkflowExecution(_:)``.
public struct CancelWorkflowExecutionCommandAttributes: Hashable, Sendable {
    /// Details for the WorkflowExecutionCanceled event.
    public var details: Payloads?
    /// The fields of a `CancelWorkflowExecution` command.
    public init(details: Payloads? = nil) { self.details = details }
}

/// The fields of ``Command/continueAsNewWorkflowExecution(_:)``.
public struct ContinueAsNewWorkflowExecutionCommandAttributes: Hashable, Sendable {
    /// The new run's workflow type; empty means this run's.
    public var workflowType: String
    /// The new run's task queue; empty means this run's.
    public var taskQueue: String
    /// The new run's input.
    public var input: Payloads?
    /// The new run's run timeout; nil means this run's.
    public var workflowRunTimeout: Duration?
    /// The new run's workflow task timeout; nil means this run's.
    public var workflowTaskTimeout: Duration?
    /// The new run's header, recorded in WorkflowExecutionContinuedAsNew and in the new run's
    /// WorkflowExecutionStarted.
    public var header: Header
    /// How long the new run waits before its first workflow task (Temporal's
    /// `backoff_start_interval`); nil: not at all.
    public var backoffStartInterval: Duration?
    /// The new run's retry policy; nil: this run's (Temporal's SDKs send the current one).
    public var retryPolicy: RetryPolicy?
    /// Who asks for the continuation; ``ContinueAsNewInitiator/unspecified`` means the workflow.
    public var initiator: ContinueAsNewInitiator
    /// A failure to hand to the new run (its `continuedFailure`).
    public var failure: Failure?
    /// A result to hand to the new run (its `lastCompletionResult`).
    public var lastCompletionResult: Payloads?
    /// The new run's cron schedule; nil: this run's.
    public var cronSchedule: String?
    /// The new run's memo; nil: this run's current memo.
    public var memo: [String: Payload]?
    /// The new run's search attributes; nil: this run's current ones.
    public var searchAttributes: [String: Payload]?
    /// The new run's priority; each unset field is this run's.
    public var priority: Priority = Priority()
    /// The fields of a `ContinueAsNewWorkflowExecution` command.
    public init(workflowType: String = "", taskQueue: String = "", input: Payloads? = nil,
                workflowRunTimeout: Duration? = nil, workflowTaskTimeout: Duration? = nil, header: Header = Header(),
                backoffStartInterval: Duration? = nil, retryPolicy: RetryPolicy? = nil,
                initiator: ContinueAsNewInitiator = .unspecified, failure: Failure? = nil, lastCompletionResult: Payloads? = nil,
                cronSchedule: String? = nil, memo: [String: Payload]? = nil, searchAttributes: [String: Payload]? = nil) {
        self.header = header
        self.backoffStartInterval = backoffStartInterval
        self.retryPolicy = retryPolicy
        self.initiator = initiator
        self.failure = failure
        self.lastCompletionResult = lastCompletionResult
        self.cronSchedule = cronSchedule
        self.memo = memo
        self.searchAttributes = searchAttributes
        self.workflowType = workflowType
        self.taskQueue = taskQueue
        self.input = input
        self.workflowRunTimeout = workflowRunTimeout
        self.workflowTaskTimeout = workflowTaskTimeout
    }
}

/// The fields of ``Command/upsertWorkflowSearchAttributes(_:)``.
public struct UpsertWorkflowSearchAttributesCommandAttributes: Hashable, Sendable {
    /// The attributes to set, by name (at least one). A value equal to Temporal's encoded nil
    /// (``Payload/isTemporalNilOrEmptyList``) removes the attribute.
    public var searchAttributes: [String: Payload]
    /// The fields of an `UpsertWorkflowSearchAttributes` command.
    public init(searchAttributes: [String: Payload]) { self.searchAttributes = searchAttributes }
}

/// The fields of ``Command/modifyWorkflowProperties(_:)``.
public struct ModifyWorkflowPropertiesCommandAttributes: Hashable, Sendable {
    /// The memo fields to set, by key (at least one). A value equal to Temporal's encoded nil
    /// removes the field.
    public var upsertedMemo: [String: Payload]
    /// The fields of a `ModifyWorkflowProperties` command.
    public init(upsertedMemo: [String: Payload]) { self.upsertedMemo = upsertedMemo }
}
