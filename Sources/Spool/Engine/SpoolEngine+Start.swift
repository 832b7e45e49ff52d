import SpoolMatching

extension SpoolEngine {
    /// Starts a run: writes WorkflowExecutionStarted (event 1) and WorkflowTaskScheduled (event 2)
    /// in one durable append, then puts the first workflow task on `taskQueue`.
    ///
    /// If a run with the same workflow id is open, `workflowIDConflictPolicy` decides (reject by
    /// default; `useExisting` returns it; `terminateExisting` terminates it and starts the new run
    /// in the same append). If only closed runs exist, `workflowIDReusePolicy` decides. A retried
    /// request (the non-empty `requestID` that started the workflow id's current run) returns that
    /// run with `started: true` and writes nothing, whether the run is still open or already
    /// closed (Temporal's rule: the first answer may not have reached the client).
    /// - Throws: ``SpoolError/Code/invalidArgument`` for an empty workflow id or type, a bad queue
    ///   name or a timeout that is not positive; ``SpoolError/Code/workflowExecutionAlreadyStarted``;
    ///   ``SpoolError/Code/storage``; ``SpoolError/Code/closed``.
    @discardableResult
    public func startWorkflowExecution(_ request: StartWorkflowExecutionRequest) async throws(SpoolError) -> StartWorkflowExecutionResponse {
        try checkOpen()
        try validate(request)
        let workflowKey = WorkflowKey(namespace: request.namespace, workflowID: request.workflowID)
        while true {
            let decision = try decideStart(request, workflowKey: workflowKey, firstSignal: nil)
            switch decision {
            case .existing(let runID):
                return StartWorkflowExecutionResponse(runID: runID, started: false)
            case .retried(let runID):
                return StartWorkflowExecutionResponse(runID: runID, started: true)
            case .start(let handle, let transition, let previousRunID):
                do {
                    try await commit(handle, transition)
                } catch {
                    unreserve(handle, previousRunID: previousRunID)
                    throw error
                }
                handle.gate.release()
                return started(handle, transition)
            case .terminateThenStart(let running):
                await running.gate.acquire()
                defer { running.gate.release() }
                // The run may have closed, or another start may have replaced it, while we waited.
                guard let (handle, transition, previousRunID) = try reserveAfterTermination(request, workflowKey: workflowKey,
                                                                                            running: running, firstSignal: nil) else { continue }
                var termination = Transition(running.state, now: transition.now)
                try terminate(&termination, reason: "terminated by a start with the same workflow id (run \(handle.key.runID))",
                              details: nil, identity: request.identity)
                do {
                    try await commit([(running, termination), (handle, transition)])
                } catch {
                    unreserve(handle, previousRunID: previousRunID)
                    throw error
                }
                handle.gate.release()
                return started(handle, transition)
            }
        }
    }

    /// The response for a run this call started, with its first workflow task if it was started eagerly.
    private func started(_ handle: ExecutionHandle, _ transition: Transition) -> StartWorkflowExecutionResponse {
        var history: [HistoryEvent] = []
        history.reserveCapacity(transition.changes.count)
        for change in transition.changes { if let event = change.writtenEvent { history.append(event) } }
        return StartWorkflowExecutionResponse(runID: handle.key.runID, started: true,
                                              eagerWorkflowTask: workflowTask(from: transition.state, history: history))
    }

    enum StartDecision {
        case existing(runID: String)
        /// The request that started the current run, again.
        case retried(runID: String)
        case start(ExecutionHandle, Transition, previousRunID: String?)
        case terminateThenStart(ExecutionHandle)
    }

    func validate(_ request: StartWorkflowExecutionRequest) throws(SpoolError) {
        try checkNamespace(request.namespace)
        func invalid(_ message: String) -> SpoolError {
            SpoolError(.invalidArgument, message, namespace: request.namespace, workflowID: request.workflowID)
        }
        // Temporal's frontend rules for ids and names: UTF-8 text, at most 1000 bytes, and here
        // no control characters either (they break the one-per-line listings).
        for (field, value) in [("namespace", request.namespace), ("workflow id", request.workflowID),
                               ("workflow type", request.workflowType)] {
            if let problem = IdentifierText.problem(in: value) {
                // Not in the error's context fields: they would print the whole value, newlines and all.
                throw SpoolError(.invalidArgument, "the \(field) '\(IdentifierText.shown(value))' is not valid: \(problem); "
                                 + "ids and names are 1…\(IdentifierText.maximumUTF8Length) UTF-8 bytes without control characters")
            }
        }
        try validateQueueName(request.taskQueue, what: "the task queue")
        if let timeout = request.workflowRunTimeout, timeout <= .zero { throw invalid("workflowRunTimeout must be positive") }
        if let timeout = request.workflowTaskTimeout, timeout <= .zero { throw invalid("workflowTaskTimeout must be positive") }
        if let timeout = request.workflowExecutionTimeout, timeout <= .zero { throw invalid("workflowExecutionTimeout must be positive") }
        if let delay = request.startDelay, delay < .zero { throw invalid("startDelay must not be negative") }
        if let problem = request.retryPolicy?.validationError() { throw invalid("the workflow's \(problem)") }
        if !request.cronSchedule.isEmpty {
            do throws(SpoolError) {
                _ = try CronSchedule(request.cronSchedule)
            } catch {
                throw SpoolError(.invalidArgument, error.message, namespace: request.namespace, workflowID: request.workflowID)
            }
            if let delay = request.startDelay, delay > .zero { throw invalid("a cron schedule and a start delay may not be used together") }
        }
        if let problem = request.priority.problem(field: "priority") { throw invalid(problem) }
        if let problem = searchAttributeProblem(request.searchAttributes, namespace: request.namespace) { throw invalid(problem) }
    }

    /// Checks the policies against the runs of the workflow id and, when a run is to be started,
    /// claims the id for it (the new run is in the registry, invisible, its gate held by us).
    func decideStart(_ request: StartWorkflowExecutionRequest, workflowKey: WorkflowKey,
                     firstSignal: WorkflowExecutionSignaledEventAttributes?,
                     parent: ParentExecutionInfo? = nil, runID: String? = nil) throws(SpoolError) -> StartDecision {
        let now = clock.now()
        // Generated before the shard is locked: it reads the system's random source.
        let runID = runID ?? RunID.generate()
        return try registry.withShard(of: workflowKey) { shard throws(SpoolError) -> StartDecision in
            let previousRunID = shard.currentRuns[workflowKey]
            if let previousRunID,
               let previous = shard.runs[ExecutionKey(namespace: workflowKey.namespace, workflowID: workflowKey.workflowID, runID: previousRunID)] {
                let state = previous.state
                if !request.requestID.isEmpty && state.requestID == request.requestID { return .retried(runID: previousRunID) }
                if state.isRunning {
                    if request.workflowIDReusePolicy == .terminateIfRunning { return .terminateThenStart(previous) }
                    switch request.workflowIDConflictPolicy {
                    case .fail:
                        throw previous.key.error(.workflowExecutionAlreadyStarted,
                                                 "a run with this workflow id is open (conflict policy: fail)")
                    case .useExisting:
                        return .existing(runID: previousRunID)
                    case .terminateExisting:
                        return .terminateThenStart(previous)
                    }
                }
                switch request.workflowIDReusePolicy {
                case .allowDuplicate, .terminateIfRunning:
                    break
                case .allowDuplicateFailedOnly:
                    if state.status == .completed || state.status == .continuedAsNew {
                        throw previous.key.error(.workflowExecutionAlreadyStarted,
                                                 "the previous run \(state.status) and the reuse policy allows a new run only after a failure")
                    }
                case .rejectDuplicate:
                    throw previous.key.error(.workflowExecutionAlreadyStarted,
                                             "a run with this workflow id exists and the reuse policy rejects duplicates")
                }
            }
            let (handle, transition) = try makeRun(request, workflowKey: workflowKey, now: now, continuing: nil, runID: runID,
                                                   firstSignal: firstSignal, parent: parent)
            shard.runs[handle.key] = handle
            shard.currentRuns[workflowKey] = handle.key.runID
            return .start(handle, transition, previousRunID: previousRunID)
        }
    }

    func reserveAfterTermination(_ request: StartWorkflowExecutionRequest, workflowKey: WorkflowKey, running: ExecutionHandle,
                                 firstSignal: WorkflowExecutionSignaledEventAttributes?) throws(SpoolError) -> (ExecutionHandle, Transition, String?)? {
        let now = clock.now()
        return try registry.withShard(of: workflowKey) { shard throws(SpoolError) -> (ExecutionHandle, Transition, String?)? in
            guard shard.currentRuns[workflowKey] == running.key.runID, running.state.isRunning else { return nil }
            let (handle, transition) = try makeRun(request, workflowKey: workflowKey, now: now, continuing: nil,
                                                   firstSignal: firstSignal)
            shard.runs[handle.key] = handle
            shard.currentRuns[workflowKey] = handle.key.runID
            return (handle, transition, running.key.runID)
        }
    }

    /// A new run's handle (gate held, invisible) and its first transition: WorkflowExecutionStarted,
    /// `firstSignal`'s WorkflowExecutionSignaled (signal-with-start) and WorkflowTaskScheduled —
    /// unless the run has a first-workflow-task backoff (a start delay, the wait for a cron
    /// schedule, a retry's backoff): then its first workflow task is scheduled when that ends.
    ///
    /// A run `continuing` another (continue-as-new, retry, cron) records the link: the previous
    /// run, the chain's first run, the initiator, the failure and last result handed on, the
    /// attempt and the chain's execution timeout and expiration. A client's start sets the
    /// expiration to now plus the execution timeout (rounded to the millisecond), takes the
    /// execution timeout as the run timeout when that is unset (and caps the run timeout by it),
    /// and marks the first run of a cron schedule with the initiator CRON_SCHEDULE, as Temporal's
    /// frontend does.
    func makeRun(_ request: StartWorkflowExecutionRequest, workflowKey: WorkflowKey, now: Timestamp,
                 continuing link: ChainLink?, runID: String = RunID.generate(),
                 firstSignal: WorkflowExecutionSignaledEventAttributes? = nil,
                 parent: ParentExecutionInfo? = nil) throws(SpoolError) -> (ExecutionHandle, Transition) {
        let key = ExecutionKey(namespace: workflowKey.namespace, workflowID: workflowKey.workflowID, runID: runID)
        var started = WorkflowExecutionStartedEventAttributes(
            workflowType: request.workflowType, taskQueue: request.taskQueue, input: request.input,
            workflowRunTimeout: request.workflowRunTimeout,
            workflowTaskTimeout: request.workflowTaskTimeout ?? configuration.defaultWorkflowTaskTimeout,
            continuedExecutionRunID: link?.from.key.runID ?? "",
            firstExecutionRunID: link?.from.firstExecutionRunID ?? runID,
            identity: request.identity, requestID: request.requestID, attempt: link?.attempt ?? 1, header: request.header,
            priority: request.priority)
        started.originalExecutionRunID = runID
        started.memo = request.memo
        started.searchAttributes = request.searchAttributes
        started.retryPolicy = request.retryPolicy
        started.cronSchedule = request.cronSchedule
        // A child's parent link; the runs that continue a child keep it (Temporal copies it).
        started.parent = parent ?? link?.from.related.parent
        if let link {
            started.initiator = link.initiator
            started.continuedFailure = link.continuedFailure
            started.lastCompletionResult = link.lastCompletionResult
            started.firstWorkflowTaskBackoff = link.backoff.flatMap { $0 > .zero ? $0 : nil }
            started.workflowExecutionTimeout = link.from.workflowExecutionTimeout
            started.workflowExecutionExpirationTime = link.from.executionExpirationTime
        } else {
            var backoff: Duration?
            if let delay = request.startDelay, delay > .zero {
                backoff = delay
            } else if !request.cronSchedule.isEmpty {
                backoff = try CronSchedule(request.cronSchedule).backoff(scheduled: now, now: now)
                started.initiator = .cronSchedule
            }
            started.firstWorkflowTaskBackoff = backoff
            if let timeout = request.workflowExecutionTimeout {
                started.workflowExecutionTimeout = timeout
                let deadline = now.advanced(by: timeout).nanosecondsSinceEpoch
                let millisecond: Int64 = 1_000_000
                let rounded = (deadline + millisecond / 2) / millisecond * millisecond
                started.workflowExecutionExpirationTime = Timestamp(nanosecondsSinceEpoch: rounded)
                started.workflowRunTimeout = min(request.workflowRunTimeout ?? timeout, timeout)
            }
        }
        let state = ExecutionState(key: key, started: started, startTime: now)
        var transition = Transition(state, now: now)
        try transition.add(.workflowExecutionStarted(started), userMetadata: request.userMetadata)
        if let firstSignal { try transition.add(.workflowExecutionSignaled(firstSignal)) }
        try transition.scheduleWorkflowTaskIfNeeded()
        if request.requestEagerExecution, link == nil, let task = transition.state.workflowTask {
            try transition.add(.workflowTaskStarted(.init(scheduledEventID: task.scheduledEventID, identity: request.identity,
                                                          requestID: RequestID.next())))
        }
        return (ExecutionHandle(state: transition.state, creating: true, taskQueues: runTaskQueues(of: transition.state)), transition)
    }

    /// Takes a run whose creation failed out of the registry and gives the workflow id back to
    /// its previous run.
    func unreserve(_ handle: ExecutionHandle, previousRunID: String?) {
        handle.markRemoved()
        registry.withShard(of: handle.key.workflowKey) { shard in
            shard.runs[handle.key] = nil
            if shard.currentRuns[handle.key.workflowKey] == handle.key.runID {
                shard.currentRuns[handle.key.workflowKey] = previousRunID
            }
        }
        handle.gate.release()
    }

    /// Adds a termination to `transition`: the started workflow task fails (ForceCloseCommand),
    /// buffered events are written, then WorkflowExecutionTerminated.
    func terminate(_ transition: inout Transition, reason: String, details: Payloads?, identity: String) throws(SpoolError) {
        try transition.forceCloseStartedWorkflowTask()
        try transition.add(.workflowExecutionTerminated(.init(reason: reason, details: details, identity: identity)))
    }
}
