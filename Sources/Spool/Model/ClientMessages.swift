/// What to start (Temporal's `StartWorkflowExecutionRequest`).
public struct StartWorkflowExecutionRequest: Hashable, Sendable {
    /// The namespace; ``defaultNamespace`` unless set.
    public var namespace: String
    /// The client's id for the workflow.
    public var workflowID: String
    /// The workflow definition to run.
    public var workflowType: String
    /// The queue of its workflow tasks.
    public var taskQueue: String
    /// Its input.
    public var input: Payloads?
    /// How long the run may take; nil for no limit.
    public var workflowRunTimeout: Duration?
    /// How long one workflow task may stay started; nil means the engine's default (10 s).
    public var workflowTaskTimeout: Duration?
    /// Who starts it.
    public var identity: String
    /// An id for the request: a retried start with the same id returns the run it started.
    public var requestID: String
    /// What to do when a closed run with this workflow id exists.
    public var workflowIDReusePolicy: WorkflowIDReusePolicy
    /// What to do when an open run with this workflow id exists.
    public var workflowIDConflictPolicy: WorkflowIDConflictPolicy
    /// Start the first workflow task for the caller (a worker of `taskQueue` in this process)
    /// in the same append and return it in the response (Temporal's eager workflow start),
    /// instead of putting it on the queue. `identity` is the worker's.
    public var requestEagerExecution: Bool
    /// Context for the workflow (tracing, auth), recorded in WorkflowExecutionStarted.
    public var header: Header
    /// A summary and details for people reading the history, recorded on WorkflowExecutionStarted.
    public var userMetadata: UserMetadata?
    /// How long the whole chain of runs (retries, cron runs, continue-as-new) may take, counted
    /// from the start; nil for no limit. A run timeout is capped by it, and
    /// is it when unset (Temporal's `workflow_execution_timeout`).
    public var workflowExecutionTimeout: Duration?
    /// How a run that fails or times out is retried as a whole (a new run, attempt + 1, after
    /// the policy's backoff); nil: it is not.
    public var retryPolicy: RetryPolicy?
    /// A cron schedule (five fields or a descriptor such as `@hourly` or `@every 90s`, UTC): the
    /// first workflow task waits for its next time, and each run that closes (other than by
    /// cancel or terminate) starts the next. Empty for none.
    public var cronSchedule: String
    /// The run's memo: data for people and tools, by key, returned by describe and listing.
    public var memo: [String: Payload]
    /// The run's search attributes, by name. Stored and returned as sent; their types, and
    /// queries over them, belong to visibility (issue 20).
    public var searchAttributes: [String: Payload]
    /// How long to wait before the first workflow task (Temporal's `workflow_start_delay`); nil
    /// or zero: no wait. Not with a cron schedule. A plain signal does not end the wait; a
    /// signal-with-start does.
    public var startDelay: Duration?
    /// The run's priority and fairness key, recorded in WorkflowExecutionStarted; its workflow
    /// tasks and (unless they set their own) its activities' tasks are dispatched with it.
    /// Checked by the start: see ``Priority/problem(field:)``.
    public var priority: Priority = Priority()

    /// A start request.
    public init(namespace: String = defaultNamespace, workflowID: String, workflowType: String, taskQueue: String,
                input: Payloads? = nil, workflowRunTimeout: Duration? = nil, workflowTaskTimeout: Duration? = nil,
                identity: String = "", requestID: String = "",
                workflowIDReusePolicy: WorkflowIDReusePolicy = .allowDuplicate,
                workflowIDConflictPolicy: WorkflowIDConflictPolicy = .fail, requestEagerExecution: Bool = false,
                header: Header = Header(), userMetadata: UserMetadata? = nil,
                workflowExecutionTimeout: Duration? = nil, retryPolicy: RetryPolicy? = nil, cronSchedule: String = "",
                memo: [String: Payload] = [:], searchAttributes: [String: Payload] = [:], startDelay: Duration? = nil) {
        self.workflowExecutionTimeout = workflowExecutionTimeout
        self.retryPolicy = retryPolicy
        self.cronSchedule = cronSchedule
        self.memo = memo
        self.searchAttributes = searchAttributes
        self.startDelay = startDelay
        self.header = header
        self.userMetadata = userMetadata
        self.namespace = namespace
        self.workflowID = workflowID
        self.workflowType = workflowType
        self.taskQueue = taskQueue
        self.input = input
        self.workflowRunTimeout = workflowRunTimeout
        self.workflowTaskTimeout = workflowTaskTimeout
        self.identity = identity
        self.requestID = requestID
        self.workflowIDReusePolicy = workflowIDReusePolicy
        self.workflowIDConflictPolicy = workflowIDConflictPolicy
        self.requestEagerExecution = requestEagerExecution
    }
}

/// The outcome of a start.
public struct StartWorkflowExecutionResponse: Hashable, Sendable {
    /// The run: the new one, or the open one (``WorkflowIDConflictPolicy/useExisting``, a retried request id).
    public var runID: String
    /// Whether this call started the run.
    public var started: Bool
    /// The run's first workflow task, started for the caller, when it asked for eager execution
    /// and this call started the run.
    public var eagerWorkflowTask: WorkflowTask? = nil
}

/// A summary of a run (Temporal's `WorkflowExecutionInfo`).
public struct WorkflowExecutionInfo: Hashable, Sendable {
    /// The run.
    public var execution: WorkflowExecution
    /// Its workflow type.
    public var type: String
    /// When it started.
    public var startTime: Timestamp
    /// When it closed; nil while open.
    public var closeTime: Timestamp?
    /// Open or how it closed.
    public var status: WorkflowExecutionStatus
    /// The number of events in its history.
    public var historyLength: Int64
    /// Its task queue.
    public var taskQueue: String
    /// Its current memo.
    public var memo: [String: Payload] = [:]
    /// Its current search attributes.
    public var searchAttributes: [String: Payload] = [:]
    /// When its first workflow task was due: the start time plus the first workflow task's
    /// backoff (Temporal's `execution_time`).
    public var executionTime: Timestamp? = nil
    /// The run of the chain (continue-as-new, retries, cron) it belongs to that came first.
    public var firstRunID: String = ""
    /// The namespace of the run's parent, or empty for a run without one.
    public var parentNamespace: String = ""
    /// The run's parent (the run that started it, or the run it continues, as a child); nil
    /// for a run without one.
    public var parentExecution: WorkflowExecution? = nil
    /// The top of the run's tree of parents (Temporal's `root_execution`): its parent's root, or
    /// the run itself when it has no parent.
    public var rootExecution: WorkflowExecution? = nil
}

/// What a pending activity is doing (Temporal's `PendingActivityState`).
public enum PendingActivityState: UInt8, Hashable, Sendable {
    /// On its queue (or waiting out a retry backoff).
    case scheduled = 1
    /// An attempt is running.
    case started = 2
    /// The workflow asked to cancel it.
    case cancelRequested = 3
}

/// A pending activity (Temporal's `PendingActivityInfo`).
public struct PendingActivityInfo: Hashable, Sendable {
    /// The workflow's id for it.
    public var activityID: String
    /// Its type.
    public var activityType: String
    /// Its ActivityTaskScheduled event.
    public var scheduledEventID: Int64
    /// What it is doing.
    public var state: PendingActivityState
    /// The details of its latest heartbeat.
    public var heartbeatDetails: Payloads?
    /// When it last heartbeated.
    public var lastHeartbeatTime: Timestamp?
    /// When the current attempt started.
    public var lastStartedTime: Timestamp?
    /// The current attempt, from 1.
    public var attempt: Int32
    /// The retry policy's maximum attempts (0: unlimited).
    public var maximumAttempts: Int32
    /// When it was scheduled.
    public var scheduledTime: Timestamp
    /// When the current attempt goes (or went) on the queue.
    public var currentAttemptScheduledTime: Timestamp
    /// When its schedule-to-close timeout fires; nil for none.
    public var expirationTime: Timestamp?
    /// The previous attempt's failure.
    public var lastFailure: Failure?
    /// The worker that last started it.
    public var lastWorkerIdentity: String
}

/// The outstanding workflow task (Temporal's `PendingWorkflowTaskInfo`).
public struct PendingWorkflowTaskInfo: Hashable, Sendable {
    /// Whether a worker has it.
    public var started: Bool
    /// Its WorkflowTaskScheduled event.
    public var scheduledEventID: Int64
    /// When it was scheduled.
    public var scheduledTime: Timestamp
    /// When a worker took it.
    public var startedTime: Timestamp?
    /// The attempt, from 1.
    public var attempt: Int32
    /// The queue it is on (a sticky queue or the run's).
    public var taskQueue: String
}

/// Everything about a run (Temporal's `DescribeWorkflowExecutionResponse`).
public struct DescribeWorkflowExecutionResponse: Hashable, Sendable {
    /// The summary.
    public var executionInfo: WorkflowExecutionInfo
    /// The run timeout.
    public var workflowRunTimeout: Duration?
    /// The workflow task timeout.
    public var workflowTaskTimeout: Duration
    /// Pending activities, in scheduled order.
    public var pendingActivities: [PendingActivityInfo]
    /// The outstanding workflow task.
    public var pendingWorkflowTask: PendingWorkflowTaskInfo?
    /// Pending user timers' ids, in started order.
    public var pendingTimerIDs: [String]
    /// Events waiting for the started workflow task to close.
    public var bufferedEventCount: Int
    /// The sticky queue the last worker named.
    public var stickyTaskQueue: String?
    /// Whether a client asked to cancel the run.
    public var cancelRequested: Bool
    /// The run that continued this one.
    public var newExecutionRunID: String?
    /// The first run of the chain of continue-as-new runs this one belongs to (its own id for a
    /// first run).
    public var firstExecutionRunID: String = ""
    /// The durable transitions of the run so far: the log records that changed it (Temporal's
    /// `state_transition_count`).
    public var stateTransitionCount: Int64 = 0
    /// The chain's execution timeout, nil for none.
    public var workflowExecutionTimeout: Duration? = nil
    /// When the chain's execution timeout ends, nil for never.
    public var executionExpirationTime: Timestamp? = nil
    /// The run's attempt (1, or one more than the run it retries).
    public var attempt: Int32 = 1
    /// Its retry policy, nil for none.
    public var retryPolicy: RetryPolicy? = nil
    /// Its cron schedule, or empty.
    public var cronSchedule: String = ""
    /// The children it started that have not closed, in initiated order (Temporal's
    /// `pending_children`).
    public var pendingChildren: [PendingChildExecutionInfo] = []
}

/// Which events a history read returns (Temporal's `HistoryEventFilterType`).
public enum HistoryEventFilterType: UInt8, Hashable, Sendable {
    /// Every event.
    case allEvent = 1
    /// Only the closing event (waits for it with `waitNewEvent`).
    case closeEvent = 2
}

/// A page of history (Temporal's `GetWorkflowExecutionHistoryResponse`).
public struct GetWorkflowExecutionHistoryResponse: Hashable, Sendable {
    /// The events, in id order.
    public var history: [HistoryEvent]
    /// Pass to the next call for the next page; nil when the history is closed and read to its end.
    /// With `waitNewEvent`, an open run's last page still returns a token to long-poll with.
    public var nextPageToken: [UInt8]?
    /// The run the events belong to (the current run when the request named none).
    public var execution: WorkflowExecution = WorkflowExecution(workflowID: "", runID: "")
}
