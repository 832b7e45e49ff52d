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
    /// `updateMessages` processes the protocol messages ProtocolMessage commands name.
    func apply(_ commands: [Command], to transition: inout Transition, completedEventID: Int64,
               identity: String, updateMessages: inout UpdateMessageProcessing) throws(SpoolError) -> CommandOutcome {
        var needsWorkflowTask = false
        var eagerActivities: [Int64] = []
        var continuation: (request: StartWorkflowExecutionRequest, runID: String, link: ChainLink)?
        var closed = false
        // By index: binding each command copies it (its attributes' strings and payloads retained).
        for index in commands.indices {
            // Only a rejection says where: built then, not for every command (~2k instructions a workflow).
            func position() -> String { "command \(index + 1) of \(commands.count)" }
            if closed {
                return .rejected(closingCause(of: commands[index - 1]),
                                 "\(position()) follows a command that closed the workflow; a closing command must be the last")
            }
            if commands[index].isClosing && !transition.state.buffered.isEmpty {
                return .rejected(.unhandledCommand,
                                 "\(position()) closes the workflow while \(transition.state.buffered.count) new events wait for it")
            }
            switch commands[index] {
            case .scheduleActivityTask(let a):
                switch scheduledActivity(a, state: transition.state, completedEventID: completedEventID) {
                case .failure(let rejection):
                    return .rejected(rejection.cause, "\(position()) (ScheduleActivityTask '\(a.activityID)'): \(rejection.message)")
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
                                     "\(position()) (RequestCancelActivityTask): no pending activity was scheduled by event \(a.scheduledEventID)")
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
                if a.timerID.isEmpty { return .rejected(.badStartTimerAttributes, "\(position()) (StartTimer): the timer id is empty") }
                if a.startToFireTimeout <= .zero {
                    return .rejected(.badStartTimerAttributes, "\(position()) (StartTimer '\(a.timerID)'): startToFireTimeout must be positive")
                }
                if transition.state.timers[a.timerID] != nil {
                    return .rejected(.startTimerDuplicateID, "\(position()) (StartTimer): timer '\(a.timerID)' is already pending")
                }
                try transition.add(.timerStarted(.init(timerID: a.timerID, startToFireTimeout: a.startToFireTimeout,
                                                       workflowTaskCompletedEventID: completedEventID)),
                                   userMetadata: a.userMetadata)
            case .cancelTimer(let a):
                guard let timer = transition.state.timers[a.timerID] else {
                    return .rejected(.badCancelTimerAttributes, "\(position()) (CancelTimer): no pending timer '\(a.timerID)'")
                }
                try transition.add(.timerCanceled(.init(timerID: a.timerID, startedEventID: timer.startedEventID,
                                                        workflowTaskCompletedEventID: completedEventID, identity: identity)))
            case .recordMarker(let a):
                if a.markerName.isEmpty { return .rejected(.badRecordMarkerAttributes, "\(position()) (RecordMarker): the marker name is empty") }
                try transition.add(.markerRecorded(.init(markerName: a.markerName, details: a.details,
                                                         workflowTaskCompletedEventID: completedEventID, failure: a.failure,
                                                         header: a.header)))
            case .upsertWorkflowSearchAttributes(let a):
                if a.searchAttributes.isEmpty {
                    return .rejected(.badSearchAttributes, "\(position()) (UpsertWorkflowSearchAttributes): no search attributes are given")
                }
                if let problem = searchAttributeProblem(a.searchAttributes, namespace: transition.state.key.namespace) {
                    return .rejected(.badSearchAttributes, "\(position()) (UpsertWorkflowSearchAttributes): \(problem)")
                }
                try transition.add(.upsertWorkflowSearchAttributes(.init(workflowTaskCompletedEventID: completedEventID,
                                                                         searchAttributes: a.searchAttributes)))
            case .protocolMessage(let a):
                if let problem = try updateMessages.process(messageID: a.messageID, into: &transition) {
                    return .rejected(.badUpdateWorkflowExecutionMessage, "\(position()) (ProtocolMessage): \(problem)")
                }
            case .startChildWorkflowExecution, .signalExternalWorkflowExecution, .requestCancelExternalWorkflowExecution:
                if let rejected = try applyRelatedRunCommand(commands[index], to: &transition, completedEventID: completedEventID,
                                                             position: position()) {
                    return rejected
                }
            case .modifyWorkflowProperties(let a):
                if a.upsertedMemo.isEmpty {
                    return .rejected(.badModifyWorkflowPropertiesAttributes, "\(position()) (ModifyWorkflowProperties): no memo fields are given")
                }
                try transition.add(.workflowPropertiesModified(.init(workflowTaskCompletedEventID: completedEventID,
                                                                     upsertedMemo: a.upsertedMemo)))
            case .completeWorkflowExecution(let a):
                // A cron schedule starts its next run, handing on the result.
                let (_, link) = nextRun(after: .completed(a.result), state: transition.state, now: transition.now)
                let runID = link == nil ? "" : RunID.generate()
                try transition.add(.workflowExecutionCompleted(.init(result: a.result, workflowTaskCompletedEventID: completedEventID,
                                                                     newExecutionRunID: runID)))
                if let link { continuation = (chainRequest(from: link.from), runID, link) }
                closed = true
            case .failWorkflowExecution(let a):
                // The retry policy, else a cron schedule, may start the next run.
                let (retryState, link) = nextRun(after: .failed(a.failure), state: transition.state, now: transition.now)
                let runID = link == nil ? "" : RunID.generate()
                try transition.add(.workflowExecutionFailed(.init(failure: a.failure, retryState: retryState,
                                                                  workflowTaskCompletedEventID: completedEventID,
                                                                  newExecutionRunID: runID)))
                if let link { continuation = (chainRequest(from: link.from), runID, link) }
                closed = true
            case .cancelWorkflowExecution(let a):
                try transition.add(.workflowExecutionCanceled(.init(workflowTaskCompletedEventID: completedEventID, details: a.details)))
                closed = true
            case .continueAsNewWorkflowExecution(let a):
                let state = transition.state
                // Memo, search attributes, retry policy and cron schedule default to the run's
                // current ones (Temporal's SDKs send them; a command without them inherits).
                var request = StartWorkflowExecutionRequest(
                    namespace: state.key.namespace, workflowID: state.key.workflowID,
                    workflowType: a.workflowType.isEmpty ? state.workflowType : a.workflowType,
                    taskQueue: a.taskQueue.isEmpty ? state.taskQueue : a.taskQueue, input: a.input,
                    workflowRunTimeout: a.workflowRunTimeout ?? state.workflowRunTimeout,
                    workflowTaskTimeout: a.workflowTaskTimeout ?? state.workflowTaskTimeout, identity: identity, header: a.header,
                    retryPolicy: a.retryPolicy ?? state.retryPolicy, cronSchedule: a.cronSchedule ?? state.cronSchedule,
                    memo: a.memo ?? state.memo, searchAttributes: a.searchAttributes ?? state.searchAttributes)
                // Temporal's inheritance: the new run keeps this run's priority, field by field,
                // where the command sets none.
                request.priority = a.priority.merged(over: state.priority)
                if let problem = a.priority.problem(field: "priority") {
                    return .rejected(.badContinueAsNewAttributes, "\(position()) (ContinueAsNewWorkflowExecution): \(problem)")
                }
                if (try? validateQueueName(request.taskQueue, what: "the task queue")) == nil
                    || (request.workflowRunTimeout.map { $0 <= .zero } ?? false) || (request.workflowTaskTimeout.map { $0 <= .zero } ?? false)
                    || (a.backoffStartInterval.map { $0 < .zero } ?? false) {
                    return .rejected(.badContinueAsNewAttributes, "\(position()) (ContinueAsNewWorkflowExecution): a bad task queue, timeout or backoff")
                }
                if let problem = request.retryPolicy?.validationError() {
                    return .rejected(.badContinueAsNewAttributes, "\(position()) (ContinueAsNewWorkflowExecution): the \(problem)")
                }
                if let attributes = a.searchAttributes, let problem = searchAttributeProblem(attributes, namespace: state.key.namespace) {
                    return .rejected(.badSearchAttributes, "\(position()) (ContinueAsNewWorkflowExecution): \(problem)")
                }
                if !request.cronSchedule.isEmpty, (try? CronSchedule(request.cronSchedule)) == nil {
                    return .rejected(.badContinueAsNewAttributes,
                                     "\(position()) (ContinueAsNewWorkflowExecution): the cron schedule '\(request.cronSchedule)' is not valid")
                }
                let initiator = a.initiator == .unspecified ? ContinueAsNewInitiator.workflow : a.initiator
                let link = ChainLink(from: state, initiator: initiator, backoff: a.backoffStartInterval, continuedFailure: a.failure,
                                     lastCompletionResult: a.lastCompletionResult,
                                     attempt: initiator == .retry ? state.attempt + 1 : 1)
                let runID = RunID.generate()
                try transition.add(.workflowExecutionContinuedAsNew(.init(
                    newExecutionRunID: runID, workflowType: request.workflowType, taskQueue: request.taskQueue,
                    input: request.input, workflowRunTimeout: request.workflowRunTimeout,
                    workflowTaskTimeout: request.workflowTaskTimeout ?? configuration.defaultWorkflowTaskTimeout,
                    workflowTaskCompletedEventID: completedEventID, header: a.header,
                    backoffStartInterval: a.backoffStartInterval, initiator: initiator, failure: a.failure,
                    lastCompletionResult: a.lastCompletionResult, memo: request.memo, searchAttributes: request.searchAttributes)))
                continuation = (request, runID, link)
                closed = true
            }
        }
        // Only now that every command is valid: a rejected task must leave no reserved run behind.
        let newRun = try continuation.map { continuation throws(SpoolError) in
            try reserveContinuedRun(continuation.request, runID: continuation.runID, link: continuation.link, now: transition.now)
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

    /// Reserves the run a continue-as-new, retry or cron schedule starts (in the registry,
    /// invisible, gate held). The caller holds the old run's gate, so no start can take the
    /// workflow id meanwhile: the old run is still open to every other caller until the append.
    func reserveContinuedRun(_ request: StartWorkflowExecutionRequest, runID: String, link: ChainLink,
                             now: Timestamp) throws(SpoolError) -> (handle: ExecutionHandle, transition: Transition) {
        let workflowKey = link.from.key.workflowKey
        return try registry.withShard(of: workflowKey) { shard throws(SpoolError) -> (handle: ExecutionHandle, transition: Transition) in
            let (handle, transition) = try makeRun(request, workflowKey: workflowKey, now: now, continuing: link, runID: runID)
            shard.runs[handle.key] = handle
            shard.currentRuns[workflowKey] = handle.key.runID
            return (handle, transition)
        }
    }

    struct CommandRejection: Error {
        var cause: WorkflowTaskFailedCause
        var message: String
    }

    /// Validates a ScheduleActivityTask command and fills in its timeouts as Temporal's
    /// `validateActivityScheduleAttributes` does; the filled values are what
    /// ActivityTaskScheduled records:
    /// - a zero (or nil) timeout is unset; a negative one rejects the command;
    /// - with schedule-to-close: schedule-to-start and start-to-close default to it and are
    ///   capped by it;
    /// - without it but with start-to-close: schedule-to-close and (when unset)
    ///   schedule-to-start are the run timeout (unset when the run has none);
    /// - with neither: the command is rejected (`BadScheduleActivityAttributes`);
    /// - every timeout is capped by the run timeout, and the heartbeat timeout by start-to-close.
    /// Also the workflow's task queue by default, and the default retry policy.
    private func scheduledActivity(_ a: ScheduleActivityTaskCommandAttributes, state: ExecutionState,
                                   completedEventID: Int64) -> Result<ActivityTaskScheduledEventAttributes, CommandRejection> {
        func bad(_ message: String) -> Result<ActivityTaskScheduledEventAttributes, CommandRejection> {
            .failure(CommandRejection(cause: .badScheduleActivityAttributes, message: message))
        }
        if a.activityID.isEmpty { return bad("ActivityId is not set on command.") }
        if a.activityType.isEmpty { return bad("ActivityType is not set on command.") }
        if state.activityIDs[a.activityID] != nil {
            return .failure(CommandRejection(cause: .scheduleActivityDuplicateID, message: "activity id '\(a.activityID)' is already pending"))
        }
        let taskQueue = a.taskQueue.isEmpty ? state.taskQueue : a.taskQueue
        if (try? validateQueueName(taskQueue, what: "the task queue")) == nil { return bad("'\(taskQueue)' is not a valid task queue name") }
        for (name, value) in [("ScheduleToCloseTimeout", a.scheduleToCloseTimeout), ("ScheduleToStartTimeout", a.scheduleToStartTimeout),
                              ("StartToCloseTimeout", a.startToCloseTimeout), ("HeartbeatTimeout", a.heartbeatTimeout)] {
            if let value, value < .zero { return bad("Invalid \(name): negative duration") }
        }
        func set(_ value: Duration?) -> Duration? { value.flatMap { $0 > .zero ? $0 : nil } }
        let runTimeout = set(state.workflowRunTimeout)
        var scheduleToClose = set(a.scheduleToCloseTimeout)
        var scheduleToStart = set(a.scheduleToStartTimeout)
        var startToClose = set(a.startToCloseTimeout)
        var heartbeat = set(a.heartbeatTimeout)
        if let limit = scheduleToClose {
            scheduleToStart = min(scheduleToStart ?? limit, limit)
            startToClose = min(startToClose ?? limit, limit)
        } else if startToClose != nil {
            scheduleToClose = runTimeout
            if scheduleToStart == nil { scheduleToStart = runTimeout }
        } else {
            return bad("A valid StartToClose or ScheduleToCloseTimeout is not set on command.")
        }
        if let runTimeout {
            scheduleToClose = scheduleToClose.map { min($0, runTimeout) }
            scheduleToStart = scheduleToStart.map { min($0, runTimeout) }
            startToClose = startToClose.map { min($0, runTimeout) }
            heartbeat = heartbeat.map { min($0, runTimeout) }
        }
        guard let startToClose else { return bad("A valid StartToClose or ScheduleToCloseTimeout is not set on command.") }
        heartbeat = heartbeat.map { min($0, startToClose) }
        let policy = a.retryPolicy ?? RetryPolicy()
        if let problem = policy.validationError() { return bad(problem) }
        if let problem = a.priority.problem(field: "priority") { return bad(problem) }
        return .success(ActivityTaskScheduledEventAttributes(
            activityID: a.activityID, activityType: a.activityType, taskQueue: taskQueue, input: a.input,
            scheduleToCloseTimeout: scheduleToClose, scheduleToStartTimeout: scheduleToStart,
            startToCloseTimeout: startToClose, heartbeatTimeout: heartbeat, workflowTaskCompletedEventID: completedEventID,
            retryPolicy: policy, header: a.header, priority: a.priority.merged(over: state.priority)))
    }
}
