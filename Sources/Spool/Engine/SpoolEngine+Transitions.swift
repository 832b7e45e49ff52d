#if canImport(Glibc)
import Glibc
#endif
import Logging
import SpoolLog
import SpoolMatching
import Synchronization
import SpoolPrimitives

/// Transitions: how a run's state change becomes durable (one log append) and then visible
/// (published to its handle, its tasks dispatched, its timers armed).
extension SpoolEngine {
    /// Locks the run `execution` names (its current run if the run id is empty) and returns it.
    /// The caller must `unlock()` its gate.
    /// - Throws: ``SpoolError/Code/namespaceNotFound``; ``SpoolError/Code/notFound``.
    func lockRun(namespace: String, execution: WorkflowExecution) async throws(SpoolError) -> ExecutionHandle {
        try checkNamespace(namespace)
        guard let handle = registry.handle(namespace: namespace, execution: execution) else {
            throw Self.noSuchRun(namespace: namespace, workflowID: execution.workflowID, runID: execution.runID)
        }
        await handle.gate.acquire()
        guard !handle.isRemoved else {
            handle.gate.release()
            throw Self.noSuchRun(namespace: namespace, workflowID: handle.key.workflowID, runID: handle.key.runID)
        }
        return handle
    }

    /// `notFound` for a run. Built out of line: errors built in an async function enlarge the
    /// frame every call allocates.
    @inline(never)
    static func noSuchRun(namespace: String, workflowID: String, runID: String) -> SpoolError {
        SpoolError(.notFound, "no such workflow execution", namespace: namespace, workflowID: workflowID, runID: runID)
    }

    /// Makes transitions durable with one log append, then publishes their states, hands their
    /// new tasks to the matcher and arms their timers. The callers hold the runs' gates.
    /// - Throws: ``SpoolError/Code/storage`` when the append fails (nothing is published);
    ///   ``SpoolError/Code/invalidArgument`` when the record is larger than the log accepts.
    func commit(_ runs: [(handle: ExecutionHandle, transition: Transition)]) async throws(SpoolError) {
        try await commit(runs.map { CommittedRun(handle: $0.handle, transition: $0.transition) })
    }

    /// Commits one run's transition (the usual case): as `commit(_:)` with one run.
    func commit(_ handle: ExecutionHandle, _ transition: Transition) async throws(SpoolError) {
        try await commit([CommittedRun(handle: handle, transition: transition)])
    }

    /// A run and its transition, as `commit` carries them: a struct, not a tuple. Reading a
    /// field of an array element of tuple type copied the whole tuple through the runtime's
    /// generic tuple witness (callgrind: 8 such copies per commit, ~6% of all instructions of a
    /// one-activity workflow).
    struct CommittedRun {
        let handle: ExecutionHandle
        let transition: Transition
    }

    private func commit(_ runs: [CommittedRun]) async throws(SpoolError) {
        let encoded = Self.encodeRecord(runs)
        let offset: UInt64
        let appendStarted = monotonicNanoseconds()
        do {
            offset = try await log.append(encoded)
        } catch {
            throw Self.appendFailure(error, runs)
        }
        metrics.appendLatency.recordNanoseconds(Int64(truncatingIfNeeded: monotonicNanoseconds() &- appendStarted))
        publishCommitted(runs, recordOffset: offset)
    }

    /// The error a failed append of `runs` becomes. Not inlined: building errors in the async
    /// `commit` made its frame, allocated on every commit, twice as large.
    @inline(never)
    private static func appendFailure(_ underlying: LogError, _ runs: [CommittedRun]) -> SpoolError {
        if underlying.code == .closed { return SpoolError(.closed, "the engine was closed", underlying: underlying) }
        let key = runs.first?.handle.key
        if underlying.code == .recordTooLarge {
            // Refused before it was written: nothing changed, and the log is still usable.
            return SpoolError(.invalidArgument, "the transition's payloads are too large for one log record",
                              namespace: key?.namespace, workflowID: key?.workflowID, runID: key?.runID, underlying: underlying)
        }
        return SpoolError(.storage, "the history log refused the append; reopen the engine",
                          namespace: key?.namespace, workflowID: key?.workflowID, runID: key?.runID, underlying: underlying)
    }

    /// The record of `runs`' changes, encoded.
    private static func encodeRecord(_ runs: [CommittedRun]) -> [UInt8] {
        TransitionRecord.encoded(runCount: runs.count) { w, i in
            TransitionRecord.encode(runs[i].handle.key, runs[i].transition.changes, into: &w)
        }
    }

    /// After the append at `recordOffset` is durable: counts it, publishes the runs' states and
    /// arms their effects.
    @inline(never)
    private func publishCommitted(_ runs: [CommittedRun], recordOffset offset: UInt64) {
        metrics.transitions.increment()
        var eventsWritten = 0
        for index in runs.indices {
            let changes = runs[index].transition.changes
            for i in changes.indices where changes[i].isWrittenEvent { eventsWritten += 1 }
        }
        metrics.eventsWritten.increment(by: eventsWritten)
        if let every = configuration.checkpointEveryRecords,
           appendsSinceCheckpoint.add(1, ordering: .relaxed).newValue == every {
            Task { [weak self] in
                do { try await self?.checkpoint() } catch {
                    self?.logger.error("a periodic checkpoint failed", metadata: ["error": "\(error)"])
                }
            }
        }
        for index in runs.indices {
            runs[index].handle.publish(runs[index].transition.state, changes: runs[index].transition.changes, recordOffset: offset)
            if Self.changesVisibility(runs[index].transition.changes) { visibility.update(runs[index].transition.state) }
            armEffects(of: runs[index].transition.changes, state: runs[index].transition.state, queues: runs[index].handle.taskQueues)
            // One atomic load when no query waits (nearly always).
            if !queries.isEmpty { queriesAfterTransition(runs[index].transition.state) }
            if !updates.isEmpty { updatesAfterTransition(runs[index].transition.state) }
        }
    }

    /// Whether `changes` may change what the visibility index holds for their run: only its
    /// start, an upsert of its search attributes and its close do (the indexed values are the
    /// type, id, task queue, start, execution and close times, status and search attributes;
    /// Temporal's visibility store is likewise written at start, upsert and close). Every other
    /// transition — most of them — skips the index and its lock.
    static func changesVisibility(_ changes: [StateChange]) -> Bool {
        // By index: `for change in changes` copies each change (its event's strings and arrays retained).
        for index in changes.indices {
            switch changes[index] {
            case .event(let event), .flushedEvent(let event):
                let type = event.eventType
                if type == .workflowExecutionStarted || type == .upsertWorkflowSearchAttributes || type.isClosing { return true }
            default:
                continue
            }
        }
        return false
    }

    /// Hands the tasks a transition created to the matcher and arms the timers it needs.
    func armEffects(of changes: [StateChange], state: ExecutionState, queues: RunTaskQueues?) {
        let key = state.key
        for index in changes.indices {
            switch changes[index] {
            case .event(let event):
                if event.eventType.isClosing {
                    metrics.workflowClosed(event.eventType)
                    if let retention = closedRunRetention(for: key.namespace) {
                        timers.schedule(.retention, for: key, at: event.eventTime.advanced(by: retention))
                    }
                    // Its close to its parent, its close policy to its children.
                    if !state.related.isEmpty { armClosedRunEffects(state) }
                }
                switch event.attributes {
                case .workflowExecutionStarted:
                    metrics.workflowsStarted.increment()
                    if let expiration = state.runExpirationTime { timers.schedule(.workflowRunTimeout, for: key, at: expiration) }
                    if let time = state.firstWorkflowTaskTime { timers.schedule(.firstWorkflowTask, for: key, at: time) }
                case .workflowTaskScheduled:
                    if let task = state.workflowTask, task.scheduledEventID == event.eventID, task.startedEventID == 0 {
                        dispatchOrDelayWorkflowTask(task, state: state, queues: queues)
                    }
                case .workflowTaskStarted:
                    if let task = state.workflowTask, task.startedEventID == event.eventID {
                        timers.schedule(.workflowTaskStartToClose(scheduledEventID: task.scheduledEventID, startedEventID: event.eventID),
                                        for: key, at: event.eventTime.advanced(by: task.startToCloseTimeout))
                    }
                case .activityTaskScheduled:
                    if let activity = state.activities[event.eventID] {
                        armScheduleToClose(activity, key: key)
                        // An eagerly started activity went to the worker in the response, not to the queue.
                        if !activity.isStarted { dispatchActivityTask(activity, key: key, queues: queues) }
                    }
                case .timerStarted(let a):
                    if let timer = state.timers[a.timerID], timer.startedEventID == event.eventID {
                        timers.schedule(.userTimer(timerID: a.timerID, startedEventID: event.eventID), for: key, at: timer.fireTime)
                    }
                case .signalExternalWorkflowExecutionInitiated, .requestCancelExternalWorkflowExecutionInitiated:
                    armExternalRequest(event, state: state)
                case .startChildWorkflowExecutionInitiated:
                    // Not started in this append: its id's open run is to be terminated first.
                    if Self.waitsForChildStart(state, event.eventID) {
                        let id = event.eventID
                        relatedRunWork.spawn { [weak self] in try await self?.startChildAfterTermination(of: key, initiatedEventID: id) }
                    }
                default:
                    break
                }
            case let .transientWorkflowTaskScheduled(attempt, _):
                if let task = state.workflowTask, task.isTransient, task.attempt == attempt, task.startedEventID == 0 {
                    dispatchOrDelayWorkflowTask(task, state: state, queues: queues)
                }
            case .speculativeWorkflowTaskScheduled:
                if let task = state.workflowTask, task.isSpeculative, task.startedEventID == 0 {
                    dispatchWorkflowTask(task, state: state, queues: queues)
                }
            case let .transientWorkflowTaskStarted(scheduledEventID, _, _, _):
                if let task = state.workflowTask, task.isTransient, task.scheduledEventID == scheduledEventID,
                   let started = task.startedTime {
                    timers.schedule(.workflowTaskStartToClose(scheduledEventID: scheduledEventID, startedEventID: task.startedEventID),
                                    for: key, at: started.advanced(by: task.startToCloseTimeout))
                }
            case let .activityStarted(scheduledEventID, attempt, _, _, _):
                if let activity = state.activities[scheduledEventID], activity.attempt == attempt, activity.isStarted {
                    armStartedActivity(activity, key: key)
                }
            case let .activityStartReturned(scheduledEventID, attempt):
                if let activity = state.activities[scheduledEventID], activity.attempt == attempt, !activity.isStarted {
                    dispatchActivityTask(activity, key: key, queues: queues)
                }
            case let .activityRetryScheduled(scheduledEventID, attempt, time, _):
                if let activity = state.activities[scheduledEventID], activity.attempt == attempt {
                    timers.schedule(.activityRetry(scheduledEventID: scheduledEventID, attempt: attempt), for: key, at: time)
                }
            default:
                break
            }
        }
    }

    /// Dispatches a scheduled workflow task, or sets a timer for the end of its backoff.
    func dispatchOrDelayWorkflowTask(_ task: WorkflowTaskInfo, state: ExecutionState, queues: RunTaskQueues?) {
        if let time = task.dispatchTime, time > clock.now() {
            timers.schedule(.workflowTaskDispatch(scheduledEventID: task.scheduledEventID), for: state.key, at: time)
        } else {
            dispatchWorkflowTask(task, state: state, queues: queues)
        }
    }

    /// Puts a workflow task on its queue: the run's own (`queues`, resolved when the run was
    /// made) without a lookup, a sticky queue by name.
    func dispatchWorkflowTask(_ task: WorkflowTaskInfo, state: ExecutionState, queues: RunTaskQueues?) {
        let reference = TaskReference(key: state.key, scheduledEventID: task.scheduledEventID, attempt: task.attempt)
        do {
            let queued = QueuedTask(id: UInt64(task.scheduledEventID), priority: state.priority.effectivePriorityKey,
                                    fairness: state.priority.matchingFairnessKey, payload: reference)
            // Queued since it was scheduled (also for a backlog rebuilt at open), as its age in describe.
            let since = clock.matchingInstant(task.scheduledTime)
            if let queues, queues.name == task.taskQueue {
                try queues.workflow.add(queued, enqueuedAt: since)
            } else {
                let queue = try dispatcher(state.key.namespace).queue(task.taskQueue, kind: .workflow)
                // A sticky queue is one worker's: one partition, as in Temporal (applies if not used yet).
                if task.isSticky { _ = try? queue.setPartitions(1) }
                try queue.add(queued, enqueuedAt: since)
            }
            metrics.workflowTasksDispatched.increment()
        } catch {
            logger.error("cannot queue workflow task", metadata: ["run": "\(state.key)", "error": "\(error)"])
        }
        if task.isSticky, let timeout = state.stickyScheduleToStartTimeout {
            timers.schedule(.workflowTaskScheduleToStart(scheduledEventID: task.scheduledEventID), for: state.key,
                            at: task.scheduledTime.advanced(by: timeout))
        }
    }

    /// Puts an activity task on its queue: the run's own activity queue without a lookup, another
    /// one by name.
    func dispatchActivityTask(_ activity: ActivityInfo, key: ExecutionKey, queues: RunTaskQueues?) {
        let reference = TaskReference(key: key, scheduledEventID: activity.scheduledEventID, attempt: activity.attempt)
        do {
            let priority = activity.attributes.priority
            // The matcher drops a task past its schedule-to-start deadline at hand-over, before it
            // takes a rate-limit token (the timer times the activity out).
            let expiry = activity.attributes.scheduleToStartTimeout.map { clock.matchingInstant(activity.attemptScheduledTime.advanced(by: $0)) }
            let queued = QueuedTask(id: UInt64(activity.scheduledEventID), priority: priority.effectivePriorityKey,
                                    fairness: priority.matchingFairnessKey, scheduleToStartDeadline: expiry, payload: reference)
            let since = clock.matchingInstant(activity.attemptScheduledTime)
            if let queues, queues.name == activity.attributes.taskQueue {
                try queues.activity.add(queued, enqueuedAt: since)
            } else {
                try dispatcher(key.namespace).queue(activity.attributes.taskQueue, kind: .activity).add(queued, enqueuedAt: since)
            }
            metrics.activityTasksDispatched.increment()
        } catch {
            logger.error("cannot queue activity task", metadata: ["run": "\(key)", "error": "\(error)"])
        }
        if let timeout = activity.attributes.scheduleToStartTimeout {
            timers.schedule(.activityScheduleToStart(scheduledEventID: activity.scheduledEventID, attempt: activity.attempt),
                            for: key, at: activity.attemptScheduledTime.advanced(by: timeout))
        }
    }

    func armScheduleToClose(_ activity: ActivityInfo, key: ExecutionKey) {
        if let timeout = activity.attributes.scheduleToCloseTimeout {
            timers.schedule(.activityScheduleToClose(scheduledEventID: activity.scheduledEventID), for: key,
                            at: activity.scheduledTime.advanced(by: timeout))
        }
    }

    func armStartedActivity(_ activity: ActivityInfo, key: ExecutionKey) {
        guard let started = activity.startedTime else { return }
        timers.schedule(.activityStartToClose(scheduledEventID: activity.scheduledEventID, attempt: activity.attempt), for: key,
                        at: started.advanced(by: activity.attributes.startToCloseTimeout))
        if let heartbeat = activity.attributes.heartbeatTimeout {
            let last = max(started, activity.lastHeartbeatTime ?? started)
            timers.schedule(.activityHeartbeat(scheduledEventID: activity.scheduledEventID, attempt: activity.attempt), for: key,
                            at: last.advanced(by: heartbeat))
        }
    }
}
