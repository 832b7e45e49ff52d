/// The mutable state of one run: what the engine needs to decide the next transition, rebuilt
/// on open by replaying the run's ``StateChange``s (Temporal's "mutable state").
///
/// It is a value: a transition works on a copy and the copy replaces the original only after
/// the transition's log append is durable, so a rejected or failed transition changes nothing.
struct ExecutionState: Sendable, Equatable {
    let key: ExecutionKey
    var workflowType: String
    var taskQueue: String
    var input: Payloads?
    var workflowRunTimeout: Duration?
    var workflowTaskTimeout: Duration
    var firstExecutionRunID: String
    var requestID: String
    var startTime: Timestamp
    var status: WorkflowExecutionStatus = .running
    var closeTime: Timestamp?
    /// The id the next history event gets. The events themselves are not part of the state
    /// (a transition copies the state): the run's handle holds them.
    var nextEventID: Int64 = 1
    /// Events that arrived while a workflow task was started: their effects are applied, their
    /// ids are assigned when they are written after that task closes.
    var buffered: [HistoryEvent] = []
    /// The outstanding workflow task, scheduled or started (at most one per run).
    var workflowTask: WorkflowTaskInfo?
    /// The started event id of the last completed workflow task (`previous_started_event_id`).
    var previousStartedEventID: Int64 = 0
    /// Pending activities by scheduled event id.
    var activities: [Int64: ActivityInfo] = [:]
    /// Pending activities' scheduled event ids by activity id.
    var activityIDs: [String: Int64] = [:]
    /// Pending user timers by timer id.
    var timers: [String: UserTimerInfo] = [:]
    var cancelRequested = false
    /// The run that continued this one, once it has.
    var newExecutionRunID: String?
    /// The sticky queue the last worker named, and how long a task may wait there.
    var stickyTaskQueue: String?
    var stickyScheduleToStartTimeout: Duration?
    /// The run's priority (from WorkflowExecutionStarted): its workflow tasks' and the default of its activities'.
    var priority = Priority()

    var isRunning: Bool { status == .running }
    var historyLength: Int64 { nextEventID - 1 }
    var isWorkflowTaskStarted: Bool { workflowTask?.startedEventID ?? 0 != 0 }

    init(key: ExecutionKey, started: WorkflowExecutionStartedEventAttributes, startTime: Timestamp) {
        self.key = key
        workflowType = started.workflowType
        taskQueue = started.taskQueue
        input = started.input
        workflowRunTimeout = started.workflowRunTimeout
        workflowTaskTimeout = started.workflowTaskTimeout
        firstExecutionRunID = started.firstExecutionRunID
        requestID = started.requestID
        priority = started.priority
        self.startTime = startTime
    }
}

/// The outstanding workflow task of a run.
struct WorkflowTaskInfo: Sendable, Equatable {
    var scheduledEventID: Int64
    var attempt: Int32
    var taskQueue: String
    var startToCloseTimeout: Duration
    var scheduledTime: Timestamp
    /// 0 until a worker takes it.
    var startedEventID: Int64 = 0
    var startedTime: Timestamp?
    var identity = ""
    /// Whether the task was put on a sticky queue (only the new events go to the worker).
    var isSticky: Bool
    /// When a retried task goes on its queue (backoff after repeated failures); nil: at once.
    var dispatchTime: Timestamp? = nil
}

/// A pending activity.
struct ActivityInfo: Sendable, Equatable {
    var scheduledEventID: Int64
    var attributes: ActivityTaskScheduledEventAttributes
    /// When the activity was scheduled (its schedule-to-close clock starts here).
    var scheduledTime: Timestamp
    /// The current attempt, from 1.
    var attempt: Int32 = 1
    /// When the current attempt was put on the queue (a retry's is when its backoff ends).
    var attemptScheduledTime: Timestamp
    /// Set while the current attempt runs.
    var startedTime: Timestamp?
    var startedIdentity = ""
    var startedRequestID = ""
    /// The details of the latest heartbeat of any attempt.
    var heartbeatDetails: Payloads?
    var lastHeartbeatTime: Timestamp?
    /// The ActivityTaskCancelRequested event, 0 when cancellation was not requested.
    var cancelRequestedEventID: Int64 = 0
    /// The failure of the previous attempt.
    var lastFailure: Failure?
    var lastWorkerIdentity = ""

    var isStarted: Bool { startedTime != nil }
}

/// A pending user timer.
struct UserTimerInfo: Sendable, Equatable {
    var timerID: String
    var startedEventID: Int64
    var fireTime: Timestamp
}
