extension SpoolEngine {
    /// Gives back a workflow task that a poll took but could not hand to its worker (a remote
    /// worker whose connection went away between the match and the answer): the started
    /// attempt times out now — WorkflowTaskTimedOut (start-to-close), as it would once its
    /// timeout passed — and the next attempt is scheduled at once, instead of the run waiting
    /// out the timeout for a task nobody is working on. A query-only task goes back on its queue.
    /// Does nothing when the token no longer
    /// names the run's started workflow task (it completed, failed or timed out meanwhile).
    /// - Throws: ``SpoolError/Code/invalidTaskToken`` for an activity task's token;
    ///   ``SpoolError/Code/notFound``; ``SpoolError/Code/storage``; ``SpoolError/Code/closed``.
    public func returnUndeliveredWorkflowTask(taskToken: TaskToken) async throws(SpoolError) {
        try checkOpen()
        if taskToken.kind == .query { return returnUndeliveredQueryTask(taskToken) }
        guard taskToken.kind == .workflow else {
            throw taskToken.key.error(.invalidTaskToken, "an activity task token was given for a workflow task", eventID: taskToken.scheduledEventID)
        }
        let handle = try await lockRun(namespace: taskToken.namespace, execution: taskToken.execution)
        defer { handle.gate.release() }
        let state = handle.state
        guard state.isRunning, let task = state.workflowTask, task.scheduledEventID == taskToken.scheduledEventID,
              task.startedEventID == taskToken.startedEventID, taskToken.startedEventID != 0, task.attempt == taskToken.attempt else { return }
        var transition = Transition(state, now: clock.now())
        try timeOutStartedWorkflowTask(task, state: state, into: &transition)
        try await commit(handle, transition)
    }

    /// Gives back an activity task that a poll took but could not hand to its worker: the started
    /// attempt becomes scheduled again — the same attempt, as if no poll had taken it (nothing is
    /// written to history: an activity's started event is written with its outcome) — and goes
    /// back on its queue at once, instead of waiting out its start-to-close timeout. Does nothing
    /// when the token no longer names a started attempt of a pending activity (it completed,
    /// failed, timed out or was retried meanwhile).
    ///
    /// Only for a task its worker never received: a worker that got the task and gives up on it
    /// fails it (``respondActivityTaskFailed(taskToken:failure:lastHeartbeatDetails:identity:workerVersion:)``).
    /// - Throws: ``SpoolError/Code/invalidTaskToken`` for a workflow or query task's token;
    ///   ``SpoolError/Code/notFound``; ``SpoolError/Code/storage``; ``SpoolError/Code/closed``.
    public func returnUndeliveredActivityTask(taskToken: TaskToken) async throws(SpoolError) {
        try checkOpen()
        guard taskToken.kind == .activity else {
            throw taskToken.key.error(.invalidTaskToken, "a workflow task token was given for an activity task", eventID: taskToken.scheduledEventID)
        }
        let handle = try await lockRun(namespace: taskToken.namespace, execution: taskToken.execution)
        defer { handle.gate.release() }
        let state = handle.state
        guard state.isRunning, let activity = state.activities[taskToken.scheduledEventID], activity.attempt == taskToken.attempt,
              activity.isStarted else { return }
        var transition = Transition(state, now: clock.now())
        try transition.record(.activityStartReturned(scheduledEventID: activity.scheduledEventID, attempt: activity.attempt))
        try await commit(handle, transition)
    }

    /// What the start-to-close timeout of the run's started workflow task `task` does:
    /// WorkflowTaskTimedOut (nothing for a transient attempt), the events buffered meanwhile, the
    /// end of stickiness, and the next attempt (Temporal's rules, see
    /// ``SpoolEngineConfiguration/workflowTaskRetryPolicy``).
    func timeOutStartedWorkflowTask(_ task: WorkflowTaskInfo, state: ExecutionState, into transition: inout Transition) throws(SpoolError) {
        try transition.failWorkflowTaskAttempt(task, writing: .workflowTaskTimedOut(.init(
            scheduledEventID: task.scheduledEventID, startedEventID: task.startedEventID, timeoutType: .startToClose)),
            policy: configuration.workflowTaskRetryPolicy)
    }
}
