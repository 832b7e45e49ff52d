// The attributes of each history event type, named and shaped after Temporal's
// `temporal.api.history.v1` messages (Swift casing: `scheduledEventID` for `scheduled_event_id`).
// Every field Temporal writes from what a client or worker sent is kept, even where Spool does
// not act on it; fields of features Spool does not have yet (parents, children, reset points)
// are left out. The user metadata Temporal keeps on the event itself
// (`HistoryEvent.user_metadata`) is ``HistoryEvent/userMetadata``.

/// The run began (always event 1).
public struct WorkflowExecutionStartedEventAttributes: Hashable, Sendable {
    /// The workflow definition to run.
    public var workflowType: String
    /// The task queue of its workflow tasks (and, by default, of its activities).
    public var taskQueue: String
    /// The workflow's input.
    public var input: Payloads?
    /// How long the run may take; nil for no limit.
    public var workflowRunTimeout: Duration?
    /// How long one workflow task may stay started.
    public var workflowTaskTimeout: Duration
    /// The run this one continues (continue-as-new), or empty.
    public var continuedExecutionRunID: String
    /// The run id of the first run in the chain of continue-as-new runs.
    public var firstExecutionRunID: String
    /// Who started it.
    public var identity: String
    /// The start request's id, for idempotent retries of a start.
    public var requestID: String
    /// The run attempt (1 unless retried as a whole).
    public var attempt: Int32
    /// The start request's header (or, for a continued run, the continue-as-new command's).
    public var header: Header = Header()
    /// How long the whole chain of runs (retries, cron runs, continue-as-new) may take; nil for
    /// no limit (Temporal's `workflow_execution_timeout`).
    public var workflowExecutionTimeout: Duration? = nil
    /// The failure of the run this one continues, when that run failed or timed out (a retry,
    /// or a cron run after a failure); nil otherwise.
    public var continuedFailure: Failure? = nil
    /// The result of the chain's last completed run (cron), or what a continue-as-new command
    /// passed on; nil when there is none.
    public var lastCompletionResult: Payloads? = nil
    /// Why this run started in place of another; ``ContinueAsNewInitiator/unspecified`` for a
    /// run a client started.
    public var initiator: ContinueAsNewInitiator = .unspecified
    /// The run id this run was created with (Temporal keeps it across resets; Spool has none,
    /// so it is the run's own id).
    public var originalExecutionRunID: String = ""
    /// How long after this event the first workflow task is scheduled (a start delay, a retry
    /// backoff, the wait for a cron schedule's next time); nil: at once.
    public var firstWorkflowTaskBackoff: Duration? = nil
    /// When the chain's execution timeout ends; nil for no limit.
    public var workflowExecutionExpirationTime: Timestamp? = nil
    /// How a failed or timed-out run is retried as a whole; nil: it is not.
    public var retryPolicy: RetryPolicy? = nil
    /// The cron schedule the chain follows, or empty.
    public var cronSchedule: String = ""
    /// The run's memo at its start (Temporal's `memo`), by key.
    public var memo: [String: Payload] = [:]
    /// The run's search attributes at its start (Temporal's `search_attributes.indexed_fields`),
    /// by name. Stored and returned as sent; typing and queries belong to visibility.
    public var searchAttributes: [String: Payload] = [:]
    /// The run's priority and fairness key (Temporal's `priority`): the start request's, or for a
    /// continued run the command's merged over the previous run's. Its activities' tasks and its
    /// workflow tasks are dispatched with it.
    public var priority: Priority = Priority()
    /// The parent that started this run as a child (kept by the runs that continue it); nil for
    /// a run without a parent.
    public var parent: ParentExecutionInfo? = nil
}

/// The run completed with a result.
public struct WorkflowExecutionCompletedEventAttributes: Hashable, Sendable {
    /// The workflow's result.
    public var result: Payloads?
    /// The workflow task whose command completed the run.
    public var workflowTaskCompletedEventID: Int64
    /// The next run of a cron schedule, or empty.
    public var newExecutionRunID: String = ""
}

/// The run failed.
public struct WorkflowExecutionFailedEventAttributes: Hashable, Sendable {
    /// Why.
    public var failure: Failure
    /// ``RetryState/inProgress`` when the run is retried, else why not.
    public var retryState: RetryState
    /// The workflow task whose command failed the run.
    public var workflowTaskCompletedEventID: Int64
    /// The run that retries this one (or the next run of its cron schedule), or empty.
    public var newExecutionRunID: String = ""
}

/// The run's run timeout passed.
public struct WorkflowExecutionTimedOutEventAttributes: Hashable, Sendable {
    /// ``RetryState/inProgress`` when the run is retried, ``RetryState/timeout`` when the
    /// chain's execution timeout passed, else why it is not retried.
    public var retryState: RetryState
    /// The run that retries this one (or the next run of its cron schedule), or empty.
    public var newExecutionRunID: String = ""
}

/// A workflow task was created and put on a task queue.
public struct WorkflowTaskScheduledEventAttributes: Hashable, Sendable {
    /// The queue the task went to (the normal queue, or a worker's sticky queue).
    public var taskQueue: String
    /// How long the task may stay started.
    public var startToCloseTimeout: Duration
    /// 1 for the first attempt; grows with each failure or timeout.
    public var attempt: Int32
}

/// A worker took the workflow task.
public struct WorkflowTaskStartedEventAttributes: Hashable, Sendable {
    /// The task's WorkflowTaskScheduled event.
    public var scheduledEventID: Int64
    /// The worker's identity.
    public var identity: String
    /// The poll request's id.
    public var requestID: String
}

/// The worker completed the workflow task with commands (their events follow).
public struct WorkflowTaskCompletedEventAttributes: Hashable, Sendable {
    /// The task's WorkflowTaskScheduled event.
    public var scheduledEventID: Int64
    /// The task's WorkflowTaskStarted event.
    public var startedEventID: Int64
    /// The worker's identity.
    public var identity: String
    /// The worker's binary checksum (deprecated in Temporal in favour of build ids), or empty.
    public var binaryChecksum: String = ""
    /// The worker's build id stamp, when it sent one.
    public var workerVersion: WorkerVersionStamp? = nil
    /// What the SDK says about itself and the flags it used: a Core-based SDK replays with the
    /// same flags, so they must come back exactly.
    public var sdkMetadata: WorkflowTaskCompletedMetadata? = nil
    /// What the worker did without the server (local activity attempts), for metering.
    public var meteringMetadata: MeteringMetadata? = nil
    /// The versioning behavior the worker declared for the workflow.
    public var versioningBehavior: VersioningBehavior = .unspecified
    /// The worker deployment the worker belongs to, or empty.
    public var workerDeploymentName: String = ""
    /// The worker deployment version (`deploymentName.buildId`) of the worker, or empty.
    public var workerDeploymentVersion: String = ""
}

/// The workflow task was not completed in time.
public struct WorkflowTaskTimedOutEventAttributes: Hashable, Sendable {
    /// The task's WorkflowTaskScheduled event.
    public var scheduledEventID: Int64
    /// The task's WorkflowTaskStarted event, 0 when it timed out before it started.
    public var startedEventID: Int64
    /// ``TimeoutType/startToClose``, or ``TimeoutType/scheduleToStart`` on a sticky queue.
    public var timeoutType: TimeoutType
}

/// The workflow task failed: the worker said so, or a command was invalid. The run goes on.
public struct WorkflowTaskFailedEventAttributes: Hashable, Sendable {
    /// The task's WorkflowTaskScheduled event.
    public var scheduledEventID: Int64
    /// The task's WorkflowTaskStarted event.
    public var startedEventID: Int64
    /// Why.
    public var cause: WorkflowTaskFailedCause
    /// Details, such as which command was invalid.
    public var failure: Failure?
    /// The worker's identity.
    public var identity: String
    /// The worker's binary checksum, or empty.
    public var binaryChecksum: String = ""
    /// The worker's build id stamp, when it sent one.
    public var workerVersion: WorkerVersionStamp? = nil
}

/// A `ScheduleActivityTask` command was accepted; the activity's task is on its queue.
public struct ActivityTaskScheduledEventAttributes: Hashable, Sendable {
    /// The workflow's id for the activity, unique among its pending activities.
    public var activityID: String
    /// The activity function to run.
    public var activityType: String
    /// The queue of its tasks.
    public var taskQueue: String
    /// The activity's input.
    public var input: Payloads?
    /// All attempts together; nil for no limit.
    public var scheduleToCloseTimeout: Duration?
    /// Time in the queue per attempt; nil for no limit.
    public var scheduleToStartTimeout: Duration?
    /// One attempt.
    public var startToCloseTimeout: Duration
    /// Longest gap between heartbeats; nil when the activity need not heartbeat.
    public var heartbeatTimeout: Duration?
    /// The workflow task whose command scheduled it.
    public var workflowTaskCompletedEventID: Int64
    /// How failed attempts are retried.
    public var retryPolicy: RetryPolicy
    /// The command's header, delivered with every attempt's task.
    public var header: Header = Header()
    /// The activity's priority (Temporal's `priority`): the command's, each unset field taken
    /// from the workflow's (``Priority/merged(over:)``).
    public var priority: Priority = Priority()
}

/// The activity's last attempt started (written with its outcome, so there is one per activity).
public struct ActivityTaskStartedEventAttributes: Hashable, Sendable {
    /// The activity's ActivityTaskScheduled event.
    public var scheduledEventID: Int64
    /// The worker that ran the last attempt.
    public var identity: String
    /// The poll request's id.
    public var requestID: String
    /// The number of the last attempt, from 1.
    public var attempt: Int32
    /// The failure of the attempt before the last, if any.
    public var lastFailure: Failure?
}

/// The activity completed.
public struct ActivityTaskCompletedEventAttributes: Hashable, Sendable {
    /// The activity's result.
    public var result: Payloads?
    /// The activity's ActivityTaskScheduled event.
    public var scheduledEventID: Int64
    /// Its ActivityTaskStarted event.
    public var startedEventID: Int64
    /// The worker's identity.
    public var identity: String
    /// The worker's build id stamp, when it sent one.
    public var workerVersion: WorkerVersionStamp? = nil
}

/// The activity failed and will not be retried.
public struct ActivityTaskFailedEventAttributes: Hashable, Sendable {
    /// The last attempt's failure.
    public var failure: Failure
    /// The activity's ActivityTaskScheduled event.
    public var scheduledEventID: Int64
    /// Its ActivityTaskStarted event.
    public var startedEventID: Int64
    /// The worker's identity.
    public var identity: String
    /// Why retries stopped.
    public var retryState: RetryState
    /// The worker's build id stamp, when it sent one.
    public var workerVersion: WorkerVersionStamp? = nil
}

/// The activity timed out and will not be retried.
public struct ActivityTaskTimedOutEventAttributes: Hashable, Sendable {
    /// A timeout failure naming the timeout.
    public var failure: Failure
    /// The activity's ActivityTaskScheduled event.
    public var scheduledEventID: Int64
    /// Its ActivityTaskStarted event, 0 when the last attempt never started.
    public var startedEventID: Int64
    /// Why retries stopped.
    public var retryState: RetryState
}

/// The workflow asked to cancel the activity.
public struct ActivityTaskCancelRequestedEventAttributes: Hashable, Sendable {
    /// The activity's ActivityTaskScheduled event.
    public var scheduledEventID: Int64
    /// The workflow task whose command asked.
    public var workflowTaskCompletedEventID: Int64
}

/// The activity was canceled.
public struct ActivityTaskCanceledEventAttributes: Hashable, Sendable {
    /// Details from the worker.
    public var details: Payloads?
    /// The ActivityTaskCancelRequested event.
    public var latestCancelRequestedEventID: Int64
    /// The activity's ActivityTaskScheduled event.
    public var scheduledEventID: Int64
    /// Its ActivityTaskStarted event, 0 when it was canceled before it started.
    public var startedEventID: Int64
    /// The worker's identity.
    public var identity: String
    /// The worker's build id stamp, when it sent one.
    public var workerVersion: WorkerVersionStamp? = nil
}

/// A user timer started.
public struct TimerStartedEventAttributes: Hashable, Sendable {
    /// The workflow's id for the timer.
    public var timerID: String
    /// When it fires, from now.
    public var startToFireTimeout: Duration
    /// The workflow task whose command started it.
    public var workflowTaskCompletedEventID: Int64
}

/// A user timer fired.
public struct TimerFiredEventAttributes: Hashable, Sendable {
    /// The timer's id.
    public var timerID: String
    /// Its TimerStarted event.
    public var startedEventID: Int64
}

/// A user timer was canceled before it fired.
public struct TimerCanceledEventAttributes: Hashable, Sendable {
    /// The timer's id.
    public var timerID: String
    /// Its TimerStarted event.
    public var startedEventID: Int64
    /// The workflow task whose command canceled it.
    public var workflowTaskCompletedEventID: Int64
    /// The worker's identity.
    public var identity: String
}

/// A client asked to cancel the run; the workflow decides what to do.
public struct WorkflowExecutionCancelRequestedEventAttributes: Hashable, Sendable {
    /// Why.
    public var cause: String
    /// Who asked.
    public var identity: String
    /// The RequestCancelExternalWorkflowExecutionInitiated event of the workflow that asked
    /// (a parent's close policy or a command); 0 for a client's request.
    public var externalInitiatedEventID: Int64 = 0
    /// The workflow that asked; nil for a client's request.
    public var externalWorkflowExecution: WorkflowExecution? = nil
}

/// The run was canceled by its workflow.
public struct WorkflowExecutionCanceledEventAttributes: Hashable, Sendable {
    /// The workflow task whose command canceled it.
    public var workflowTaskCompletedEventID: Int64
    /// Details from the workflow.
    public var details: Payloads?
}

/// The workflow recorded a marker (a side effect, a version, a local activity's result).
public struct MarkerRecordedEventAttributes: Hashable, Sendable {
    /// The marker's name.
    public var markerName: String
    /// Its details, by key.
    public var details: [String: Payloads]
    /// The workflow task whose command recorded it.
    public var workflowTaskCompletedEventID: Int64
    /// A failure the marker records, if any.
    public var failure: Failure?
    /// The command's header.
    public var header: Header = Header()
}

/// A signal reached the run.
public struct WorkflowExecutionSignaledEventAttributes: Hashable, Sendable {
    /// The signal's name.
    public var signalName: String
    /// Its arguments.
    public var input: Payloads?
    /// Who sent it.
    public var identity: String
    /// The signal request's header.
    public var header: Header = Header()
    /// The signal request's id, or empty.
    public var requestID: String = ""
    /// The workflow that sent the signal with a SignalExternalWorkflowExecution command; nil
    /// for a client's signal.
    public var externalWorkflowExecution: WorkflowExecution? = nil
}

/// The run was terminated by a client (the workflow had no say).
public struct WorkflowExecutionTerminatedEventAttributes: Hashable, Sendable {
    /// Why.
    public var reason: String
    /// Details.
    public var details: Payloads?
    /// Who terminated it.
    public var identity: String
}

/// The run closed and a new run of the same workflow id started in its place.
public struct WorkflowExecutionContinuedAsNewEventAttributes: Hashable, Sendable {
    /// The new run.
    public var newExecutionRunID: String
    /// The new run's workflow type.
    public var workflowType: String
    /// The new run's task queue.
    public var taskQueue: String
    /// The new run's input.
    public var input: Payloads?
    /// The new run's run timeout.
    public var workflowRunTimeout: Duration?
    /// The new run's workflow task timeout.
    public var workflowTaskTimeout: Duration
    /// The workflow task whose command continued the run.
    public var workflowTaskCompletedEventID: Int64
    /// The new run's header (from the command).
    public var header: Header = Header()
    /// How long the new run waits before its first workflow task; nil: not at all.
    public var backoffStartInterval: Duration? = nil
    /// Why the run continued (the workflow, a retry, a cron schedule).
    public var initiator: ContinueAsNewInitiator = .workflow
    /// The failure the command passed on, if any.
    public var failure: Failure? = nil
    /// The last completion result the command passed on, if any.
    public var lastCompletionResult: Payloads? = nil
    /// The new run's memo.
    public var memo: [String: Payload] = [:]
    /// The new run's search attributes.
    public var searchAttributes: [String: Payload] = [:]
}

/// The workflow changed its search attributes (Temporal's
/// `UpsertWorkflowSearchAttributesEventAttributes`): the keys are merged into the run's current
/// set; a key whose value is Temporal's nil or empty-list payload is removed.
public struct UpsertWorkflowSearchAttributesEventAttributes: Hashable, Sendable {
    /// The workflow task whose command upserted them.
    public var workflowTaskCompletedEventID: Int64
    /// The upserted attributes, as the command sent them.
    public var searchAttributes: [String: Payload]
}

/// The workflow changed its memo (Temporal's `WorkflowPropertiesModifiedEventAttributes`): the
/// keys are merged into the run's current memo, as for search attributes.
public struct WorkflowPropertiesModifiedEventAttributes: Hashable, Sendable {
    /// The workflow task whose command modified them.
    public var workflowTaskCompletedEventID: Int64
    /// The upserted memo fields, as the command sent them.
    public var upsertedMemo: [String: Payload]
}

/// Why a run started in place of the previous run of its workflow id (Temporal's
/// `ContinueAsNewInitiator`, same numbers).
public enum ContinueAsNewInitiator: UInt8, Hashable, Sendable, CaseIterable {
    /// Not a continuation (a run a client started).
    case unspecified = 0
    /// The workflow continued as new.
    case workflow = 1
    /// The run failed or timed out and its retry policy started the next attempt.
    case retry = 2
    /// The run closed and its cron schedule started the next run.
    case cronSchedule = 3
}

/// A worker's build id (Temporal's `temporal.api.common.v1.WorkerVersionStamp`).
public struct WorkerVersionStamp: Hashable, Sendable {
    /// The worker's build id.
    public var buildID: String
    /// Whether the worker opted into build-id based versioning.
    public var useVersioning: Bool

    /// A version stamp.
    public init(buildID: String, useVersioning: Bool = false) {
        self.buildID = buildID
        self.useVersioning = useVersioning
    }
}

/// What an SDK reports about itself when it completes a workflow task (Temporal's
/// `temporal.api.sdk.v1.WorkflowTaskCompletedMetadata`). SDKs read the flags back on replay to
/// take the code path they took the first time.
public struct WorkflowTaskCompletedMetadata: Hashable, Sendable {
    /// Internal flags of Temporal's Core SDK used for the first time in this task.
    public var coreUsedFlags: [UInt32]
    /// Flags of the language SDK used for the first time in this task.
    public var langUsedFlags: [UInt32]
    /// The SDK's name, when it changed since the last task.
    public var sdkName: String
    /// The SDK's version, when it changed since the last task.
    public var sdkVersion: String

    /// SDK metadata.
    public init(coreUsedFlags: [UInt32] = [], langUsedFlags: [UInt32] = [], sdkName: String = "", sdkVersion: String = "") {
        self.coreUsedFlags = coreUsedFlags
        self.langUsedFlags = langUsedFlags
        self.sdkName = sdkName
        self.sdkVersion = sdkVersion
    }
}

/// What a worker did without the server, reported for metering (Temporal's
/// `temporal.api.common.v1.MeteringMetadata`).
public struct MeteringMetadata: Hashable, Sendable {
    /// Local activity attempts after the first that ran in this workflow task.
    public var nonfirstLocalActivityExecutionAttempts: UInt32

    /// Metering metadata.
    public init(nonfirstLocalActivityExecutionAttempts: UInt32 = 0) {
        self.nonfirstLocalActivityExecutionAttempts = nonfirstLocalActivityExecutionAttempts
    }
}

/// How a workflow moves between worker deployment versions (Temporal's `VersioningBehavior`,
/// same numbers). Recorded; Spool has no worker deployments.
public enum VersioningBehavior: UInt8, Hashable, Sendable, CaseIterable {
    /// Not versioned.
    case unspecified = 0
    /// Stays on the version it started on.
    case pinned = 1
    /// Moves to the deployment's current version.
    case autoUpgrade = 2
}
