/// What became of a workflow task's commands.
enum CommandOutcome {
    /// All commands were applied. `needsWorkflowTask`: they produced an event the workflow must
    /// see (an activity canceled before it started). `newRun`: a continue-as-new's run.
    /// `eagerActivities`: scheduled event ids of activities to start for the responding worker.
    case accepted(needsWorkflowTask: Bool, newRun: (handle: ExecutionHandle, transition: Transition)?, eagerActivities: [Int64])
    /// A command was invalid; the transition must be dropped.
    case rejected(WorkflowTaskFailedCause, String)
}

extension SpoolEngine {
    /// Applies `commands` in order to `transition`. Stops at the first invalid command and
    /// returns why (the caller drops the transition, so nothing of the earlier commands stays).
    func apply(_ commands: [Command], to transition: inout Transition, completedEventID: Int64,
               identity: String) throws(SpoolError) -> CommandOutcome {
        var needsWorkflowTask = false
        var eagerActivities: [Int64] = []
        var continuation: (request: StartWorkflowExecutionRequest, runID: String, from: ExecutionState)?
        var closed = false
        for (index, command) in commands.enumerated() {
            let position = "command \(index + 1) of \(commands.count)"
            if closed {
                return .rejected(closingCause(of: commands[index - 1]),
                                 "\(position) follows a command that closed the workflow; a closing command must be the last")
            }
            if command.isClosing && !transition.state.buffered.isEmpty {
                return .rejected(.unhandledCommand,
                                 "\(position) closes the workflow while \(transition.state.buffered.count) new events wait for it")
            }
            switch command {
            case .scheduleActivityTask(let a):
                switch scheduledActivity(a, state: transition.state, completedEventID: completedEventID) {
                case .failure(let rejection):
                    return .rejected(rejection.cause, "\(position) (ScheduleActivityTask '\(a.activityID)'): \(rejection.message)")
                case .success(let attributes):
                    let scheduledEventID = try transition.add(.activityTaskScheduled(attributes), userMetadata: a.userMetadata)
                    // Eager only on the workflow's own queue, as in Temporal: the responding worker polls it.
                    if a.requestEagerExecution && attributes.taskQueue == transition.state.taskQueue {
                        eagerActivities.append(scheduledEventID)
                    }
                }
            case .requestCancelActivityTask(let a):
                guard let activity = transition.state.activities[a.scheduledEventID] else {
                    return .rejected(.badRequestCancelActivityAttributes,
                                     "\(position) (RequestCancelActivityTask): no pending activity was scheduled by event \(a.scheduledEventID)")
                }
                let requestedID = try transition.add(.activityTaskCancelRequested(.init(
                    scheduledEventID: a.scheduledEventID, workflowTaskCompletedEventID: completedEventID)))
                if !activity.isStarted {
                    // Not running anywhere: canceled at once, and the workflow is told.
                    try transition.add(.activityTaskCanceled(.init(details: nil, latestCancelRequestedEventID: requestedID,
                                                                   scheduledEventID: a.scheduledEventID, startedEventID: 0,
                                                                   identity: identity)))
                    needsWorkflowTask = true
                }
            case .startTimer(let a):
                if a.timerID.isEmpty { return .rejected(.badStartTimerAttributes, "\(position) (StartTimer): the timer id is empty") }
                if a.startToFireTimeout <= .zero {
                    return .rejected(.badStartTimerAttributes, "\(position) (StartTimer '\(a.timerID)'): startToFireTimeout must be positive")
                }
                if transition.state.timers[a.timerID] != nil {
                    return .rejected(.startTimerDuplicateID, "\(position) (StartTimer): timer '\(a.timerID)' is already pending")
                }
                try transition.add(.timerStarted(.init(timerID: a.timerID, startToFireTimeout: a.startToFireTimeout,
                                                       workflowTaskCompletedEventID: completedEventID)),
                                   userMetadata: a.userMetadata)
            case .cancelTimer(let a):
                guard let timer = transition.state.timers[a.timerID] else {
                    return .rejected(.badCancelTimerAttributes, "\(position) (CancelTimer): no pending timer '\(a.timerID)'")
                }
                try transition.add(.timerCanceled(.init(timerID: a.timerID, startedEventID: timer.startedEventID,
                                                        workflowTaskCompletedEventID: completedEventID, identity: identity)))
            case .recordMarker(let a):
                if a.markerName.isEmpty { return .rejected(.badRecordMarkerAttributes, "\(position) (RecordMarker): the marker name is empty") }
                try transition.add(.markerRecorded(.init(markerName: a.markerName, details: a.details,
                                                         workflowTaskCompletedEventID: completedEventID, failure: a.failure,
                                                         header: a.header)))
            case .completeWorkflowExecution(let a):
                try transition.add(.workflowExecutionCompleted(.init(result: a.result, workflowTaskCompletedEventID: completedEventID)))
                closed = true
            case .failWorkflowExecution(let a):
                try transition.add(.workflowExecutionFailed(.init(failure: a.failure, retryState: .retryPolicyNotSet,
                                                                  workflowTaskCompletedEventID: completedEventID)))
                closed = true
            case .cancelWorkflowExecution(let a):
                try transition.add(.workflowExecutionCanceled(.init(workflowTaskCompletedEventID: completedEventID, details: a.details)))
                closed = true
            case .continueAsNewWorkflowExecution(let a):
                let state = transition.state
                var request = StartWorkflowExecutionRequest(
                    namespace: state.key.namespace, workflowID: state.key.workflowID,
                    workflowType: a.workflowType.isEmpty ? state.workflowType : a.workflowType,
                    taskQueue: a.taskQueue.isEmpty ? state.taskQueue : a.taskQueue, input: a.input,
                    workflowRunTimeout: a.workflowRunTimeout ?? state.workflowRunTimeout,
                    workflowTaskTimeout: a.workflowTaskTimeout ?? state.workflowTaskTimeout, identity: identity, header: a.header)
                // Temporal's inheritance: the new run keeps this run's priority, field by field,
                // where the command sets none.
                request.priority = a.priority.merged(over: state.priority)
                if let problem = a.priority.problem(field: "priority") {
                    return .rejected(.badContinueAsNewAttributes, "\(position) (ContinueAsNewWorkflowExecution): \(problem)")
                }
                if (try? validateQueueName(request.taskQueue, what: "the task queue")) == nil
                    || (request.workflowRunTimeout.map { $0 <= .zero } ?? false) || (request.workflowTaskTimeout.map { $0 <= .zero } ?? false) {
                    return .rejected(.badContinueAsNewAttributes, "\(position) (ContinueAsNewWorkflowExecution): a bad task queue or timeout")
                }
                let runID = RunID.generate()
                try transition.add(.workflowExecutionContinuedAsNew(.init(
                    newExecutionRunID: runID, workflowType: request.workflowType, taskQueue: request.taskQueue,
                    input: request.input, workflowRunTimeout: request.workflowRunTimeout,
                    workflowTaskTimeout: request.workflowTaskTimeout ?? configuration.defaultWorkflowTaskTimeout,
                    workflowTaskCompletedEventID: completedEventID, header: a.header)))
                continuation = (request, runID, state)
                closed = true
            }
        }
        // Only now that every command is valid: a rejected task must leave no reserved run behind.
        let newRun = try continuation.map { continuation throws(SpoolError) in
            try reserveContinuedRun(continuation.request, runID: continuation.runID, from: continuation.from, now: transition.now)
        }
        return .accepted(needsWorkflowTask: needsWorkflowTask, newRun: newRun, eagerActivities: eagerActivities)
    }

    private func closingCause(of command: Command) -> WorkflowTaskFailedCause {
        switch command {
        case .failWorkflowExecution: .badFailWorkflowExecutionAttributes
        case .cancelWorkflowExecution: .badCancelWorkflowExecutionAttributes
        case .continueAsNewWorkflowExecution: .badContinueAsNewAttributes
        default: .badCompleteWorkflowExecutionAttributes
        }
    }

    /// Reserves the run a continue-as-new starts (in the registry, invisible, gate held). The
    /// caller holds the old run's gate, so no start can take the workflow id meanwhile: the old
    /// run is still open to every other caller until the append.
    private func reserveContinuedRun(_ request: StartWorkflowExecutionRequest, runID: String, from state: ExecutionState,
                                     now: Timestamp) throws(SpoolError) -> (handle: ExecutionHandle, transition: Transition) {
        let workflowKey = state.key.workflowKey
        return try registry.withShard(of: workflowKey) { shard throws(SpoolError) -> (handle: ExecutionHandle, transition: Transition) in
            let (handle, transition) = try makeRun(request, workflowKey: workflowKey, now: now, continuedFrom: state, runID: runID)
            shard.runs[handle.key] = handle
            shard.currentRuns[workflowKey] = handle.key.runID
            return (handle, transition)
        }
    }

    struct CommandRejection: Error {
        var cause: WorkflowTaskFailedCause
        var message: String
    }

    /// Validates a ScheduleActivityTask command and fills in Temporal's defaults: the workflow's
    /// task queue, start-to-close from schedule-to-close, timeouts capped by schedule-to-close,
    /// the default retry policy.
    private func scheduledActivity(_ a: ScheduleActivityTaskCommandAttributes, state: ExecutionState,
                                   completedEventID: Int64) -> Result<ActivityTaskScheduledEventAttributes, CommandRejection> {
        func bad(_ message: String) -> Result<ActivityTaskScheduledEventAttributes, CommandRejection> {
            .failure(CommandRejection(cause: .badScheduleActivityAttributes, message: message))
        }
        if a.activityID.isEmpty { return bad("the activity id is empty") }
        if a.activityType.isEmpty { return bad("the activity type is empty") }
        if state.activityIDs[a.activityID] != nil {
            return .failure(CommandRejection(cause: .scheduleActivityDuplicateID, message: "activity id '\(a.activityID)' is already pending"))
        }
        let taskQueue = a.taskQueue.isEmpty ? state.taskQueue : a.taskQueue
        if (try? validateQueueName(taskQueue, what: "the task queue")) == nil { return bad("'\(taskQueue)' is not a valid task queue name") }
        for (name, value) in [("scheduleToCloseTimeout", a.scheduleToCloseTimeout), ("scheduleToStartTimeout", a.scheduleToStartTimeout),
                              ("startToCloseTimeout", a.startToCloseTimeout), ("heartbeatTimeout", a.heartbeatTimeout)] {
            if let value, value <= .zero { return bad("\(name) must be positive") }
        }
        guard var startToClose = a.startToCloseTimeout ?? a.scheduleToCloseTimeout else {
            return bad("either startToCloseTimeout or scheduleToCloseTimeout is required")
        }
        var scheduleToStart = a.scheduleToStartTimeout
        var heartbeat = a.heartbeatTimeout
        if let scheduleToClose = a.scheduleToCloseTimeout {
            startToClose = min(startToClose, scheduleToClose)
            scheduleToStart = scheduleToStart.map { min($0, scheduleToClose) }
        }
        heartbeat = heartbeat.map { min($0, startToClose) }
        let policy = a.retryPolicy ?? RetryPolicy()
        if let problem = policy.validationError() { return bad(problem) }
        if let problem = a.priority.problem(field: "priority") { return bad(problem) }
        return .success(ActivityTaskScheduledEventAttributes(
            activityID: a.activityID, activityType: a.activityType, taskQueue: taskQueue, input: a.input,
            scheduleToCloseTimeout: a.scheduleToCloseTimeout, scheduleToStartTimeout: scheduleToStart,
            startToCloseTimeout: startToClose, heartbeatTimeout: heartbeat, workflowTaskCompletedEventID: completedEventID,
            retryPolicy: policy, header: a.header, priority: a.priority.merged(over: state.priority)))
    }
}
