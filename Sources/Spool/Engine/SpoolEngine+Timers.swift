import Logging

extension SpoolEngine {
    /// Fires every timer due now (timeouts, retry backoffs, user timers, sticky fallbacks) and
    /// returns once their transitions are durable; repeats while firing makes more timers due.
    ///
    /// The engine's timer loop calls this; tests that drive a manual clock (with
    /// ``SpoolEngineConfiguration/firesTimersAutomatically`` off) call it after each advance.
    public func fireDueTimers() async {
        while true {
            let due = timers.popDue(now: clock.now())
            if due.isEmpty { return }
            metrics.timersFired.increment(by: due.count)
            // Runs fire concurrently; one run's timers fire one after another in deadline order
            // (ties in the order they were set), so that when two of its timeouts fall due at the
            // same instant the outcome does not depend on which task takes the run's gate first.
            var runs: [ExecutionKey: [TimerEntry]] = [:]
            for entry in due {
                // Most timers come up after their run closed (a run sets 3–4 timeouts and closes
                // long before them). On a closed run only retention does anything, so those are
                // dropped here, without a task, the run's gate or a copy of its state. A run never
                // reopens, so no later transition could make them current again.
                if entry.kind != .retention {
                    guard let handle = registry.handle(entry.key), handle.isRunning else { continue }
                }
                runs[entry.key, default: []].append(entry)
            }
            if runs.isEmpty { continue }
            await withTaskGroup(of: Void.self) { group in
                for entries in runs.values {
                    group.addTask { for entry in entries { await self.fire(entry) } }
                }
            }
        }
    }

    private func fire(_ entry: TimerEntry) async {
        guard let handle = registry.handle(entry.key) else { return }
        await handle.gate.acquire()
        defer { handle.gate.release() }
        let state = handle.state
        if entry.kind == .retention {
            guard let retention = closedRunRetention(for: state.key.namespace), let closed = state.closeTime, !handle.isRemoved else { return }
            let expiry = closed.advanced(by: retention)
            let horizon = retentionClock.now()
            if horizon >= expiry {
                drop(handle)
            } else {
                // The log's newest record is not yet past the run's retention (RetentionClock):
                // look again once it could be, at least a minute on.
                let wait = max(expiry.duration(since: horizon), .seconds(60))
                timers.schedule(.retention, for: entry.key, at: clock.now().advanced(by: wait))
            }
            return
        }
        guard state.isRunning, !handle.isRemoved else { return }
        var transition = Transition(state, now: clock.now())
        do {
            // A run timeout may start the run's retry or its next cron run, in the same append.
            let newRun = try fire(entry.kind, state: state, queues: handle.taskQueues, into: &transition)
            if let newRun {
                do {
                    try await commit([(handle, transition), newRun])
                } catch {
                    unreserve(newRun.handle, previousRunID: handle.key.runID)
                    throw error
                }
                newRun.handle.gate.release()
            } else if !transition.isEmpty {
                try await commit(handle, transition)
            }
        } catch {
            logger.error("a timer's transition failed", metadata: ["run": "\(entry.key)", "timer": "\(entry.kind)", "error": "\(error)"])
        }
    }

    /// Takes a closed run whose retention ended out of the registry (its workflow id is free
    /// again); its records are garbage for compaction. The caller holds its gate.
    func drop(_ handle: ExecutionHandle) {
        handle.markRemoved()
        visibility.remove(handle.key)
        registry.withShard(of: handle.key.workflowKey) { shard in
            shard.runs[handle.key] = nil
            if shard.currentRuns[handle.key.workflowKey] == handle.key.runID {
                shard.currentRuns[handle.key.workflowKey] = nil
            }
        }
    }

    /// Adds what a due timer does to `transition`, if the state it was set for is still current;
    /// returns the run it starts (a run timeout's retry or next cron run), reserved.
    private func fire(_ kind: TimerKind, state: ExecutionState, queues: RunTaskQueues?,
                      into transition: inout Transition) throws(SpoolError) -> (handle: ExecutionHandle, transition: Transition)? {
        let now = transition.now
        let key = state.key
        switch kind {
        case let .workflowTaskStartToClose(scheduledEventID, startedEventID):
            guard let task = state.workflowTask, task.scheduledEventID == scheduledEventID, task.startedEventID == startedEventID,
                  let started = task.startedTime, now >= started.advanced(by: task.startToCloseTimeout) else { return nil }
            try timeOutStartedWorkflowTask(task, state: state, into: &transition)
            return nil
        case let .workflowTaskDispatch(scheduledEventID):
            // Transient attempts share their scheduled id: only the attempt whose backoff ends now goes out.
            guard let task = state.workflowTask, task.scheduledEventID == scheduledEventID, task.startedEventID == 0,
                  (task.dispatchTime ?? now) <= now else { return nil }
            // Its backoff ended: it goes on its queue (the record was written when it was scheduled).
            dispatchWorkflowTask(task, state: state, queues: queues)
        case let .workflowTaskScheduleToStart(scheduledEventID):
            guard let task = state.workflowTask, task.scheduledEventID == scheduledEventID, task.startedEventID == 0, task.isSticky else { return nil }
            try moveOffStickyQueue(&transition)
        case let .activityScheduleToStart(scheduledEventID, attempt):
            guard let activity = state.activities[scheduledEventID], activity.attempt == attempt, !activity.isStarted,
                  let timeout = activity.attributes.scheduleToStartTimeout,
                  now >= activity.attemptScheduledTime.advanced(by: timeout) else { return nil }
            try endAttempt(of: activity, failure: .timeout(.scheduleToStart),
                           timeout: .scheduleToStart, identity: "", in: &transition)
        case let .activityStartToClose(scheduledEventID, attempt):
            guard let activity = state.activities[scheduledEventID], activity.attempt == attempt,
                  let started = activity.startedTime, now >= started.advanced(by: activity.attributes.startToCloseTimeout) else { return nil }
            try endAttempt(of: activity, failure: .timeout(.startToClose),
                           timeout: .startToClose, identity: "", in: &transition)
        case let .activityHeartbeat(scheduledEventID, attempt):
            guard let activity = state.activities[scheduledEventID], activity.attempt == attempt,
                  let started = activity.startedTime, let timeout = activity.attributes.heartbeatTimeout else { return nil }
            let lastBeat = max(started, activity.lastHeartbeatTime ?? started)
            let deadline = lastBeat.advanced(by: timeout)
            guard now >= deadline else {
                // It heartbeated since this timer was set: wait for the gap after the latest beat.
                timers.schedule(kind, for: key, at: deadline)
                return nil
            }
            try endAttempt(of: activity, failure: .timeout(.heartbeat),
                           timeout: .heartbeat, identity: "", in: &transition)
        case let .activityScheduleToClose(scheduledEventID):
            guard let activity = state.activities[scheduledEventID], let timeout = activity.attributes.scheduleToCloseTimeout,
                  now >= activity.scheduledTime.advanced(by: timeout) else { return nil }
            try endAttempt(of: activity, failure: .timeout(.scheduleToClose),
                           timeout: .scheduleToClose, identity: "", in: &transition)
        case let .activityRetry(scheduledEventID, attempt):
            guard let activity = state.activities[scheduledEventID], activity.attempt == attempt, !activity.isStarted else { return nil }
            // The retry's record was written when the attempt failed; going on the queue writes nothing.
            dispatchActivityTask(activity, key: key, queues: queues)
        case let .userTimer(timerID, startedEventID):
            guard let timer = state.timers[timerID], timer.startedEventID == startedEventID, now >= timer.fireTime else { return nil }
            try transition.addWorkflowInput(.timerFired(.init(timerID: timerID, startedEventID: startedEventID)))
            try transition.scheduleWorkflowTaskIfNeeded()
        case .retention:
            break
        case .workflowRunTimeout:
            guard let expiration = state.runExpirationTime, now >= expiration else { return nil }
            return try timeOutRun(&transition)
        case .firstWorkflowTask:
            guard let time = state.firstWorkflowTaskTime, now >= time else { return nil }
            try transition.endFirstWorkflowTaskBackoff()
        }
        return nil
    }
}
