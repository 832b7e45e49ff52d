import SpoolLog

extension SpoolEngine {
    /// Replays the log into the registry, then re-queues every pending task and re-arms every
    /// timer of the open runs. Runs are rebuilt with ``ExecutionState/apply(_:)``, the code the
    /// live path uses, so the rebuilt state is the state the process had at its last durable append.
    func recover() throws(SpoolError) {
        var states: [ExecutionKey: ExecutionState] = [:]
        var offsets: [ExecutionKey: [UInt64]] = [:]
        /// The order in which runs were created, to restore each workflow id's current run.
        var creationOrder: [ExecutionKey] = []
        var reader = log.reader(from: log.startOffset)
        while true {
            let entry: LogRecord?
            do {
                entry = try reader.next()
            } catch {
                throw SpoolError(.storage, "reading the history log failed", underlying: error)
            }
            guard let entry else { break }
            let record = try TransitionRecord.decode(entry.payload, context: "history log record at offset \(entry.offset)")
            for run in record.runs {
                var state: ExecutionState
                if let existing = states[run.key] {
                    state = existing
                } else {
                    guard case .event(let first) = run.changes.first, case .workflowExecutionStarted(let started) = first.attributes else {
                        throw run.key.error(.corruptRecord, "record at offset \(entry.offset) changes a run that was never started")
                    }
                    state = ExecutionState(key: run.key, started: started, startTime: first.eventTime)
                    creationOrder.append(run.key)
                }
                for change in run.changes {
                    do {
                        try state.apply(change)
                    } catch {
                        var error = error
                        error.message += " (history log record at offset \(entry.offset))"
                        throw error
                    }
                }
                states[run.key] = state
                offsets[run.key, default: []].append(entry.offset)
            }
        }
        for key in creationOrder {
            guard let state = states[key] else { continue }
            let handle = ExecutionHandle(state: state, creating: false, recordOffsets: offsets[key] ?? [])
            registry.withShard(of: key.workflowKey) { shard in
                shard.runs[key] = handle
                shard.currentRuns[key.workflowKey] = key.runID
            }
            if state.isRunning { restoreEffects(of: state) }
        }
    }

    /// Re-queues the pending tasks of an open run and re-arms its timers.
    func restoreEffects(of state: ExecutionState) {
        let key = state.key
        let now = clock.now()
        if let timeout = state.workflowRunTimeout {
            timers.schedule(.workflowRunTimeout, for: key, at: state.startTime.advanced(by: timeout))
        }
        if let task = state.workflowTask {
            if let started = task.startedTime {
                timers.schedule(.workflowTaskStartToClose(scheduledEventID: task.scheduledEventID, startedEventID: task.startedEventID),
                                for: key, at: started.advanced(by: task.startToCloseTimeout))
            } else {
                dispatchWorkflowTask(task, state: state)
            }
        }
        for activity in state.activities.values.sorted(by: { $0.scheduledEventID < $1.scheduledEventID }) {
            armScheduleToClose(activity, key: key)
            if activity.isStarted {
                armStartedActivity(activity, key: key)
            } else if activity.attemptScheduledTime > now {
                timers.schedule(.activityRetry(scheduledEventID: activity.scheduledEventID, attempt: activity.attempt), for: key,
                                at: activity.attemptScheduledTime)
            } else {
                dispatchActivityTask(activity, key: key)
            }
        }
        for timer in state.timers.values.sorted(by: { $0.startedEventID < $1.startedEventID }) {
            timers.schedule(.userTimer(timerID: timer.timerID, startedEventID: timer.startedEventID), for: key, at: timer.fireTime)
        }
    }
}
