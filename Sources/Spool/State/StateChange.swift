/// One step of a run's durable state, as written to the log and replayed on open.
///
/// History events carry most of the state; the rest is what Temporal keeps in mutable state
/// without an event (an activity attempt starting, a retry, a heartbeat, the sticky queue).
/// ``ExecutionState/apply(_:)`` is the only code that interprets a change, live and in replay,
/// so the state rebuilt on open is the state the process had.
enum StateChange: Sendable, Equatable {
    /// The event this change writes to history, if it writes one.
    var writtenEvent: HistoryEvent? {
        switch self {
        case .event(let event), .flushedEvent(let event): event
        default: nil
        }
    }

    /// Whether this change writes an event to history (without copying the event out).
    var isWrittenEvent: Bool {
        switch self {
        case .event, .flushedEvent: true
        default: false
        }
    }

    /// An event written to history now; its effect is applied.
    case event(HistoryEvent)
    /// An event that arrived while a workflow task was started: its effect is applied now, it is
    /// written (with an id) when that task closes. Its `eventID` is 0.
    case bufferedEvent(HistoryEvent)
    /// The oldest buffered event, now written with its id; its effect was applied when buffered.
    case flushedEvent(HistoryEvent)
    /// The current attempt of an activity started (the ActivityTaskStarted event is written with the outcome).
    case activityStarted(scheduledEventID: Int64, attempt: Int32, time: Timestamp, identity: String, requestID: String)
    /// A failed or timed-out attempt is retried: attempt `attempt` goes on the queue at `time`.
    case activityRetryScheduled(scheduledEventID: Int64, attempt: Int32, time: Timestamp, failure: Failure)
    /// The running attempt heartbeated.
    case activityHeartbeat(scheduledEventID: Int64, details: Payloads?, time: Timestamp)
    /// The last worker named a sticky queue (nil clears it).
    case stickyTaskQueue(name: String?, scheduleToStartTimeout: Duration?)
    /// The workflow task just scheduled (a retry after repeated failures) goes on its queue at `time`.
    case workflowTaskBackoff(scheduledEventID: Int64, time: Timestamp)
    /// A transient workflow-task attempt (attempt ≥ 2 after a failure or timeout) is scheduled on
    /// the run's normal queue at `time`, without a history event: it takes the run's next event
    /// id as its scheduled id (see ``WorkflowTaskInfo/isTransient``).
    case transientWorkflowTaskScheduled(attempt: Int32, time: Timestamp)
    /// A worker started the transient attempt; its WorkflowTaskStarted is not written yet.
    case transientWorkflowTaskStarted(scheduledEventID: Int64, time: Timestamp, identity: String, requestID: String)
    /// The transient attempt failed or timed out: it ends without a history event.
    case transientWorkflowTaskEnded(scheduledEventID: Int64, attempt: Int32)
    /// A speculative workflow task (Temporal's, for an update reaching a run with no workflow
    /// task outstanding) is scheduled on the run's normal queue at `time`, without a history
    /// event: a transient-like attempt 1 that takes the run's next event id as its scheduled id
    /// (see ``WorkflowTaskInfo/isSpeculative``). Its events are written only if its completion
    /// writes something (an accepted update, a command); otherwise it ends with
    /// ``transientWorkflowTaskEnded(scheduledEventID:attempt:)`` and history is unchanged.
    case speculativeWorkflowTaskScheduled(time: Timestamp)
    /// The started attempt of an activity never reached its worker (the poll's answer could not
    /// be delivered): it is scheduled again, same attempt, and goes back on its queue.
    case activityStartReturned(scheduledEventID: Int64, attempt: Int32)
}

extension ExecutionState {
    /// Applies `change`. Throws ``SpoolError/Code/corruptRecord`` when the change does not fit the
    /// state (a replayed log that is not this run's history); the live path never produces one.
    mutating func apply(_ change: StateChange) throws(SpoolError) {
        switch change {
        case .event(let event):
            guard event.eventID == nextEventID else {
                throw key.error(.corruptRecord, "event \(event.eventID) \(event.eventType) follows event \(nextEventID - 1)")
            }
            try applyEffect(of: event)
            nextEventID += 1
        case .bufferedEvent(let event):
            try applyEffect(of: event)
            buffered.append(event)
        case .flushedEvent(let event):
            guard !buffered.isEmpty, event.eventID == nextEventID, buffered[0].eventType == event.eventType else {
                throw key.error(.corruptRecord, "flushed event \(event.eventID) \(event.eventType) is not the oldest buffered event")
            }
            buffered.removeFirst()
            nextEventID += 1
        case let .activityStarted(scheduledEventID, attempt, time, identity, requestID):
            try updateActivity(scheduledEventID, attempt: attempt) { activity in
                activity.startedTime = time
                activity.startedIdentity = identity
                activity.startedRequestID = requestID
                activity.lastWorkerIdentity = identity
            }
        case let .activityStartReturned(scheduledEventID, attempt):
            guard activities[scheduledEventID]?.isStarted == true else {
                throw key.error(.corruptRecord, "a returned start names no started activity", eventID: scheduledEventID)
            }
            try updateActivity(scheduledEventID, attempt: attempt) { activity in
                activity.startedTime = nil
                activity.startedIdentity = ""
                activity.startedRequestID = ""
            }
        case let .activityRetryScheduled(scheduledEventID, attempt, time, failure):
            try updateActivity(scheduledEventID, attempt: attempt - 1) { activity in
                activity.attempt = attempt
                activity.attemptScheduledTime = time
                activity.startedTime = nil
                activity.lastFailure = failure
            }
        case let .activityHeartbeat(scheduledEventID, details, time):
            guard var activity = activities[scheduledEventID] else {
                throw key.error(.corruptRecord, "a heartbeat names no pending activity", eventID: scheduledEventID)
            }
            activity.heartbeatDetails = details
            activity.lastHeartbeatTime = time
            activities[scheduledEventID] = activity
        case let .stickyTaskQueue(name, timeout):
            stickyTaskQueue = name
            stickyScheduleToStartTimeout = timeout
        case let .workflowTaskBackoff(scheduledEventID, time):
            guard workflowTask?.scheduledEventID == scheduledEventID, workflowTask?.startedEventID == 0 else {
                throw key.error(.corruptRecord, "a backoff names no scheduled workflow task", eventID: scheduledEventID)
            }
            workflowTask?.dispatchTime = time
        case let .transientWorkflowTaskScheduled(attempt, time):
            guard isRunning, workflowTask == nil, attempt >= 2 else {
                throw key.error(.corruptRecord, "a transient workflow task (attempt \(attempt)) while another is outstanding")
            }
            workflowTask = WorkflowTaskInfo(scheduledEventID: nextEventID, attempt: attempt, taskQueue: taskQueue,
                                            startToCloseTimeout: workflowTaskTimeout, scheduledTime: time, isSticky: false,
                                            isTransient: true)
        case let .transientWorkflowTaskStarted(scheduledEventID, time, identity, requestID):
            guard var task = workflowTask, task.isTransient, task.scheduledEventID == scheduledEventID, task.startedEventID == 0,
                  scheduledEventID == nextEventID else {
                throw key.error(.corruptRecord, "a transient start names no scheduled transient workflow task", eventID: scheduledEventID)
            }
            task.startedEventID = scheduledEventID + 1
            task.startedTime = time
            task.identity = identity
            task.requestID = requestID
            workflowTask = task
        case let .transientWorkflowTaskEnded(scheduledEventID, attempt):
            guard let task = workflowTask, task.isTransient, task.scheduledEventID == scheduledEventID, task.attempt == attempt else {
                throw key.error(.corruptRecord, "the end of transient attempt \(attempt) names no transient workflow task",
                                eventID: scheduledEventID)
            }
            workflowTask = nil
        case let .speculativeWorkflowTaskScheduled(time):
            guard isRunning, workflowTask == nil else {
                throw key.error(.corruptRecord, "a speculative workflow task while another is outstanding")
            }
            workflowTask = WorkflowTaskInfo(scheduledEventID: nextEventID, attempt: 1, taskQueue: taskQueue,
                                            startToCloseTimeout: workflowTaskTimeout, scheduledTime: time, isSticky: false,
                                            isTransient: true)
        }
    }

    private mutating func updateActivity(_ scheduledEventID: Int64, attempt: Int32,
                                         _ update: (inout ActivityInfo) -> Void) throws(SpoolError) {
        guard var activity = activities[scheduledEventID], activity.attempt == attempt else {
            throw key.error(.corruptRecord, "no pending activity at attempt \(attempt)", eventID: scheduledEventID)
        }
        update(&activity)
        activities[scheduledEventID] = activity
    }

    /// What an event does to the state besides being in the history.
    private mutating func applyEffect(of event: HistoryEvent) throws(SpoolError) {
        switch event.attributes {
        case .workflowExecutionStarted:
            guard nextEventID == 1 else { throw key.error(.corruptRecord, "a second WorkflowExecutionStarted") }
        case .workflowTaskScheduled(let a):
            firstWorkflowTaskTime = nil
            workflowTask = WorkflowTaskInfo(scheduledEventID: event.eventID, attempt: a.attempt, taskQueue: a.taskQueue,
                                            startToCloseTimeout: a.startToCloseTimeout, scheduledTime: event.eventTime,
                                            isSticky: a.taskQueue != taskQueue)
        case .workflowTaskStarted(let a):
            guard var task = workflowTask, task.scheduledEventID == a.scheduledEventID else {
                throw key.error(.corruptRecord, "WorkflowTaskStarted names no scheduled workflow task", eventID: event.eventID)
            }
            task.startedEventID = event.eventID
            task.startedTime = event.eventTime
            task.identity = a.identity
            task.requestID = a.requestID
            workflowTask = task
        case .workflowTaskCompleted(let a):
            previousStartedEventID = a.startedEventID
            workflowTask = nil
        case .workflowTaskTimedOut, .workflowTaskFailed:
            workflowTask = nil
        case .activityTaskScheduled(let a):
            activities[event.eventID] = ActivityInfo(scheduledEventID: event.eventID, attributes: a, scheduledTime: event.eventTime,
                                                     attemptScheduledTime: event.eventTime)
            activityIDs[a.activityID] = event.eventID
        case .activityTaskStarted:
            break
        case .activityTaskCompleted(let a): removeActivity(a.scheduledEventID)
        case .activityTaskFailed(let a): removeActivity(a.scheduledEventID)
        case .activityTaskTimedOut(let a): removeActivity(a.scheduledEventID)
        case .activityTaskCanceled(let a): removeActivity(a.scheduledEventID)
        case .activityTaskCancelRequested(let a):
            activities[a.scheduledEventID]?.cancelRequestedEventID = event.eventID
        case .timerStarted(let a):
            timers[a.timerID] = UserTimerInfo(timerID: a.timerID, startedEventID: event.eventID,
                                              fireTime: event.eventTime.advanced(by: a.startToFireTimeout))
        case .timerFired(let a): timers[a.timerID] = nil
        case .timerCanceled(let a): timers[a.timerID] = nil
        case .workflowExecutionCancelRequested:
            cancelRequested = true
        case .markerRecorded, .workflowExecutionSignaled, .workflowExecutionUpdateAccepted, .workflowExecutionUpdateCompleted:
            break
        case .upsertWorkflowSearchAttributes(let a):
            searchAttributes = Payload.merging(a.searchAttributes, into: searchAttributes)
        case .workflowPropertiesModified(let a):
            memo = Payload.merging(a.upsertedMemo, into: memo)
        case .workflowExecutionCompleted(let a):
            if !a.newExecutionRunID.isEmpty { newExecutionRunID = a.newExecutionRunID }
            close(.completed, at: event.eventTime)
        case .workflowExecutionFailed(let a):
            if !a.newExecutionRunID.isEmpty { newExecutionRunID = a.newExecutionRunID }
            close(.failed, at: event.eventTime)
        case .workflowExecutionTimedOut(let a):
            if !a.newExecutionRunID.isEmpty { newExecutionRunID = a.newExecutionRunID }
            close(.timedOut, at: event.eventTime)
        case .workflowExecutionCanceled: close(.canceled, at: event.eventTime)
        case .workflowExecutionTerminated: close(.terminated, at: event.eventTime)
        case .workflowExecutionContinuedAsNew(let a):
            newExecutionRunID = a.newExecutionRunID
            close(.continuedAsNew, at: event.eventTime)
        case .startChildWorkflowExecutionInitiated, .startChildWorkflowExecutionFailed, .childWorkflowExecutionStarted,
             .childWorkflowExecutionClosed, .signalExternalWorkflowExecutionInitiated, .signalExternalWorkflowExecutionFailed,
             .externalWorkflowExecutionSignaled, .requestCancelExternalWorkflowExecutionInitiated,
             .requestCancelExternalWorkflowExecutionFailed, .externalWorkflowExecutionCancelRequested:
            try applyRelatedRunEffect(of: event)
        }
    }

    private mutating func removeActivity(_ scheduledEventID: Int64) {
        if let activity = activities.removeValue(forKey: scheduledEventID) {
            activityIDs[activity.attributes.activityID] = nil
        }
    }

    /// A closed run has nothing pending: its tasks and timers are dropped (their stale queue
    /// entries and timer-heap entries are discarded when they come up).
    private mutating func close(_ status: WorkflowExecutionStatus, at time: Timestamp) {
        self.status = status
        closeTime = time
        workflowTask = nil
        activities = [:]
        activityIDs = [:]
        timers = [:]
        buffered = []
        stickyTaskQueue = nil
        stickyScheduleToStartTimeout = nil
        firstWorkflowTaskTime = nil
        // Undelivered requests to other workflows die with the run; its pending children stay
        // listed (the parent close policy applies to them).
        if !related.signals.isEmpty { related.signals = [:] }
        if !related.cancels.isEmpty { related.cancels = [:] }
    }
}
