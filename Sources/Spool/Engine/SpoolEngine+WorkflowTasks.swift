import Synchronization
import SpoolMatching

extension SpoolEngine {
    /// Waits up to `timeout` for a workflow task on `taskQueue`, records WorkflowTaskStarted
    /// (durable before this returns) and returns the task with its history; nil when the time is
    /// up or the calling task is cancelled. Tasks whose run moved on while they were queued are
    /// skipped.
    ///
    /// `sticky` says `taskQueue` is the caller's own sticky queue (Temporal's `TaskQueueKind.STICKY`):
    /// it gets one partition.
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
    public func pollWorkflowTaskQueue(namespace: String = defaultNamespace, taskQueue: String, identity: String = "",
                                      timeout: Duration = .seconds(60), maxTasksPerSecond: Double? = nil,
                                      workerMaxTasksPerSecond: Double? = nil, sticky: Bool = false) async throws(SpoolError) -> WorkflowTask? {
        try checkOpen()
        let queue = try self.queue(namespace: namespace, name: taskQueue, kind: .workflow)
        // A worker's sticky queue has one poller process: one partition, as in Temporal.
        if sticky { _ = try? queue.setPartitions(1) }
        if let maxTasksPerSecond {
            try notePollerRate(maxTasksPerSecond, key: TaskQueueSettingKey(namespace: namespace, name: taskQueue, kind: .workflow), queue: queue)
        } else if taskQueueSettings.pollerRateCount.load(ordering: .relaxed) > 0 {
            expirePollerRate(key: TaskQueueSettingKey(namespace: namespace, name: taskQueue, kind: .workflow), queue: queue)
        }
        let poller = try pollerHandle(queue, identity: identity, workerMaxTasksPerSecond: workerMaxTasksPerSecond, namespace: namespace)
        let deadline = clock.matchingClock.now().advanced(by: timeout)
        while let queued = await queue.poll(until: deadline, poller: poller) {
            if queued.payload.queryID != 0 {
                if let task = try queryTask(queued.payload) { return task }
            } else if let task = try await startWorkflowTask(queued.payload, identity: identity) {
                queue.pollerUsedTask(poller)
                return task
            }
            queue.pollerDiscardedTask(poller)
            metrics.staleTasksSkipped.increment()
        }
        return nil
    }

    /// Records WorkflowTaskStarted for the task `reference` names if it is still the run's
    /// scheduled workflow task; nil otherwise.
    private func startWorkflowTask(_ reference: TaskReference, identity: String) async throws(SpoolError) -> WorkflowTask? {
        guard let handle = registry.handle(reference.key) else { return nil }
        await handle.gate.acquire()
        defer { handle.gate.release() }
        let state = handle.state
        guard state.isRunning, let task = state.workflowTask, task.scheduledEventID == reference.scheduledEventID,
              task.attempt == reference.attempt, task.startedEventID == 0 else { return nil }
        var transition = Transition(state, now: clock.now())
        // Events written since a transient task was scheduled make it a normal one (Temporal does
        // this when it starts; the paths that write events already did, this is the safety net).
        if try transition.convertTransientWorkflowTaskIfNeeded(), let converted = transition.state.workflowTask {
            try transition.add(.workflowTaskStarted(.init(scheduledEventID: converted.scheduledEventID, identity: identity,
                                                          requestID: RequestID.next())))
        } else if task.isTransient {
            // Not written: the worker gets the transient Scheduled and Started appended to its history.
            try transition.record(.transientWorkflowTaskStarted(scheduledEventID: task.scheduledEventID, time: transition.now,
                                                                identity: identity, requestID: RequestID.next()))
        } else {
            try transition.add(.workflowTaskStarted(.init(scheduledEventID: task.scheduledEventID, identity: identity,
                                                          requestID: RequestID.next())))
        }
        try await commit(handle, transition)
        guard var started = try workflowTask(from: transition.state, history: history(of: handle)) else { return nil }
        if !queries.isEmpty { started.queries = queries.attach(key: handle.key, startedEventID: started.startedEventID) }
        started.messages = updateRequestMessages(for: handle.key, startedEventID: started.startedEventID)
        return started
    }

    /// The task handed to a worker for the run's started workflow task; nil when none is started.
    /// A transient attempt's history ends with its Scheduled and Started events, which are not
    /// written yet (as Temporal appends its `TransientWorkflowTaskInfo`).
    func workflowTask(from state: ExecutionState, history events: [HistoryEvent]) -> WorkflowTask? {
        guard let task = state.workflowTask, let startedTime = task.startedTime else { return nil }
        var history = task.isSticky && Int(state.previousStartedEventID) <= events.count
            ? Array(events[Int(state.previousStartedEventID)...])
            : events
        if task.isTransient { history += task.transientHistorySuffix() }
        return WorkflowTask(
            taskToken: TaskToken(kind: .workflow, key: state.key, scheduledEventID: task.scheduledEventID,
                                 startedEventID: task.startedEventID, attempt: task.attempt),
            workflowExecution: state.key.execution, workflowType: state.workflowType,
            previousStartedEventID: state.previousStartedEventID, startedEventID: task.startedEventID, attempt: task.attempt,
            history: history, workflowExecutionTaskQueue: state.taskQueue, scheduledTime: task.scheduledTime, startedTime: startedTime)
    }

    /// Locks the run a workflow task token names and checks that the token names its started
    /// workflow task. The caller must unlock the gate.
    func lockStartedWorkflowTask(_ token: TaskToken) async throws(SpoolError) -> (ExecutionHandle, ExecutionState, WorkflowTaskInfo) {
        guard token.kind == .workflow else { throw Self.workflowTokenProblem(token, stale: false) }
        let handle = try await lockRun(namespace: token.namespace, execution: token.execution)
        let state = handle.state
        guard state.isRunning, let task = state.workflowTask, task.scheduledEventID == token.scheduledEventID,
              task.startedEventID == token.startedEventID, token.startedEventID != 0, task.attempt == token.attempt else {
            handle.gate.release()
            throw Self.workflowTokenProblem(token, stale: true)
        }
        return (handle, state, task)
    }

    /// The error for a workflow task token that names no started workflow task (`stale`) or is an
    /// activity's. Out of line, for the async caller's frame.
    @inline(never)
    private static func workflowTokenProblem(_ token: TaskToken, stale: Bool) -> SpoolError {
        stale ? token.key.error(.staleTaskToken, "the workflow task is no longer started (it completed, failed or timed out)",
                                eventID: token.scheduledEventID)
              : token.key.error(.invalidTaskToken, "an activity task token was given for a workflow task", eventID: token.scheduledEventID)
    }

    /// Fails a started workflow task at the worker's request: WorkflowTaskFailed with `cause`,
    /// the buffered events, and the next attempt on the run's normal queue. The run itself does
    /// not fail. As in Temporal, every cause is handled alike, except for the attempt:
    /// - `nonDeterministicError`, `workflowWorkerUnhandledFailure`, `unhandledCommand`, the
    ///   `bad…Attributes` causes: the next attempt is attempt + 1, transient from attempt 2 on
    ///   (its failure then writes nothing);
    /// - any cause on a run with a sticky queue, `resetStickyTaskQueue` included (an SDK whose
    ///   cache lost the run): stickiness ends, WorkflowTaskFailed is written, and the attempt is
    ///   not raised — the next task is attempt 1, written, with the full history;
    /// - `resetWorkflow`, `failoverCloseCommand`: the attempt goes back to 1;
    /// - events buffered while the task ran reset the attempt to 1.
    /// `binaryChecksum` and `workerVersion` are recorded in WorkflowTaskFailed as sent.
    /// - Throws: ``SpoolError/Code/staleTaskToken``; ``SpoolError/Code/notFound``; ``SpoolError/Code/storage``.
    public func respondWorkflowTaskFailed(taskToken: TaskToken, cause: WorkflowTaskFailedCause = .workflowWorkerUnhandledFailure,
                                          failure: Failure, identity: String = "", binaryChecksum: String = "",
                                          workerVersion: WorkerVersionStamp? = nil) async throws(SpoolError) {
        try checkOpen()
        let (handle, state, task) = try await lockStartedWorkflowTask(taskToken)
        defer { handle.gate.release() }
        let transition = try failedWorkflowTask(state, task, cause: cause, failure: failure, identity: identity,
                                                binaryChecksum: binaryChecksum, workerVersion: workerVersion, now: clock.now())
        try await commit(handle, transition)
    }

    /// WorkflowTaskFailed (nothing for a transient attempt), buffered events, stickiness cleared,
    /// and the next attempt on the normal queue (see ``Transition/failWorkflowTaskAttempt(_:writing:raisesAttempt:policy:)``).
    func failedWorkflowTask(_ state: ExecutionState, _ task: WorkflowTaskInfo, cause: WorkflowTaskFailedCause,
                                    failure: Failure?, identity: String, binaryChecksum: String, workerVersion: WorkerVersionStamp?,
                                    now: Timestamp) throws(SpoolError) -> Transition {
        var transition = Transition(state, now: now)
        try transition.failWorkflowTaskAttempt(task, writing: .workflowTaskFailed(.init(
            scheduledEventID: task.scheduledEventID, startedEventID: task.startedEventID, cause: cause, failure: failure,
            identity: identity, binaryChecksum: binaryChecksum, workerVersion: workerVersion)),
            raisesAttempt: cause != .resetWorkflow && cause != .failoverCloseCommand, policy: configuration.workflowTaskRetryPolicy)
        return transition
    }
}
