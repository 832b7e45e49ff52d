/// The mutable state of one run: what the engine needs to decide the next transition, rebuilt
/// on open by replaying the run's ``StateChange``s (Temporal's "mutable state").
///
/// It is a value: a transition works on a copy and the copy replaces the original only after
/// the transition's log append is durable, so a rejected or failed transition changes nothing.
struct ExecutionState: Sendable, Equatable {
    /// The stored state, in a ``CopyOnWriteBox``: a transition copies the state (and the engine
    /// hands copies around: publish, visibility, effects), and a copy then retains one box instead
    /// of each string, array and dictionary. Read and written through the forwarding properties below.
    struct Fields: Sendable, Equatable {
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
        /// What rarely changes after the start (priority, attempt, header, memo, search attributes,
        /// retry policy, cron, execution timeout, the carried result), behind one copy-on-write
        /// reference: a transition copies the state, and a copy then retains one box instead of each
        /// string and dictionary. Read and written through the forwarding properties below.
        var options = RunOptions()
        /// Its parent, pending children and pending requests to other workflows (see ``RelatedRuns``).
        var related = RelatedRuns()
        /// The start time plus the first workflow task's backoff (Temporal's `execution_time`):
        /// a cron schedule counts from here, and the run timeout starts here.
        var executionTime: Timestamp
        /// When the first workflow task is due, while the run waits out its first-workflow-task
        /// backoff (no workflow task was scheduled yet); nil otherwise.
        var firstWorkflowTaskTime: Timestamp?
    }

    private var storage: CopyOnWriteBox<Fields>

    var key: ExecutionKey { storage.value.key }
    var workflowType: String {
        get { storage.value.workflowType }
        _modify { yield &storage.value.workflowType }
    }
    var taskQueue: String {
        get { storage.value.taskQueue }
        _modify { yield &storage.value.taskQueue }
    }
    var input: Payloads? {
        get { storage.value.input }
        _modify { yield &storage.value.input }
    }
    var workflowRunTimeout: Duration? {
        get { storage.value.workflowRunTimeout }
        _modify { yield &storage.value.workflowRunTimeout }
    }
    var workflowTaskTimeout: Duration {
        get { storage.value.workflowTaskTimeout }
        _modify { yield &storage.value.workflowTaskTimeout }
    }
    var firstExecutionRunID: String {
        get { storage.value.firstExecutionRunID }
        _modify { yield &storage.value.firstExecutionRunID }
    }
    var requestID: String {
        get { storage.value.requestID }
        _modify { yield &storage.value.requestID }
    }
    var startTime: Timestamp {
        get { storage.value.startTime }
        _modify { yield &storage.value.startTime }
    }
    var status: WorkflowExecutionStatus {
        get { storage.value.status }
        _modify { yield &storage.value.status }
    }
    var closeTime: Timestamp? {
        get { storage.value.closeTime }
        _modify { yield &storage.value.closeTime }
    }
    var nextEventID: Int64 {
        get { storage.value.nextEventID }
        _modify { yield &storage.value.nextEventID }
    }
    var buffered: [HistoryEvent] {
        get { storage.value.buffered }
        _modify { yield &storage.value.buffered }
    }
    var workflowTask: WorkflowTaskInfo? {
        get { storage.value.workflowTask }
        _modify { yield &storage.value.workflowTask }
    }
    var previousStartedEventID: Int64 {
        get { storage.value.previousStartedEventID }
        _modify { yield &storage.value.previousStartedEventID }
    }
    var activities: [Int64: ActivityInfo] {
        get { storage.value.activities }
        _modify { yield &storage.value.activities }
    }
    var activityIDs: [String: Int64] {
        get { storage.value.activityIDs }
        _modify { yield &storage.value.activityIDs }
    }
    var timers: [String: UserTimerInfo] {
        get { storage.value.timers }
        _modify { yield &storage.value.timers }
    }
    var cancelRequested: Bool {
        get { storage.value.cancelRequested }
        _modify { yield &storage.value.cancelRequested }
    }
    var newExecutionRunID: String? {
        get { storage.value.newExecutionRunID }
        _modify { yield &storage.value.newExecutionRunID }
    }
    var stickyTaskQueue: String? {
        get { storage.value.stickyTaskQueue }
        _modify { yield &storage.value.stickyTaskQueue }
    }
    var stickyScheduleToStartTimeout: Duration? {
        get { storage.value.stickyScheduleToStartTimeout }
        _modify { yield &storage.value.stickyScheduleToStartTimeout }
    }
    var options: RunOptions {
        get { storage.value.options }
        _modify { yield &storage.value.options }
    }
    var related: RelatedRuns {
        get { storage.value.related }
        _modify { yield &storage.value.related }
    }
    var executionTime: Timestamp {
        get { storage.value.executionTime }
        _modify { yield &storage.value.executionTime }
    }
    var firstWorkflowTaskTime: Timestamp? {
        get { storage.value.firstWorkflowTaskTime }
        _modify { yield &storage.value.firstWorkflowTaskTime }
    }

    /// The run's priority (from WorkflowExecutionStarted): its workflow tasks' and the default of its activities'.
    var priority: Priority {
        get { options.fields.priority }
        set { options.fields.priority = newValue }
    }
    // Run-level options (Temporal's execution info), from WorkflowExecutionStarted and the
    // upsert events; checkpointed in the extended layout only.
    /// The run's attempt: 1, or one more than the run it retries.
    var attempt: Int32 {
        get { options.fields.attempt }
        set { options.fields.attempt = newValue }
    }
    /// The start's header, handed to a retry or the next cron run.
    var header: Header {
        get { options.fields.header }
        set { options.fields.header = newValue }
    }
    /// The current memo and search attributes (start values with the upserts merged in).
    var memo: [String: Payload] {
        get { options.fields.memo }
        set { options.fields.memo = newValue }
    }
    var searchAttributes: [String: Payload] {
        get { options.fields.searchAttributes }
        set { options.fields.searchAttributes = newValue }
    }
    var retryPolicy: RetryPolicy? {
        get { options.fields.retryPolicy }
        set { options.fields.retryPolicy = newValue }
    }
    var cronSchedule: String {
        get { options.fields.cronSchedule }
        set { options.fields.cronSchedule = newValue }
    }
    var workflowExecutionTimeout: Duration? {
        get { options.fields.workflowExecutionTimeout }
        set { options.fields.workflowExecutionTimeout = newValue }
    }
    /// When the chain's execution timeout ends.
    var executionExpirationTime: Timestamp? {
        get { options.fields.executionExpirationTime }
        set { options.fields.executionExpirationTime = newValue }
    }
    /// The last completion result the run started with (handed on by a cron run that fails).
    var lastCompletionResult: Payloads? {
        get { options.fields.lastCompletionResult }
        set { options.fields.lastCompletionResult = newValue }
    }
    /// The memo and search attributes the run started with: a retry or cron run starts with
    /// these, not with the upserted ones (Temporal's `SetupNewWorkflowForRetryOrCron`).
    var startMemo: [String: Payload] {
        get { options.fields.startMemo }
        set { options.fields.startMemo = newValue }
    }
    var startSearchAttributes: [String: Payload] {
        get { options.fields.startSearchAttributes }
        set { options.fields.startSearchAttributes = newValue }
    }

    var isRunning: Bool { status == .running }
    var historyLength: Int64 { nextEventID - 1 }
    var isWorkflowTaskStarted: Bool { workflowTask?.startedEventID ?? 0 != 0 }
    /// Whether the run waits out its first-workflow-task backoff (Temporal's
    /// `IsWorkflowPendingOnWorkflowTaskBackoff`): nothing schedules a workflow task meanwhile.
    var isPendingOnFirstWorkflowTaskBackoff: Bool { firstWorkflowTaskTime != nil }

    /// When the run times out: its run timeout counted from ``executionTime``, never past the
    /// chain's expiration; nil when neither is set.
    var runExpirationTime: Timestamp? {
        let run = workflowRunTimeout.map { executionTime.advanced(by: $0) }
        switch (run, executionExpirationTime) {
        case let (run?, expiration?): return min(run, expiration)
        case let (run?, nil): return run
        case let (nil, expiration?): return expiration
        case (nil, nil): return nil
        }
    }

    init(key: ExecutionKey, started: WorkflowExecutionStartedEventAttributes, startTime: Timestamp) {
        let options = RunOptions(RunOptions.Fields(
            priority: started.priority, attempt: started.attempt, header: started.header, memo: started.memo,
            searchAttributes: started.searchAttributes, retryPolicy: started.retryPolicy, cronSchedule: started.cronSchedule,
            workflowExecutionTimeout: started.workflowExecutionTimeout,
            executionExpirationTime: started.workflowExecutionExpirationTime,
            lastCompletionResult: started.lastCompletionResult, startMemo: started.memo,
            startSearchAttributes: started.searchAttributes))
        var related = RelatedRuns()
        if let parent = started.parent { related.parent = parent }
        var executionTime = startTime
        var firstWorkflowTaskTime: Timestamp?
        if let backoff = started.firstWorkflowTaskBackoff, backoff > .zero {
            executionTime = startTime.advanced(by: backoff)
            firstWorkflowTaskTime = executionTime
        }
        storage = CopyOnWriteBox(Fields(key: key, workflowType: started.workflowType, taskQueue: started.taskQueue, input: started.input,
                                 workflowRunTimeout: started.workflowRunTimeout, workflowTaskTimeout: started.workflowTaskTimeout,
                                 firstExecutionRunID: started.firstExecutionRunID, requestID: started.requestID,
                                 startTime: startTime, options: options, related: related, executionTime: executionTime,
                                 firstWorkflowTaskTime: firstWorkflowTaskTime))
    }
}

/// Reflects the fields (the history verifier names the fields that differ; `dump` shows them).
extension ExecutionState: CustomReflectable {
    var customMirror: Mirror { Mirror(reflecting: storage) }
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
    /// A transient attempt (Temporal's: the second or later consecutive attempt after a failure or
    /// timeout): its WorkflowTaskScheduled and WorkflowTaskStarted are not in history. Its ids are
    /// the ones they will get (`scheduledEventID` is the run's next event id, the started id the
    /// one after): no event is written while it is outstanding (a new event converts it to a
    /// normal task; events arriving once it started are buffered). They are written, with
    /// WorkflowTaskCompleted, only when it completes; its failure or timeout writes nothing.
    var isTransient = false
    /// The request id of the poll that started it (its WorkflowTaskStarted, written later for a
    /// transient attempt, carries it).
    var requestID = ""

    /// A speculative task (scheduled for an update on an idle run): transient at attempt 1, which
    /// no failure produces (a failed attempt's transient retry is attempt 2 or more).
    var isSpeculative: Bool { isTransient && attempt == 1 }
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

/// A run's options kept behind one copy-on-write reference (see ``ExecutionState/options``).
struct RunOptions: Sendable, Equatable {
    struct Fields: Sendable, Equatable {
        var priority = Priority()
        var attempt: Int32 = 1
        var header = Header()
        var memo: [String: Payload] = [:]
        var searchAttributes: [String: Payload] = [:]
        var retryPolicy: RetryPolicy?
        var cronSchedule = ""
        var workflowExecutionTimeout: Duration?
        var executionExpirationTime: Timestamp?
        var lastCompletionResult: Payloads?
        var startMemo: [String: Payload] = [:]
        var startSearchAttributes: [String: Payload] = [:]
    }

    private var storage: CopyOnWriteBox<Fields>

    init(_ fields: Fields = Fields()) { storage = CopyOnWriteBox(fields) }

    var fields: Fields {
        _read { yield storage.value }
        _modify { yield &storage.value }
    }
}
