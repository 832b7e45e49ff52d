import Synchronization
import SpoolMatching

extension SpoolEngine {
    /// Waits up to `timeout` for an activity task on `taskQueue`, records that its attempt
    /// started (a state change, no history event: ActivityTaskStarted is written with the
    /// outcome) and returns it; nil when the time is up or the calling task is cancelled.
    /// Tasks whose activity moved on while queued (completed, timed out, canceled) are skipped.
    ///
    /// `identity` names the poller in ``describeTaskQueue(namespace:taskQueue:kind:fairnessKeys:)``.
    /// `maxTasksPerSecond` is the queue-wide rate this worker asks for (Temporal's
    /// `TaskQueueMetadata.max_tasks_per_second`): the latest poller's value applies to every
    /// poller of the queue unless ``updateTaskQueueConfig(_:)`` set one; 0 holds every task back.
    /// `workerMaxTasksPerSecond` caps the rate at which this identity gets tasks, enforced here
    /// before a task is handed over (so no task waits in a worker's buffer); a task whose
    /// schedule-to-start deadline passed while the poll was throttled takes no token.
    /// - Throws: ``SpoolError/Code/invalidArgument`` for a bad queue name, identity or rate;
    ///   ``SpoolError/Code/storage``; ``SpoolError/Code/closed``.
    public func pollActivityTaskQueue(namespace: String = defaultNamespace, taskQueue: String, identity: String = "",
                                      timeout: Duration = .seconds(60), maxTasksPerSecond: Double? = nil,
                                      workerMaxTasksPerSecond: Double? = nil) async throws(SpoolError) -> ActivityTask? {
        try checkOpen()
        let queue = try self.queue(namespace: namespace, name: taskQueue, kind: .activity)
        if let maxTasksPerSecond {
            try notePollerRate(maxTasksPerSecond, key: TaskQueueSettingKey(namespace: namespace, name: taskQueue, kind: .activity), queue: queue)
        } else if taskQueueSettings.pollerRateCount.load(ordering: .relaxed) > 0 {
            expirePollerRate(key: TaskQueueSettingKey(namespace: namespace, name: taskQueue, kind: .activity), queue: queue)
        }
        let poller = try pollerHandle(queue, identity: identity, workerMaxTasksPerSecond: workerMaxTasksPerSecond, namespace: namespace)
        let deadline = clock.matchingClock.now().advanced(by: timeout)
        while let queued = await queue.poll(until: deadline, poller: poller) {
            if let task = try await startActivityTask(queued.payload, identity: identity) {
                queue.pollerUsedTask(poller)
                return task
            }
            queue.pollerDiscardedTask(poller)
            metrics.staleTasksSkipped.increment()
        }
        return nil
    }

    private func startActivityTask(_ reference: TaskReference, identity: String) async throws(SpoolError) -> ActivityTask? {
        guard let handle = registry.handle(reference.key) else { return nil }
        await handle.gate.acquire()
        defer { handle.gate.release() }
        let state = handle.state
        let now = clock.now()
        guard state.isRunning, let activity = state.activities[reference.scheduledEventID], activity.attempt == reference.attempt,
              !activity.isStarted, activity.attemptScheduledTime <= now else { return nil }
        // Past its schedule-to-start deadline: the timer will time it out; a worker must not start it.
        if let timeout = activity.attributes.scheduleToStartTimeout, now >= activity.attemptScheduledTime.advanced(by: timeout) { return nil }
        var transition = Transition(state, now: now)
        try transition.record(.activityStarted(scheduledEventID: activity.scheduledEventID, attempt: activity.attempt, time: now,
                                               identity: identity, requestID: RequestID.next()))
        try await commit(handle, transition)
        guard let started = transition.state.activities[activity.scheduledEventID] else { return nil }
        return activityTask(for: started, state: transition.state)
    }

    /// The task handed to a worker for the started attempt of `activity`.
    func activityTask(for activity: ActivityInfo, state: ExecutionState) -> ActivityTask {
        let a = activity.attributes
        return ActivityTask(
            taskToken: TaskToken(kind: .activity, key: state.key, scheduledEventID: activity.scheduledEventID, startedEventID: 0,
                                 attempt: activity.attempt),
            workflowNamespace: state.key.namespace, workflowType: state.workflowType, workflowExecution: state.key.execution,
            activityID: a.activityID, activityType: a.activityType, header: a.header, input: a.input, heartbeatDetails: activity.heartbeatDetails,
            scheduledTime: activity.scheduledTime, currentAttemptScheduledTime: activity.attemptScheduledTime,
            startedTime: activity.startedTime ?? activity.attemptScheduledTime, attempt: activity.attempt,
            scheduleToCloseTimeout: a.scheduleToCloseTimeout, startToCloseTimeout: a.startToCloseTimeout,
            heartbeatTimeout: a.heartbeatTimeout, retryPolicy: a.retryPolicy)
    }

    /// Locks the run an activity task token names and checks that the token names the running
    /// attempt of a pending activity; runs `body` on a transition and commits it.
    private func transitionStartedActivity<Result>(
        _ token: TaskToken, _ body: (inout Transition, ActivityInfo) throws(SpoolError) -> Result
    ) async throws(SpoolError) -> Result {
        try checkOpen()
        guard token.kind == .activity else {
            throw token.key.error(.invalidTaskToken, "a workflow task token was given for an activity task", eventID: token.scheduledEventID)
        }
        let handle = try await lockRun(namespace: token.namespace, execution: token.execution)
        defer { handle.gate.release() }
        let state = handle.state
        guard state.isRunning, let activity = state.activities[token.scheduledEventID], activity.attempt == token.attempt,
              activity.isStarted else {
            throw token.key.error(.staleTaskToken,
                                  "attempt \(token.attempt) of the activity is not running (it completed, was retried, timed out or was canceled)",
                                  eventID: token.scheduledEventID)
        }
        var transition = Transition(state, now: clock.now())
        let result = try body(&transition, activity)
        if !transition.isEmpty { try await commit(handle, transition) }
        return result
    }

    /// Completes the running attempt: ActivityTaskStarted and ActivityTaskCompleted (buffered
    /// while a workflow task is started), and a workflow task if none is outstanding.
    /// - Throws: ``SpoolError/Code/staleTaskToken`` when the token does not name the running
    ///   attempt (nothing changes); ``SpoolError/Code/notFound``; ``SpoolError/Code/storage``.
    /// - Parameter workerVersion: the worker's build id stamp, recorded in ActivityTaskCompleted.
    public func respondActivityTaskCompleted(taskToken: TaskToken, result: Payloads? = nil, identity: String = "",
                                             workerVersion: WorkerVersionStamp? = nil) async throws(SpoolError) {
        try await transitionStartedActivity(taskToken) { transition, activity throws(SpoolError) in
            try transition.addActivityOutcome(activity) { startedEventID in
                .activityTaskCompleted(.init(result: result, scheduledEventID: activity.scheduledEventID,
                                             startedEventID: startedEventID, identity: identity, workerVersion: workerVersion))
            }
        }
    }

    /// Fails the running attempt. It is retried (no event: the attempt grows and a backoff timer
    /// is set) unless the failure is not retryable under the policy
    /// (``Failure/isRetryable(nonRetryableErrorTypes:)``), the attempts are used up, the next attempt would start after the
    /// schedule-to-close deadline, or cancellation was requested; then ActivityTaskStarted and
    /// ActivityTaskFailed are written with the retry state.
    /// - Parameters:
    ///   - lastHeartbeatDetails: details to keep for the next attempt, as a heartbeat would.
    ///   - workerVersion: the worker's build id stamp, recorded in ActivityTaskFailed.
    /// - Throws: ``SpoolError/Code/staleTaskToken`` (nothing changes); ``SpoolError/Code/notFound``; ``SpoolError/Code/storage``.
    public func respondActivityTaskFailed(taskToken: TaskToken, failure: Failure, lastHeartbeatDetails: Payloads? = nil,
                                          identity: String = "", workerVersion: WorkerVersionStamp? = nil) async throws(SpoolError) {
        try await transitionStartedActivity(taskToken) { transition, activity throws(SpoolError) in
            var activity = activity
            if let lastHeartbeatDetails {
                try transition.record(.activityHeartbeat(scheduledEventID: activity.scheduledEventID, details: lastHeartbeatDetails,
                                                         time: transition.now))
                activity = transition.state.activities[activity.scheduledEventID] ?? activity
            }
            try endAttempt(of: activity, failure: failure, timeout: nil, identity: identity, workerVersion: workerVersion, in: &transition)
        }
    }

    /// Reports that the running attempt stopped because cancellation was requested:
    /// ActivityTaskStarted and ActivityTaskCanceled.
    /// - Throws: ``SpoolError/Code/staleTaskToken`` (nothing changes); ``SpoolError/Code/notFound``; ``SpoolError/Code/storage``.
    /// - Parameter workerVersion: the worker's build id stamp, recorded in ActivityTaskCanceled.
    public func respondActivityTaskCanceled(taskToken: TaskToken, details: Payloads? = nil, identity: String = "",
                                            workerVersion: WorkerVersionStamp? = nil) async throws(SpoolError) {
        try await transitionStartedActivity(taskToken) { transition, activity throws(SpoolError) in
            try transition.addActivityOutcome(activity) { startedEventID in
                .activityTaskCanceled(.init(details: details, latestCancelRequestedEventID: activity.cancelRequestedEventID,
                                            scheduledEventID: activity.scheduledEventID, startedEventID: startedEventID,
                                            identity: identity, workerVersion: workerVersion))
            }
        }
    }

    /// Records a heartbeat of the running attempt with its details (kept for the next attempt,
    /// durable before this returns) and says whether the workflow asked to cancel the activity.
    /// - Throws: ``SpoolError/Code/staleTaskToken`` (nothing changes); ``SpoolError/Code/notFound``; ``SpoolError/Code/storage``.
    @discardableResult
    public func recordActivityTaskHeartbeat(taskToken: TaskToken, details: Payloads? = nil,
                                            identity: String = "") async throws(SpoolError) -> RecordActivityTaskHeartbeatResponse {
        try await transitionStartedActivity(taskToken) { transition, activity throws(SpoolError) in
            try transition.record(.activityHeartbeat(scheduledEventID: activity.scheduledEventID, details: details, time: transition.now))
            return RecordActivityTaskHeartbeatResponse(cancelRequested: activity.cancelRequestedEventID != 0)
        }
    }

    /// Ends the current attempt of `activity` with `failure`: a retry if the policy allows one,
    /// else the closing events (ActivityTaskTimedOut when `timeout` is set, ActivityTaskFailed otherwise).
    ///
    /// A timeout's closing failure is Temporal's: it carries the activity's last heartbeat
    /// details, and a start-to-close or heartbeat timeout whose retry would have passed the
    /// schedule-to-close deadline is written as a schedule-to-close timeout.
    func endAttempt(of activity: ActivityInfo, failure: Failure, timeout: TimeoutType?, identity: String,
                    workerVersion: WorkerVersionStamp? = nil, in transition: inout Transition) throws(SpoolError) {
        let now = transition.now
        let (delay, retryState) = retryDecision(activity, failure: failure, timeout: timeout, now: now)
        var failure = failure
        if let delay {
            try transition.record(.activityRetryScheduled(scheduledEventID: activity.scheduledEventID, attempt: activity.attempt + 1,
                                                          time: now.advanced(by: delay), failure: failure))
            return
        }
        if let timeout {
            let expired = retryState == .timeout && (timeout == .startToClose || timeout == .heartbeat)
            failure = .timeout(expired ? .scheduleToClose : timeout, lastHeartbeatDetails: activity.heartbeatDetails)
        }
        try transition.addActivityOutcome(activity) { startedEventID in
            if timeout != nil {
                return .activityTaskTimedOut(.init(failure: failure, scheduledEventID: activity.scheduledEventID,
                                                   startedEventID: startedEventID, retryState: retryState))
            }
            return .activityTaskFailed(.init(failure: failure, scheduledEventID: activity.scheduledEventID,
                                             startedEventID: startedEventID, identity: identity, retryState: retryState,
                                             workerVersion: workerVersion))
        }
    }

    /// Whether and when attempt `activity.attempt + 1` runs (temporal-semantics.md, Activities).
    func retryDecision(_ activity: ActivityInfo, failure: Failure, timeout: TimeoutType?, now: Timestamp) -> (Duration?, RetryState) {
        let policy = activity.attributes.retryPolicy
        if timeout == .scheduleToStart || timeout == .scheduleToClose { return (nil, .timeout) }
        if activity.cancelRequestedEventID != 0 { return (nil, .cancelRequested) }
        if !failure.isRetryable(nonRetryableErrorTypes: policy.nonRetryableErrorTypes) { return (nil, .nonRetryableFailure) }
        if policy.maximumAttempts > 0 && activity.attempt >= policy.maximumAttempts { return (nil, .maximumAttemptsReached) }
        let delay = failure.nextRetryDelay ?? policy.backoff(afterAttempt: activity.attempt)
        if let scheduleToClose = activity.attributes.scheduleToCloseTimeout,
           now.advanced(by: delay) >= activity.scheduledTime.advanced(by: scheduleToClose) {
            return (nil, .timeout)
        }
        return (delay, .inProgress)
    }
}
