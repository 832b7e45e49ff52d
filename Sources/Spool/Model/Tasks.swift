/// A workflow task handed to a worker (Temporal's `PollWorkflowTaskQueueResponse`).
public struct WorkflowTask: Hashable, Sendable {
    /// Hand back with the outcome.
    public var taskToken: TaskToken
    /// The run.
    public var workflowExecution: WorkflowExecution
    /// The workflow definition to run.
    public var workflowType: String
    /// The started event id of the last workflow task the workflow completed, 0 if none.
    public var previousStartedEventID: Int64
    /// This task's WorkflowTaskStarted event.
    public var startedEventID: Int64
    /// 1 for the first attempt.
    public var attempt: Int32
    /// The whole history up to ``startedEventID``; on a sticky queue only the events after
    /// ``previousStartedEventID``.
    public var history: [HistoryEvent]
    /// The run's own (normal) task queue.
    public var workflowExecutionTaskQueue: String
    /// When the task was scheduled.
    public var scheduledTime: Timestamp
    /// When this poll started it.
    public var startedTime: Timestamp
    /// Queries that came with this workflow task (Temporal's `queries`), by id: answer each in
    /// the completion's `queryResults` under the same id, from the workflow's state after this
    /// task's events. Empty for most tasks.
    public var queries: [String: WorkflowQuery] = [:]
    /// Set for a query-only task (Temporal's `query`): no workflow task was started, nothing is
    /// to be decided; answer with ``SpoolEngine/respondQueryTaskCompleted(taskToken:result:identity:)``.
    /// ``history`` is then the run's whole history, ``startedEventID`` 0.
    public var query: WorkflowQuery? = nil
    /// Protocol messages for the worker (Temporal's `messages`): the requests of the updates
    /// this task delivers, each to be accepted or rejected (and, once accepted, answered) in
    /// the completion's `messages`. Empty for most tasks.
    public var messages: [ProtocolMessage] = []
}

/// An activity task handed to a worker (Temporal's `PollActivityTaskQueueResponse`).
public struct ActivityTask: Hashable, Sendable {
    /// Hand back with the outcome and with heartbeats.
    public var taskToken: TaskToken
    /// The namespace of the workflow that scheduled it.
    public var workflowNamespace: String
    /// The workflow's type.
    public var workflowType: String
    /// The run that scheduled it.
    public var workflowExecution: WorkflowExecution
    /// The workflow's id for the activity.
    public var activityID: String
    /// The activity function to run.
    public var activityType: String
    /// The header of its ScheduleActivityTask command.
    public var header: Header
    /// Its input.
    public var input: Payloads?
    /// The details of the last heartbeat of an earlier attempt, for resuming.
    public var heartbeatDetails: Payloads?
    /// When the activity was first scheduled.
    public var scheduledTime: Timestamp
    /// When this attempt was put on the queue.
    public var currentAttemptScheduledTime: Timestamp
    /// When this poll started it.
    public var startedTime: Timestamp
    /// The attempt, from 1.
    public var attempt: Int32
    /// All attempts together; nil for no limit.
    public var scheduleToCloseTimeout: Duration?
    /// This attempt.
    public var startToCloseTimeout: Duration
    /// Longest gap between heartbeats; nil when the activity need not heartbeat.
    public var heartbeatTimeout: Duration?
    /// How failed attempts are retried.
    public var retryPolicy: RetryPolicy
}

/// What a worker gets back when it completes a workflow task (Temporal's
/// `RespondWorkflowTaskCompletedResponse`).
public struct RespondWorkflowTaskCompletedResponse: Sendable {
    /// The first attempts of the activities scheduled with `requestEagerExecution`, already
    /// started for this worker: run them and respond as for polled tasks.
    public var activityTasks: [ActivityTask]
    /// With `returnNewWorkflowTask`, the workflow task this completion scheduled, already started
    /// for this worker (Temporal's `workflow_task`); nil when it scheduled none.
    public var workflowTask: WorkflowTask? = nil
    /// When the completed task was speculative and left no trace (it only rejected updates): the
    /// started event id of the run's last completed workflow task (Temporal's
    /// `reset_history_event_id`). A worker that caches the run drops the events it was shown
    /// after it, because the next task reuses their ids; 0 otherwise.
    public var resetHistoryEventID: Int64 = 0
}

/// What an activity worker learns from a heartbeat.
public struct RecordActivityTaskHeartbeatResponse: Hashable, Sendable {
    /// The workflow asked to cancel the activity: stop, then report it canceled.
    public var cancelRequested: Bool
}

/// A worker's sticky queue (Temporal's `StickyExecutionAttributes`): later workflow tasks of the
/// run go there with only the new events, and back to the normal queue (full history) when not
/// picked up within `scheduleToStartTimeout`.
public struct StickyExecutionAttributes: Hashable, Sendable {
    /// The worker's own queue.
    public var workerTaskQueue: String
    /// How long a task may wait there.
    public var scheduleToStartTimeout: Duration
    /// A worker's sticky queue.
    public init(workerTaskQueue: String, scheduleToStartTimeout: Duration = .seconds(5)) {
        self.workerTaskQueue = workerTaskQueue
        self.scheduleToStartTimeout = scheduleToStartTimeout
    }
}

/// What the matcher carries for a task: which task of which run, at which attempt. The task's
/// durable record is its history event; this reference is checked against the run's state when
/// a poller receives it, and dropped if the task moved on meanwhile.
struct TaskReference: Sendable {
    var key: ExecutionKey
    var scheduledEventID: Int64
    var attempt: Int32
    /// Non-zero for a query-only task: the query's id in the engine's ``QueryRegistry``. Fits
    /// the padding after `attempt`, so a reference stays 64 bytes.
    var queryID: UInt32 = 0
}

/// What a worker reports about itself when it completes a workflow task, recorded in the
/// WorkflowTaskCompleted event as sent (the fields of Temporal's
/// `RespondWorkflowTaskCompletedRequest` that go into that event). The engine does not act on
/// them; an SDK reads them back when it replays the history.
public struct WorkflowTaskCompletionMetadata: Hashable, Sendable {
    /// The worker's binary checksum, or empty.
    public var binaryChecksum: String
    /// The worker's build id stamp.
    public var workerVersion: WorkerVersionStamp?
    /// The SDK's flags, name and version.
    public var sdkMetadata: WorkflowTaskCompletedMetadata?
    /// What the worker did without the server.
    public var meteringMetadata: MeteringMetadata?
    /// The versioning behavior the worker declared.
    public var versioningBehavior: VersioningBehavior
    /// The worker's deployment, or empty.
    public var workerDeploymentName: String
    /// The worker's deployment version (`deploymentName.buildId`), or empty.
    public var workerDeploymentVersion: String

    /// Completion metadata; every field defaults to "not sent".
    public init(binaryChecksum: String = "", workerVersion: WorkerVersionStamp? = nil,
                sdkMetadata: WorkflowTaskCompletedMetadata? = nil, meteringMetadata: MeteringMetadata? = nil,
                versioningBehavior: VersioningBehavior = .unspecified, workerDeploymentName: String = "",
                workerDeploymentVersion: String = "") {
        self.binaryChecksum = binaryChecksum
        self.workerVersion = workerVersion
        self.sdkMetadata = sdkMetadata
        self.meteringMetadata = meteringMetadata
        self.versioningBehavior = versioningBehavior
        self.workerDeploymentName = workerDeploymentName
        self.workerDeploymentVersion = workerDeploymentVersion
    }
}
