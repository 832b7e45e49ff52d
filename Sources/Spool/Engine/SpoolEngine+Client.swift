import SpoolLog

extension SpoolEngine {
    /// Delivers a signal: WorkflowExecutionSignaled, buffered while a workflow task is started,
    /// and a workflow task if none is outstanding. Returns once durable.
    ///
    /// `header` and `requestID` are recorded in the event as sent. A signal whose non-empty
    /// `requestID` the run already received (a client's retry) changes nothing and succeeds, as
    /// in Temporal. Cost of that check: a scan of the run's signal events (in memory while open).
    /// - Throws: ``SpoolError/Code/notFound`` when the run does not exist or is closed;
    ///   ``SpoolError/Code/invalidArgument`` for an empty signal name; ``SpoolError/Code/storage``.
    public func signalWorkflowExecution(namespace: String = defaultNamespace, execution: WorkflowExecution, signalName: String,
                                        input: Payloads? = nil, identity: String = "", header: Header = Header(),
                                        requestID: String = "") async throws(SpoolError) {
        try checkOpen()
        guard !signalName.isEmpty else {
            throw SpoolError(.invalidArgument, "the signal name is empty", namespace: namespace, workflowID: execution.workflowID)
        }
        let handle = try await lockRun(namespace: namespace, execution: execution)
        defer { handle.gate.release() }
        try await signal(handle, signalName: signalName, input: input, identity: identity, header: header, requestID: requestID)
    }

    /// Signals the open run whose gate the caller holds; a request id it already received does nothing.
    ///
    /// A plain signal leaves a run waiting out its first-workflow-task backoff waiting (the
    /// signal is delivered with the first task); `endsBackoff` (a signal-with-start) schedules
    /// the first workflow task at once, as in Temporal.
    func signal(_ handle: ExecutionHandle, signalName: String, input: Payloads?, identity: String, header: Header,
                requestID: String, endsBackoff: Bool = false,
                externalWorkflowExecution: WorkflowExecution? = nil) async throws(SpoolError) {
        let state = handle.state
        guard state.isRunning else { throw handle.key.error(.notFound, "the workflow execution is already \(state.status)") }
        if !requestID.isEmpty, try hasSignal(requestID: requestID, handle: handle, state: state) { return }
        var transition = Transition(state, now: clock.now())
        try transition.addWorkflowInput(.workflowExecutionSignaled(.init(signalName: signalName, input: input, identity: identity,
                                                                         header: header, requestID: requestID,
                                                                         externalWorkflowExecution: externalWorkflowExecution)))
        if endsBackoff { try transition.endFirstWorkflowTaskBackoff() }
        try transition.scheduleWorkflowTaskIfNeeded()
        try await commit(handle, transition)
    }

    /// Whether the run has a signal with `requestID`, written or buffered.
    func hasSignal(requestID: String, handle: ExecutionHandle, state: ExecutionState) throws(SpoolError) -> Bool {
        func matches(_ event: HistoryEvent) -> Bool {
            if case .workflowExecutionSignaled(let signaled) = event.attributes { return signaled.requestID == requestID }
            return false
        }
        if state.buffered.contains(where: matches) { return true }
        return try history(of: handle).contains(where: matches)
    }

    /// Asks the workflow to cancel itself: WorkflowExecutionCancelRequested (once; a repeated
    /// request changes nothing) and a workflow task. The workflow decides what to do. As in
    /// Temporal, a request for a run that already closed succeeds and changes nothing, so a
    /// client's retry never fails because its first attempt worked.
    /// - Throws: ``SpoolError/Code/notFound`` when the run does not exist; ``SpoolError/Code/storage``.
    public func requestCancelWorkflowExecution(namespace: String = defaultNamespace, execution: WorkflowExecution,
                                               reason: String = "", identity: String = "") async throws(SpoolError) {
        try checkOpen()
        let handle = try await lockRun(namespace: namespace, execution: execution)
        defer { handle.gate.release() }
        let state = handle.state
        guard state.isRunning, !state.cancelRequested else { return }
        var transition = Transition(state, now: clock.now())
        try transition.addWorkflowInput(.workflowExecutionCancelRequested(.init(cause: reason, identity: identity)))
        try transition.scheduleWorkflowTaskIfNeeded()
        try await commit(handle, transition)
    }

    /// Closes the run at once with WorkflowExecutionTerminated (a started workflow task fails
    /// with ForceCloseCommand first, buffered events are written). Pending tasks and timers are dropped.
    /// - Throws: ``SpoolError/Code/notFound`` when the run does not exist or is closed; ``SpoolError/Code/storage``.
    public func terminateWorkflowExecution(namespace: String = defaultNamespace, execution: WorkflowExecution, reason: String = "",
                                           details: Payloads? = nil, identity: String = "") async throws(SpoolError) {
        try checkOpen()
        try await transitionOpenRun(namespace: namespace, execution: execution) { transition throws(SpoolError) in
            try self.terminate(&transition, reason: reason, details: details, identity: identity)
        }
    }

    /// Runs `body` on a transition of the open run `execution` names and commits it if it changed anything.
    private func transitionOpenRun(namespace: String, execution: WorkflowExecution,
                                   _ body: (inout Transition) throws(SpoolError) -> Void) async throws(SpoolError) {
        let handle = try await lockRun(namespace: namespace, execution: execution)
        defer { handle.gate.release() }
        let state = handle.state
        guard state.isRunning else { throw handle.key.error(.notFound, "the workflow execution is already \(state.status)") }
        var transition = Transition(state, now: clock.now())
        try body(&transition)
        if !transition.isEmpty { try await commit(handle, transition) }
    }

    private func visibleHandle(namespace: String, execution: WorkflowExecution) throws(SpoolError) -> ExecutionHandle {
        try checkNamespace(namespace)
        guard let handle = registry.handle(namespace: namespace, execution: execution), handle.isVisible else {
            throw SpoolError(.notFound, "no such workflow execution", namespace: namespace,
                             workflowID: execution.workflowID, runID: execution.runID)
        }
        return handle
    }

    /// Describes a run: its summary, pending workflow task, activities and timers.
    /// - Throws: ``SpoolError/Code/notFound``.
    public func describeWorkflowExecution(namespace: String = defaultNamespace,
                                          execution: WorkflowExecution) throws(SpoolError) -> DescribeWorkflowExecutionResponse {
        let handle = try visibleHandle(namespace: namespace, execution: execution)
        let state = handle.state
        let activities = state.activities.values.sorted { $0.scheduledEventID < $1.scheduledEventID }.map { activity in
            PendingActivityInfo(
                activityID: activity.attributes.activityID, activityType: activity.attributes.activityType,
                scheduledEventID: activity.scheduledEventID,
                state: activity.cancelRequestedEventID != 0 ? .cancelRequested : activity.isStarted ? .started : .scheduled,
                heartbeatDetails: activity.heartbeatDetails, lastHeartbeatTime: activity.lastHeartbeatTime,
                lastStartedTime: activity.startedTime, attempt: activity.attempt,
                maximumAttempts: activity.attributes.retryPolicy.maximumAttempts, scheduledTime: activity.scheduledTime,
                currentAttemptScheduledTime: activity.attemptScheduledTime,
                expirationTime: activity.attributes.scheduleToCloseTimeout.map { activity.scheduledTime.advanced(by: $0) },
                lastFailure: activity.lastFailure, lastWorkerIdentity: activity.lastWorkerIdentity)
        }
        let task = state.workflowTask.map { task in
            PendingWorkflowTaskInfo(started: task.startedEventID != 0, scheduledEventID: task.scheduledEventID,
                                    scheduledTime: task.scheduledTime, startedTime: task.startedTime, attempt: task.attempt,
                                    taskQueue: task.taskQueue)
        }
        return DescribeWorkflowExecutionResponse(
            executionInfo: state.info, workflowRunTimeout: state.workflowRunTimeout, workflowTaskTimeout: state.workflowTaskTimeout,
            pendingActivities: activities, pendingWorkflowTask: task,
            pendingTimerIDs: state.timers.values.sorted { $0.startedEventID < $1.startedEventID }.map(\.timerID),
            bufferedEventCount: state.buffered.count, stickyTaskQueue: state.stickyTaskQueue,
            cancelRequested: state.cancelRequested, newExecutionRunID: state.newExecutionRunID,
            firstExecutionRunID: state.firstExecutionRunID, stateTransitionCount: Int64(handle.historyOrOffsets.offsets.count),
            workflowExecutionTimeout: state.workflowExecutionTimeout, executionExpirationTime: state.executionExpirationTime,
            attempt: state.attempt, retryPolicy: state.retryPolicy, cronSchedule: state.cronSchedule,
            pendingChildren: pendingChildren(of: state))
    }

    /// Lists the runs of a namespace, optionally only those with `status` and of `workflowType`,
    /// newest start first. Cost: a scan of every run the engine holds,
    /// decoding the closed runs of its closed-run table (those not in memory).
    public func listWorkflowExecutions(namespace: String = defaultNamespace, status: WorkflowExecutionStatus? = nil,
                                       workflowType: String? = nil) -> [WorkflowExecutionInfo] {
        registry.allStates(namespace: namespace)
            .filter { state in
                (status.map { state.status == $0 } ?? true) && (workflowType.map { state.workflowType == $0 } ?? true)
            }
            .sorted { ($0.startTime, $0.key.runID) > ($1.startTime, $1.key.runID) }
            .map(\.info)
    }

    /// Reads a run's history by page. With `waitNewEvent`, a read past the last event waits
    /// (until `timeout`, or the calling task is cancelled) for new events or for the run to
    /// close; with the `closeEvent` filter it waits for the closing event and returns only it.
    ///
    /// - Parameters:
    ///   - maximumPageSize: the most events per page (at least 1).
    ///   - nextPageToken: the token of the previous page; nil for the first.
    ///   - timeout: how long a long-poll waits; an expired long-poll returns no events and a token to retry with.
    /// - Throws: ``SpoolError/Code/notFound``; ``SpoolError/Code/invalidPageToken``; ``SpoolError/Code/invalidArgument``.
    public func getWorkflowExecutionHistory(namespace: String = defaultNamespace, execution: WorkflowExecution,
                                            maximumPageSize: Int = 1000, nextPageToken: [UInt8]? = nil,
                                            waitNewEvent: Bool = false, historyEventFilterType: HistoryEventFilterType = .allEvent,
                                            timeout: Duration = .seconds(60)) async throws(SpoolError) -> GetWorkflowExecutionHistoryResponse {
        guard maximumPageSize >= 1 else {
            throw SpoolError(.invalidArgument, "maximumPageSize must be at least 1", namespace: namespace, workflowID: execution.workflowID)
        }
        var execution = execution
        var firstEventID: Int64 = 1
        if let nextPageToken {
            let token = try HistoryPageToken(serialized: nextPageToken)
            guard execution.runID.isEmpty || execution.runID == token.runID else {
                throw SpoolError(.invalidPageToken, "the page token belongs to run \(token.runID)", namespace: namespace,
                                 workflowID: execution.workflowID, runID: execution.runID)
            }
            execution.runID = token.runID
            firstEventID = token.nextEventID
        }
        let handle = try visibleHandle(namespace: namespace, execution: execution)
        let deadline = waitNewEvent ? clock.now().advanced(by: timeout) : nil
        while true {
            let (state, version) = handle.versionedState
            let page: [HistoryEvent]
            switch historyEventFilterType {
            case .closeEvent:
                if state.isRunning {
                    page = []
                } else if let closeEvent = handle.closeEvent {
                    page = [closeEvent]
                } else {
                    page = try history(of: handle).last.map { [$0] } ?? []
                }
            case .allEvent:
                let start = Int(max(1, firstEventID)) - 1
                if start < state.historyLength {
                    let events = try history(of: handle)
                    page = start < events.count ? Array(events[start..<min(events.count, start + maximumPageSize)]) : []
                } else {
                    page = []
                }
            }
            let waiting = page.isEmpty && state.isRunning && waitNewEvent
            if waiting, let deadline, clock.now() < deadline, !Task.isCancelled {
                await handle.waitForChange(after: version, untilClosed: historyEventFilterType == .closeEvent, until: deadline,
                                        deadlines: longPollDeadlines)
                continue
            }
            let next = historyEventFilterType == .closeEvent ? firstEventID : (page.last.map { $0.eventID + 1 } ?? firstEventID)
            let more = historyEventFilterType == .allEvent && next < state.nextEventID
            let token = more || (state.isRunning && waitNewEvent)
                ? HistoryPageToken(runID: handle.key.runID, nextEventID: next).serialized : nil
            return GetWorkflowExecutionHistoryResponse(history: page, nextPageToken: token, execution: handle.key.execution)
        }
    }
}

extension ExecutionState {
    var info: WorkflowExecutionInfo {
        WorkflowExecutionInfo(execution: key.execution, type: workflowType, startTime: startTime, closeTime: closeTime,
                              status: status, historyLength: historyLength, taskQueue: taskQueue, memo: memo,
                              searchAttributes: searchAttributes, executionTime: executionTime, firstRunID: firstExecutionRunID,
                              parentNamespace: related.parent?.namespace ?? "", parentExecution: related.parent?.execution,
                              rootExecution: related.parent?.rootExecution ?? key.execution)
    }
}

/// Where the next page of a history read starts.
struct HistoryPageToken {
    var runID: String
    var nextEventID: Int64

    var serialized: [UInt8] {
        var w = BinaryWriter(capacity: 48)
        w.byte(1)
        w.string(runID)
        w.signed(nextEventID)
        return w.bytes
    }

    init(runID: String, nextEventID: Int64) {
        self.runID = runID
        self.nextEventID = nextEventID
    }

    init(serialized bytes: [UInt8]) throws(SpoolError) {
        var r = BinaryReader<SpoolError>(bytes, context: "history page token")
        do throws(SpoolError) {
            guard try r.byte() == 1 else { throw r.corrupt("unknown version") }
            runID = try r.string()
            nextEventID = try r.signed()
            guard r.isAtEnd, nextEventID >= 1 else { throw r.corrupt("bad fields") }
        } catch {
            throw SpoolError(.invalidPageToken, "the bytes are not a history page token: \(error.message)")
        }
    }
}
