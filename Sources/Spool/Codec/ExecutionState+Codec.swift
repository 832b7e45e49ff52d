import SpoolLog

// The layout of a run's state in a checkpoint (see Checkpoint.swift): every field of
// ExecutionState in declaration order. Pending activities reuse the ActivityTaskScheduled event
// layout for their attributes. Payloads, failures and events are in the ValueLayout the
// checkpoint or closed-run table names. The extended layout appends the run options as one
// length-prefixed byte string (so that a skim steps over them in one go): attempt, header, memo,
// search attributes, retry policy (optional), cron schedule, execution timeout (optional),
// execution expiration time (optional), execution time, first workflow task time (optional),
// last completion result (optional payloads), start memo, start search attributes; then the
// workflow task's transient flag and request id (an optional, present with a workflow task).

extension ExecutionState {
    func encode(into w: inout BinaryWriter) {
        w.string(key.namespace); w.string(key.workflowID); w.string(key.runID)
        w.string(workflowType); w.string(taskQueue); w.payloads(input); w.duration(workflowRunTimeout)
        w.duration(workflowTaskTimeout); w.string(firstExecutionRunID); w.string(requestID); w.timestamp(startTime)
        w.byte(status.rawValue); w.optional(closeTime) { $0.timestamp($1) }; w.signed(nextEventID)
        w.count(buffered.count)
        for event in buffered { event.encode(into: &w) }
        w.optional(workflowTask) { w, task in
            w.signed(task.scheduledEventID); w.signed(Int64(task.attempt)); w.string(task.taskQueue)
            w.duration(task.startToCloseTimeout); w.timestamp(task.scheduledTime); w.signed(task.startedEventID)
            w.optional(task.startedTime) { $0.timestamp($1) }; w.string(task.identity); w.bool(task.isSticky)
            w.optional(task.dispatchTime) { $0.timestamp($1) }
        }
        w.signed(previousStartedEventID)
        w.count(activities.count)
        for activity in activities.values.sorted(by: { $0.scheduledEventID < $1.scheduledEventID }) {
            HistoryEvent(eventID: activity.scheduledEventID, eventTime: activity.scheduledTime,
                         attributes: .activityTaskScheduled(activity.attributes)).encode(into: &w)
            w.signed(Int64(activity.attempt)); w.timestamp(activity.attemptScheduledTime)
            w.optional(activity.startedTime) { $0.timestamp($1) }; w.string(activity.startedIdentity)
            w.string(activity.startedRequestID); w.payloads(activity.heartbeatDetails)
            w.optional(activity.lastHeartbeatTime) { $0.timestamp($1) }; w.signed(activity.cancelRequestedEventID)
            w.failure(activity.lastFailure); w.string(activity.lastWorkerIdentity)
        }
        w.count(timers.count)
        for timer in timers.values.sorted(by: { $0.startedEventID < $1.startedEventID }) {
            w.string(timer.timerID); w.signed(timer.startedEventID); w.timestamp(timer.fireTime)
        }
        w.bool(cancelRequested)
        w.optional(newExecutionRunID) { $0.string($1) }
        w.optional(stickyTaskQueue) { $0.string($1) }
        w.duration(stickyScheduleToStartTimeout)
        var options = BinaryWriter(capacity: 64)
        options.signed(Int64(attempt)); options.header(header); options.payloadMap(memo); options.payloadMap(searchAttributes)
        options.optional(retryPolicy) { $1.encode(into: &$0) }
        options.string(cronSchedule); options.duration(workflowExecutionTimeout)
        options.optional(executionExpirationTime) { $0.timestamp($1) }
        options.timestamp(executionTime)
        options.optional(firstWorkflowTaskTime) { $0.timestamp($1) }
        options.payloads(lastCompletionResult)
        options.payloadMap(startMemo); options.payloadMap(startSearchAttributes)
        w.payload(options)
        // Layout 3 (extended): what a workflow task has besides its layout-2 fields.
        w.optional(workflowTask) { w, task in
            w.bool(task.isTransient); w.string(task.requestID)
        }
        w.priority(priority)
        // Layout 4 (related): the related-runs record, length-prefixed so a skim steps over it.
        var related = BinaryWriter(capacity: 16)
        self.related.encode(into: &related)
        w.payload(related)
    }

    static func decode(from r: inout BinaryReader<SpoolError>, layout: ValueLayout) throws(SpoolError) -> ExecutionState {
        let key = ExecutionKey(namespace: try r.string(), workflowID: try r.string(), runID: try r.string())
        let started = WorkflowExecutionStartedEventAttributes(
            workflowType: try r.string(), taskQueue: try r.string(), input: try r.optionalPayloads(layout),
            workflowRunTimeout: try r.optionalDuration(), workflowTaskTimeout: try r.duration(), continuedExecutionRunID: "",
            firstExecutionRunID: try r.string(), identity: "", requestID: try r.string(), attempt: 1)
        var state = ExecutionState(key: key, started: started, startTime: try r.timestamp())
        state.status = try r.enumeration(WorkflowExecutionStatus.self)
        state.closeTime = try r.optional { r throws(SpoolError) in try r.timestamp() }
        state.nextEventID = try r.signed()
        for _ in 0..<(try r.count()) { state.buffered.append(try HistoryEvent.decode(from: &r, layout: layout)) }
        state.workflowTask = try r.optional { r throws(SpoolError) in
            WorkflowTaskInfo(scheduledEventID: try r.signed(), attempt: try r.int32(), taskQueue: try r.string(),
                             startToCloseTimeout: try r.duration(), scheduledTime: try r.timestamp(), startedEventID: try r.signed(),
                             startedTime: try r.optional { r throws(SpoolError) in try r.timestamp() }, identity: try r.string(),
                             isSticky: try r.bool(), dispatchTime: try r.optional { r throws(SpoolError) in try r.timestamp() })
        }
        state.previousStartedEventID = try r.signed()
        for _ in 0..<(try r.count()) {
            let event = try HistoryEvent.decode(from: &r, layout: layout)
            guard case .activityTaskScheduled(let attributes) = event.attributes else { throw r.corrupt("a pending activity without attributes") }
            let activity = ActivityInfo(
                scheduledEventID: event.eventID, attributes: attributes, scheduledTime: event.eventTime, attempt: try r.int32(),
                attemptScheduledTime: try r.timestamp(), startedTime: try r.optional { r throws(SpoolError) in try r.timestamp() },
                startedIdentity: try r.string(), startedRequestID: try r.string(), heartbeatDetails: try r.optionalPayloads(layout),
                lastHeartbeatTime: try r.optional { r throws(SpoolError) in try r.timestamp() },
                cancelRequestedEventID: try r.signed(), lastFailure: try r.optionalFailure(layout), lastWorkerIdentity: try r.string())
            state.activities[activity.scheduledEventID] = activity
            state.activityIDs[attributes.activityID] = activity.scheduledEventID
        }
        for _ in 0..<(try r.count()) {
            let timer = UserTimerInfo(timerID: try r.string(), startedEventID: try r.signed(), fireTime: try r.timestamp())
            state.timers[timer.timerID] = timer
        }
        state.cancelRequested = try r.bool()
        state.newExecutionRunID = try r.optional { r throws(SpoolError) in try r.string() }
        state.stickyTaskQueue = try r.optional { r throws(SpoolError) in try r.string() }
        state.stickyScheduleToStartTimeout = try r.optionalDuration()
        if layout.isExtended {
            var o = BinaryReader<SpoolError>(try r.payload(), context: "run options of \(key)")
            state.attempt = try o.int32()
            state.header = try o.header(layout)
            state.memo = try o.payloadMap()
            state.searchAttributes = try o.payloadMap()
            state.retryPolicy = try o.optional { r throws(SpoolError) in try RetryPolicy.decode(from: &r) }
            state.cronSchedule = try o.string()
            state.workflowExecutionTimeout = try o.optionalDuration()
            state.executionExpirationTime = try o.optional { r throws(SpoolError) in try r.timestamp() }
            state.executionTime = try o.timestamp()
            state.firstWorkflowTaskTime = try o.optional { r throws(SpoolError) in try r.timestamp() }
            state.lastCompletionResult = try o.optionalPayloads(layout)
            state.startMemo = try o.payloadMap()
            state.startSearchAttributes = try o.payloadMap()
            guard o.isAtEnd else { throw o.corrupt("bytes left after the run options") }
            let extras = try r.optional { r throws(SpoolError) in (isTransient: try r.bool(), requestID: try r.string()) }
            guard (extras == nil) == (state.workflowTask == nil) else { throw r.corrupt("workflow-task fields without a workflow task") }
            if let extras {
                state.workflowTask?.isTransient = extras.isTransient
                state.workflowTask?.requestID = extras.requestID
            }
        }
        state.priority = try r.priority(layout)
        if layout.isRelated {
            var related = BinaryReader<SpoolError>(try r.payload(), context: "related runs of \(key)")
            state.related = try RelatedRuns.decode(from: &related, layout: layout)
            guard related.isAtEnd else { throw related.corrupt("bytes left after the related runs") }
        }
        return state
    }
}
