/// The identity Temporal's history service writes in the events it makes itself
/// (`consts.IdentityHistoryService`).
let historyServiceIdentity = "history-service"

/// A transition being decided: a scratch copy of a run's state and the changes made to it so far.
///
/// Every change goes through ``record(_:)``, which applies it to the scratch state the same way
/// replay will; the engine appends ``changes`` to the log and, once durable, publishes ``state``.
/// Dropping a transition changes nothing.
struct Transition {
    private(set) var state: ExecutionState
    private(set) var changes: [StateChange] = []
    let now: Timestamp

    init(_ state: ExecutionState, now: Timestamp) {
        self.state = state
        // A wall clock that jumped back must not date an event before the run's start: a
        // history would show negative times since its first event.
        self.now = max(now, state.startTime)
        // Most transitions record 1–4 changes: one allocation instead of growing 1, 2, 4
        // (callgrind: 12 change-array reallocations per one-activity workflow).
        changes.reserveCapacity(4)
    }

    var isEmpty: Bool { changes.isEmpty }

    mutating func record(_ change: StateChange) throws(SpoolError) {
        try state.apply(change)
        changes.append(change)
    }

    /// Writes an event to history and returns its id.
    @discardableResult
    mutating func add(_ attributes: HistoryEvent.Attributes, userMetadata: UserMetadata? = nil) throws(SpoolError) -> Int64 {
        let id = state.nextEventID
        try record(.event(HistoryEvent(eventID: id, eventTime: now, attributes: attributes, userMetadata: userMetadata)))
        return id
    }

    /// New events written while a transient workflow task waits to be started took the ids that
    /// task reserved: as in Temporal, it becomes a normal task with attempt 1, its
    /// WorkflowTaskScheduled written now (after the new events) and put on the queue at once.
    /// Its old queue entry and backoff timer go stale (they name the reserved id and attempt).
    /// Returns whether it converted one.
    @discardableResult
    mutating func convertTransientWorkflowTaskIfNeeded() throws(SpoolError) -> Bool {
        guard let task = state.workflowTask, task.isTransient, task.startedEventID == 0,
              task.scheduledEventID != state.nextEventID else { return false }
        try record(.event(HistoryEvent(eventID: state.nextEventID, eventTime: now, attributes: .workflowTaskScheduled(.init(
            taskQueue: state.taskQueue, startToCloseTimeout: state.workflowTaskTimeout, attempt: 1)))))
        return true
    }

    /// Writes an event that may affect the workflow: buffered while a workflow task is started,
    /// otherwise written now (and a workflow task is scheduled if none is outstanding).
    mutating func addWorkflowInput(_ attributes: HistoryEvent.Attributes) throws(SpoolError) {
        if state.isWorkflowTaskStarted {
            try record(.bufferedEvent(HistoryEvent(eventID: 0, eventTime: now, attributes: attributes)))
        } else {
            try add(attributes)
        }
    }

    /// Writes the buffered events with their ids, in arrival order. An activity outcome that
    /// follows its ActivityTaskStarted in the buffer gets that event's id as its started id.
    /// Returns whether there were any.
    @discardableResult
    mutating func flushBufferedEvents() throws(SpoolError) -> Bool {
        guard !state.buffered.isEmpty else { return false }
        var startedIDs: [Int64: Int64] = [:]
        while let next = state.buffered.first {
            var event = next
            event.eventID = state.nextEventID
            switch event.attributes {
            case .activityTaskStarted(let a):
                startedIDs[a.scheduledEventID] = event.eventID
            case .activityTaskCompleted(var a):
                a.startedEventID = startedIDs[a.scheduledEventID] ?? a.startedEventID
                event.attributes = .activityTaskCompleted(a)
            case .activityTaskFailed(var a):
                a.startedEventID = startedIDs[a.scheduledEventID] ?? a.startedEventID
                event.attributes = .activityTaskFailed(a)
            case .activityTaskTimedOut(var a):
                a.startedEventID = startedIDs[a.scheduledEventID] ?? a.startedEventID
                event.attributes = .activityTaskTimedOut(a)
            case .activityTaskCanceled(var a):
                a.startedEventID = startedIDs[a.scheduledEventID] ?? a.startedEventID
                event.attributes = .activityTaskCanceled(a)
            default:
                break
            }
            try record(.flushedEvent(event))
        }
        return true
    }

    /// Schedules a workflow task unless one is outstanding or the run is closed: on the sticky
    /// queue when the last worker named one, else on the run's queue. A transient task waiting
    /// while new events were written is converted to a normal one.
    mutating func scheduleWorkflowTaskIfNeeded(attempt: Int32 = 1, sticky: Bool = true) throws(SpoolError) {
        guard state.isRunning, !state.isPendingOnFirstWorkflowTaskBackoff else { return }
        // Every path that writes new input for the workflow ends here: a waiting transient task
        // they overtook becomes a normal one.
        guard state.workflowTask == nil else { try convertTransientWorkflowTaskIfNeeded(); return }
        let queue = sticky ? (state.stickyTaskQueue ?? state.taskQueue) : state.taskQueue
        try add(.workflowTaskScheduled(.init(taskQueue: queue, startToCloseTimeout: state.workflowTaskTimeout, attempt: attempt)))
    }

    /// Schedules the first workflow task of a run whose first-workflow-task backoff ended (or
    /// that a signal-with-start wakes early).
    mutating func endFirstWorkflowTaskBackoff() throws(SpoolError) {
        guard state.isRunning, state.workflowTask == nil, state.isPendingOnFirstWorkflowTaskBackoff else { return }
        try add(.workflowTaskScheduled(.init(taskQueue: state.taskQueue, startToCloseTimeout: state.workflowTaskTimeout, attempt: 1)))
    }

    /// Ends the started or scheduled attempt `task` that failed or timed out and schedules the
    /// next, with Temporal's rules (`workflowTaskStateMachine.failWorkflowTask`):
    /// - `ended` (WorkflowTaskFailed or WorkflowTaskTimedOut) is written unless the attempt is
    ///   transient, whose end writes nothing;
    /// - the events buffered meanwhile are written;
    /// - a run with a sticky queue loses it, and the attempt is not raised: the next task goes to
    ///   the normal queue (full history) as attempt 1, written to history;
    /// - the attempt is not raised when `raisesAttempt` is false (a sticky schedule-to-start
    ///   timeout), nor when buffered events were written (new events reset it to 1);
    /// - otherwise the next attempt (≥ 2) is transient, on the normal queue. The first retry goes
    ///   out at once; from the third attempt on it waits `policy.backoff(afterAttempt: attempt − 2)`,
    ///   so a task that keeps failing (an unknown workflow type) does not spin the workers.
    mutating func failWorkflowTaskAttempt(_ task: WorkflowTaskInfo, writing ended: HistoryEvent.Attributes, raisesAttempt: Bool = true,
                                          policy: RetryPolicy) throws(SpoolError) {
        if task.isTransient {
            try record(.transientWorkflowTaskEnded(scheduledEventID: task.scheduledEventID, attempt: task.attempt))
        } else {
            try add(ended)
        }
        let flushed = try flushBufferedEvents()
        var raises = raisesAttempt && !flushed
        if state.stickyTaskQueue != nil {
            try record(.stickyTaskQueue(name: nil, scheduleToStartTimeout: nil))
            raises = false
        }
        guard state.isRunning, state.workflowTask == nil else { return }
        guard raises else {
            try scheduleWorkflowTaskIfNeeded(attempt: 1, sticky: false)
            return
        }
        let attempt = task.attempt + 1
        try record(.transientWorkflowTaskScheduled(attempt: attempt, time: now))
        guard attempt >= 3, let next = state.workflowTask else { return }
        try record(.workflowTaskBackoff(scheduledEventID: next.scheduledEventID,
                                        time: now.advanced(by: policy.backoff(afterAttempt: attempt - 2))))
    }

    /// What closing the run from outside (terminate, run timeout) does to its workflow task, as
    /// Temporal's `failWorkflowTask` in `TerminateWorkflow` / `TimeoutWorkflow`: a *started* task
    /// fails with WorkflowTaskFailed (cause `ForceCloseCommand`, identity `history-service`, no
    /// failure) — nothing is written for a transient attempt, nor for a task only scheduled —
    /// then the events buffered meanwhile are written. The caller writes the closing event next.
    mutating func forceCloseStartedWorkflowTask() throws(SpoolError) {
        if let task = state.workflowTask, task.startedEventID != 0, !task.isTransient {
            try add(.workflowTaskFailed(.init(scheduledEventID: task.scheduledEventID, startedEventID: task.startedEventID,
                                              cause: .forceCloseCommand, failure: nil, identity: historyServiceIdentity)))
        }
        try flushBufferedEvents()
    }

    /// Writes the WorkflowTaskScheduled and WorkflowTaskStarted of the started transient attempt
    /// `task`, which is completing: with the ids, times and attempt the worker saw, the started
    /// event naming `identity` (the completing worker's, as Temporal writes it).
    mutating func writeTransientWorkflowTask(_ task: WorkflowTaskInfo, identity: String) throws(SpoolError) {
        for var event in task.transientHistorySuffix() {
            if case .workflowTaskStarted(var started) = event.attributes {
                started.identity = identity
                event.attributes = .workflowTaskStarted(started)
            }
            try record(.event(event))
        }
    }

    /// Writes an activity's outcome: its ActivityTaskStarted (when the last attempt started),
    /// then `outcome(startedEventID)`, both buffered while a workflow task is started.
    mutating func addActivityOutcome(_ activity: ActivityInfo,
                                     _ outcome: (_ startedEventID: Int64) -> HistoryEvent.Attributes) throws(SpoolError) {
        var startedEventID: Int64 = 0
        if activity.isStarted {
            let started = HistoryEvent.Attributes.activityTaskStarted(.init(
                scheduledEventID: activity.scheduledEventID, identity: activity.startedIdentity,
                requestID: activity.startedRequestID, attempt: activity.attempt, lastFailure: activity.lastFailure))
            // Buffered events get their ids when flushed; the flush fixes up the outcome's started id.
            startedEventID = state.isWorkflowTaskStarted ? 0 : state.nextEventID
            try addWorkflowInput(started)
        }
        try addWorkflowInput(outcome(startedEventID))
        try scheduleWorkflowTaskIfNeeded()
    }
}

extension WorkflowTaskInfo {
    /// The WorkflowTaskScheduled and WorkflowTaskStarted events of a started transient attempt,
    /// as a worker receives them appended to the history it polls (Temporal's
    /// `TransientWorkflowTaskInfo.history_suffix`); empty for a task that is not transient and
    /// started.
    func transientHistorySuffix() -> [HistoryEvent] {
        guard isTransient, startedEventID != 0, let startedTime else { return [] }
        return [
            HistoryEvent(eventID: scheduledEventID, eventTime: scheduledTime, attributes: .workflowTaskScheduled(.init(
                taskQueue: taskQueue, startToCloseTimeout: startToCloseTimeout, attempt: attempt))),
            HistoryEvent(eventID: startedEventID, eventTime: startedTime, attributes: .workflowTaskStarted(.init(
                scheduledEventID: scheduledEventID, identity: identity, requestID: requestID))),
        ]
    }
}
