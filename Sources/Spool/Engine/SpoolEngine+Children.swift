import SpoolPrimitives

/// Child workflows (issue 19, point 1).
///
/// Temporal starts a child with two transfer tasks (the parent's initiated event, then the
/// child's start and the parent's ChildWorkflowExecutionStarted). One Spool engine owns both
/// runs, so the child's first transition is appended in the same log record as the parent's
/// workflow-task completion: the parent's history reads as Temporal's (initiated, then started or
/// start-failed, then a new workflow task) and no crash can leave a child half started.
///
/// A child's close reaches its parent in a second transition of the parent, made after the
/// child's close is durable (``deliverChildClose(of:)``); the parent close policy reaches each
/// child the same way after the parent closed (``applyParentClosePolicy(to:of:)``). Both are
/// idempotent — they act only while the parent still lists the child as pending, or while the
/// child still runs for that parent — and ``reconcileRelatedRuns()`` repeats them at open, so a
/// crash between the two transitions delays the effect but never loses or doubles it.
extension SpoolEngine {
    /// A child the parent's completing workflow task asked for: its initiated event id and fields.
    struct InitiatedChild {
        var initiatedEventID: Int64
        var attributes: StartChildWorkflowExecutionInitiatedEventAttributes
        var userMetadata: UserMetadata?
    }

    /// Validates a StartChildWorkflowExecution command and fills in what Temporal fills in: the
    /// parent's namespace and task queue when empty. Returns the initiated event's fields or why
    /// the command is invalid.
    func initiatedChild(_ a: StartChildWorkflowExecutionCommandAttributes, state: ExecutionState,
                        completedEventID: Int64) -> Result<StartChildWorkflowExecutionInitiatedEventAttributes, CommandRejection> {
        func bad(_ message: String) -> Result<StartChildWorkflowExecutionInitiatedEventAttributes, CommandRejection> {
            .failure(CommandRejection(cause: .badStartChildExecutionAttributes, message: message))
        }
        let namespace = a.namespace.isEmpty ? state.key.namespace : a.namespace
        if namespace != state.key.namespace {
            return bad("the child's namespace '\(namespace)' is not the parent's ('\(state.key.namespace)'); Spool starts children in the parent's namespace only")
        }
        var request = childStartRequest(StartChildWorkflowExecutionInitiatedEventAttributes(
            namespace: namespace, workflowID: a.workflowID, workflowType: a.workflowType,
            taskQueue: a.taskQueue.isEmpty ? state.taskQueue : a.taskQueue, input: a.input,
            workflowExecutionTimeout: a.workflowExecutionTimeout, workflowRunTimeout: a.workflowRunTimeout,
            workflowTaskTimeout: a.workflowTaskTimeout, parentClosePolicy: a.parentClosePolicy, control: a.control,
            workflowTaskCompletedEventID: completedEventID, workflowIDReusePolicy: a.workflowIDReusePolicy,
            retryPolicy: a.retryPolicy, cronSchedule: a.cronSchedule, header: a.header, memo: a.memo,
            searchAttributes: a.searchAttributes, priority: a.priority), parent: state, userMetadata: a.userMetadata)
        request.priority = a.priority
        do throws(SpoolError) {
            try validate(request)
        } catch {
            return bad(error.message)
        }
        return .success(StartChildWorkflowExecutionInitiatedEventAttributes(
            namespace: namespace, workflowID: a.workflowID, workflowType: a.workflowType, taskQueue: request.taskQueue,
            input: a.input, workflowExecutionTimeout: a.workflowExecutionTimeout, workflowRunTimeout: a.workflowRunTimeout,
            workflowTaskTimeout: a.workflowTaskTimeout, parentClosePolicy: a.parentClosePolicy, control: a.control,
            workflowTaskCompletedEventID: completedEventID, workflowIDReusePolicy: a.workflowIDReusePolicy,
            retryPolicy: a.retryPolicy, cronSchedule: a.cronSchedule, header: a.header, memo: a.memo,
            searchAttributes: a.searchAttributes, priority: a.priority))
    }

    /// The start request of a child: the initiated event's fields, no identity (Temporal's
    /// child-start request sets none), the parent's priority under the command's (Temporal's
    /// `priorities.Merge(parent, command)`).
    func childStartRequest(_ a: StartChildWorkflowExecutionInitiatedEventAttributes, parent: ExecutionState,
                                   userMetadata: UserMetadata?) -> StartWorkflowExecutionRequest {
        var request = StartWorkflowExecutionRequest(
            namespace: a.namespace, workflowID: a.workflowID, workflowType: a.workflowType, taskQueue: a.taskQueue, input: a.input,
            workflowRunTimeout: a.workflowRunTimeout, workflowTaskTimeout: a.workflowTaskTimeout, identity: "",
            workflowIDReusePolicy: a.workflowIDReusePolicy, workflowIDConflictPolicy: .fail, header: a.header,
            userMetadata: userMetadata, workflowExecutionTimeout: a.workflowExecutionTimeout, retryPolicy: a.retryPolicy,
            cronSchedule: a.cronSchedule, memo: a.memo, searchAttributes: a.searchAttributes)
        request.priority = a.priority.merged(over: parent.priority)
        return request
    }

    /// Starts the children `initiated` (their initiated events are in `transition`, whose commands
    /// were all accepted): each child's run is reserved and its first transition returned, to be
    /// committed with the parent's; the parent records ChildWorkflowExecutionStarted, or
    /// StartChildWorkflowExecutionFailed when the workflow id is taken (a run is open, or the
    /// reuse policy refuses a new run) — except an open run under TERMINATE_IF_RUNNING: that
    /// child stays initiated and starts after this append (``startChildAfterTermination(of:initiatedEventID:)``).
    /// Nothing is started when the commands closed the parent
    /// (Temporal drops a closed parent's child-start task). The caller commits the runs returned
    /// or, when that fails, unreserves them.
    func startChildren(_ initiated: [InitiatedChild], transition: inout Transition)
        throws(SpoolError) -> [(handle: ExecutionHandle, transition: Transition, previousRunID: String?)] {
        guard transition.state.isRunning else { return [] }
        var started: [(handle: ExecutionHandle, transition: Transition, previousRunID: String?)] = []
        for child in initiated {
            let a = child.attributes
            let parentState = transition.state
            let parent = ParentExecutionInfo(
                namespace: parentState.key.namespace, execution: parentState.key.execution, initiatedEventID: child.initiatedEventID,
                rootExecution: parentState.related.parent?.rootExecution ?? parentState.key.execution)
            let request = childStartRequest(a, parent: parentState, userMetadata: child.userMetadata)
            let workflowKey = WorkflowKey(namespace: a.namespace, workflowID: a.workflowID)
            var cause: StartChildWorkflowExecutionFailedCause?
            do throws(SpoolError) {
                switch try decideStart(request, workflowKey: workflowKey, firstSignal: nil, parent: parent) {
                case .start(let handle, let childTransition, let previousRunID):
                    started.append((handle, childTransition, previousRunID))
                    try transition.add(.childWorkflowExecutionStarted(.init(
                        namespace: a.namespace, initiatedEventID: child.initiatedEventID,
                        workflowExecution: handle.key.execution, workflowType: a.workflowType, header: a.header)))
                case .terminateThenStart(let running) where running.key != parentState.key:
                    // TERMINATE_IF_RUNNING on an open id: the child stays initiated, not started.
                    // Terminating that run would take its gate while the parent's is held, so it
                    // happens after this append, as Temporal's child-start transfer task does it
                    // (``startChildAfterTermination(of:initiatedEventID:)``, armed by the initiated event).
                    break
                case .existing, .retried, .terminateThenStart:
                    // A child can't terminate its own parent to take its id.
                    cause = .workflowAlreadyExists
                }
            } catch where error.code == .workflowExecutionAlreadyStarted {
                cause = .workflowAlreadyExists
            } catch {
                for run in started { unreserve(run.handle, previousRunID: run.previousRunID) }
                throw error
            }
            if let cause {
                try transition.add(.startChildWorkflowExecutionFailed(.init(
                    namespace: a.namespace, workflowID: a.workflowID, workflowType: a.workflowType, cause: cause, control: a.control,
                    initiatedEventID: child.initiatedEventID, workflowTaskCompletedEventID: a.workflowTaskCompletedEventID)))
            }
        }
        return started
    }

    /// Starts the pending child `initiatedEventID` of `parentKey` that ``startChildren(_:transition:)``
    /// left initiated because an open run held its workflow id under TERMINATE_IF_RUNNING: that
    /// run is terminated (Temporal's reason `TerminateIfRunning WorkflowIdReusePolicy Policy`,
    /// details `terminated by new runID: …`, identity `history-service`), then the child starts
    /// and the parent records ChildWorkflowExecutionStarted and a workflow task, in one append.
    /// Each step holds one run's gate at a time. Idempotent: it acts only while the parent runs
    /// and still waits for that child to start, and ``reconcileRelatedRuns()`` repeats it at
    /// open, so a crash between the termination and the start delays the start, never loses it.
    func startChildAfterTermination(of parentKey: ExecutionKey, initiatedEventID: Int64) async throws(SpoolError) {
        try checkOpen()
        guard let parent = registry.handle(parentKey), parent.key.runID == parentKey.runID else { return }
        let parentState = parent.state
        guard Self.waitsForChildStart(parentState, initiatedEventID) else { return }
        guard let initiated = try history(of: parent).first(where: { $0.eventID == initiatedEventID }),
              case .startChildWorkflowExecutionInitiated(let a) = initiated.attributes else {
            throw parentKey.error(.corruptRecord, "a pending child has no StartChildWorkflowExecutionInitiated event", eventID: initiatedEventID)
        }
        let link = ParentExecutionInfo(namespace: parentKey.namespace, execution: parentKey.execution, initiatedEventID: initiatedEventID,
                                       rootExecution: parentState.related.parent?.rootExecution ?? parentKey.execution)
        let request = childStartRequest(a, parent: parentState, userMetadata: initiated.userMetadata)
        let workflowKey = WorkflowKey(namespace: a.namespace, workflowID: a.workflowID)
        let runID = RunID.generate()
        // Another start may take the id between the termination and the start: terminated too,
        // a bounded number of times. Leaving the loop means the child cannot start.
        attempts: for _ in 0..<8 {
            let decision: StartDecision
            do throws(SpoolError) {
                decision = try decideStart(request, workflowKey: workflowKey, firstSignal: nil, parent: link, runID: runID)
            } catch where error.code == .workflowExecutionAlreadyStarted {
                break attempts
            }
            switch decision {
            case .terminateThenStart(let running) where running.key != parentKey:
                await running.gate.acquire()
                func terminateRunning() async throws(SpoolError) {
                    defer { running.gate.release() }
                    guard !running.isRemoved, running.state.isRunning else { return }
                    var termination = Transition(running.state, now: clock.now())
                    try terminate(&termination, reason: "TerminateIfRunning WorkflowIdReusePolicy Policy",
                                  details: [Payload.jsonString("terminated by new runID: \(runID)")], identity: historyServiceIdentity)
                    try await commit(running, termination)
                }
                try await terminateRunning()
            case .start(let child, let childTransition, let previousRunID):
                await parent.gate.acquire()
                defer { parent.gate.release() }
                let state = parent.state
                guard !parent.isRemoved, Self.waitsForChildStart(state, initiatedEventID) else {
                    unreserve(child, previousRunID: previousRunID)
                    return
                }
                var transition = Transition(state, now: clock.now())
                do throws(SpoolError) {
                    try transition.addWorkflowInput(.childWorkflowExecutionStarted(.init(
                        namespace: a.namespace, initiatedEventID: initiatedEventID, workflowExecution: child.key.execution,
                        workflowType: a.workflowType, header: a.header)))
                    try transition.scheduleWorkflowTaskIfNeeded()
                    try await commit([(parent, transition), (child, childTransition)])
                } catch {
                    unreserve(child, previousRunID: previousRunID)
                    throw error
                }
                child.gate.release()
                return
            case .existing, .retried, .terminateThenStart:
                break attempts
            }
        }
        try await failPendingChild(of: parent, initiatedEventID: initiatedEventID, attributes: a)
    }

    /// Whether the run of `state` is open and its child `initiatedEventID` is initiated, not yet started.
    static func waitsForChildStart(_ state: ExecutionState, _ initiatedEventID: Int64) -> Bool {
        state.isRunning && state.related.children[initiatedEventID].map { !$0.isStarted } == true
    }

    /// Records StartChildWorkflowExecutionFailed (WORKFLOW_ALREADY_EXISTS) for a child that
    /// ``startChildAfterTermination(of:initiatedEventID:)`` could not start.
    private func failPendingChild(of parent: ExecutionHandle, initiatedEventID: Int64,
                                  attributes a: StartChildWorkflowExecutionInitiatedEventAttributes) async throws(SpoolError) {
        await parent.gate.acquire()
        defer { parent.gate.release() }
        let state = parent.state
        guard !parent.isRemoved, Self.waitsForChildStart(state, initiatedEventID) else { return }
        var transition = Transition(state, now: clock.now())
        try transition.addWorkflowInput(.startChildWorkflowExecutionFailed(.init(
            namespace: a.namespace, workflowID: a.workflowID, workflowType: a.workflowType, cause: .workflowAlreadyExists,
            control: a.control, initiatedEventID: initiatedEventID, workflowTaskCompletedEventID: a.workflowTaskCompletedEventID)))
        try transition.scheduleWorkflowTaskIfNeeded()
        try await commit(parent, transition)
    }

    // MARK: A child's close reaches its parent

    /// What the closing event `event` of a child's last run tells its parent; nil for a run that
    /// continues (continue-as-new, a retry, the next cron run): the chain goes on.
    static func childOutcome(of event: HistoryEvent) -> ChildWorkflowExecutionClosedEventAttributes.Outcome? {
        switch event.attributes {
        case .workflowExecutionCompleted(let a): a.newExecutionRunID.isEmpty ? .completed(result: a.result) : nil
        case .workflowExecutionFailed(let a): a.newExecutionRunID.isEmpty ? .failed(failure: a.failure, retryState: a.retryState) : nil
        case .workflowExecutionTimedOut(let a): a.newExecutionRunID.isEmpty ? .timedOut(retryState: a.retryState) : nil
        case .workflowExecutionCanceled(let a): .canceled(details: a.details)
        case .workflowExecutionTerminated: .terminated
        default: nil
        }
    }

    /// Records the close of the child run `childKey` in its parent (ChildWorkflowExecutionCompleted,
    /// …Failed, …Canceled, …TimedOut or …Terminated, buffered while the parent's workflow task is
    /// started, and a workflow task), if the parent still runs and still waits for that child.
    func deliverChildClose(of childKey: ExecutionKey) async throws(SpoolError) {
        try checkOpen()
        guard let child = registry.handle(childKey) else { return }
        let childState = child.state
        guard !childState.isRunning, let link = childState.related.parent else { return }
        var closing = child.closeEvent
        if closing == nil { closing = try history(of: child).last }
        guard let closing, let outcome = Self.childOutcome(of: closing) else { return }
        guard let parent = registry.handle(namespace: link.namespace, execution: link.execution), parent.key.runID == link.execution.runID else {
            return
        }
        await parent.gate.acquire()
        defer { parent.gate.release() }
        let state = parent.state
        guard !parent.isRemoved, state.isRunning, let pending = state.related.children[link.initiatedEventID], pending.isStarted,
              pending.workflowID == childKey.workflowID else { return }
        var transition = Transition(state, now: clock.now())
        try transition.addWorkflowInput(.childWorkflowExecutionClosed(.init(
            outcome: outcome, namespace: childKey.namespace, workflowExecution: childKey.execution,
            workflowType: pending.workflowType, initiatedEventID: link.initiatedEventID, startedEventID: pending.startedEventID)))
        try transition.scheduleWorkflowTaskIfNeeded()
        try await commit(parent, transition)
    }

    // MARK: The parent close policy

    /// The open run of `child`'s chain (its first run, or the run continuing it), if it still runs.
    func openRun(of child: ChildExecutionInfo) -> ExecutionHandle? {
        var key = ExecutionKey(namespace: child.namespace, workflowID: child.workflowID, runID: child.runID)
        for _ in 0..<10_000 {
            guard let handle = registry.handle(key) else { return nil }
            let state = handle.state
            if state.isRunning { return handle }
            guard let next = state.newExecutionRunID, !next.isEmpty else { return nil }
            key = ExecutionKey(namespace: key.namespace, workflowID: key.workflowID, runID: next)
        }
        return nil
    }

    /// Applies the closed run `parentKey`'s close policy to `child`: terminates it or asks it to
    /// cancel (once), if it still runs as that parent's child; nothing for ``ParentClosePolicy/abandon``.
    /// As Temporal's `applyParentClosePolicy`: a termination has the reason `by parent close
    /// policy`, a cancel request no reason; both name `history-service` and the parent.
    func applyParentClosePolicy(to child: ChildExecutionInfo, of parentKey: ExecutionKey) async throws(SpoolError) {
        try checkOpen()
        let policy = child.parentClosePolicy.effective
        guard child.isStarted, policy != .abandon, let handle = openRun(of: child) else { return }
        await handle.gate.acquire()
        defer { handle.gate.release() }
        let state = handle.state
        guard !handle.isRemoved, state.isRunning, let link = state.related.parent, link.execution.runID == parentKey.runID,
              link.execution.workflowID == parentKey.workflowID, link.initiatedEventID == child.initiatedEventID else { return }
        var transition = Transition(state, now: clock.now())
        switch policy {
        case .requestCancel:
            guard !state.cancelRequested else { return }
            try transition.addWorkflowInput(.workflowExecutionCancelRequested(.init(
                cause: "", identity: historyServiceIdentity, externalWorkflowExecution: parentKey.execution)))
            try transition.scheduleWorkflowTaskIfNeeded()
        default:
            try terminate(&transition, reason: "by parent close policy", details: nil, identity: historyServiceIdentity)
        }
        try await commit(handle, transition)
    }

    // MARK: Describe

    /// The pending children of `state`, in initiated order (Temporal's `PendingChildExecutionInfo`).
    func pendingChildren(of state: ExecutionState) -> [PendingChildExecutionInfo] {
        state.related.children.values.sorted { $0.initiatedEventID < $1.initiatedEventID }.map { child in
            PendingChildExecutionInfo(workflowID: child.workflowID, runID: child.runID, workflowTypeName: child.workflowType,
                                      initiatedID: child.initiatedEventID, parentClosePolicy: child.parentClosePolicy)
        }
    }
}

extension SpoolEngine {
    /// Applies a StartChildWorkflowExecution, SignalExternalWorkflowExecution or
    /// RequestCancelExternalWorkflowExecution command: writes its initiated event, or returns
    /// why it is invalid (as ``apply(_:to:completedEventID:identity:)`` does for the others).
    func applyRelatedRunCommand(_ command: Command, to transition: inout Transition, completedEventID: Int64,
                                position: String) throws(SpoolError) -> CommandOutcome? {
        switch command {
        case .startChildWorkflowExecution(let a):
            switch initiatedChild(a, state: transition.state, completedEventID: completedEventID) {
            case .failure(let rejection):
                return .rejected(rejection.cause, "\(position) (StartChildWorkflowExecution '\(a.workflowID)'): \(rejection.message)")
            case .success(let attributes):
                try transition.add(.startChildWorkflowExecutionInitiated(attributes), userMetadata: a.userMetadata)
            }
        case .signalExternalWorkflowExecution(let a):
            switch initiatedSignal(a, state: transition.state, completedEventID: completedEventID) {
            case .failure(let rejection):
                return .rejected(rejection.cause, "\(position) (SignalExternalWorkflowExecution): \(rejection.message)")
            case .success(let attributes):
                try transition.add(.signalExternalWorkflowExecutionInitiated(attributes))
            }
        case .requestCancelExternalWorkflowExecution(let a):
            switch initiatedCancel(a, state: transition.state, completedEventID: completedEventID) {
            case .failure(let rejection):
                return .rejected(rejection.cause, "\(position) (RequestCancelExternalWorkflowExecution): \(rejection.message)")
            case .success(let attributes):
                try transition.add(.requestCancelExternalWorkflowExecutionInitiated(attributes))
            }
        default:
            break
        }
        return nil
    }

    /// The children the commands of the workflow task completed by event `completedEventID`
    /// initiated, in order.
    func initiatedChildren(in transition: Transition, after completedEventID: Int64) -> [InitiatedChild] {
        var children: [InitiatedChild] = []
        for change in transition.changes {
            guard case .event(let event) = change, event.eventID > completedEventID,
                  case .startChildWorkflowExecutionInitiated(let a) = event.attributes else { continue }
            children.append(InitiatedChild(initiatedEventID: event.eventID, attributes: a, userMetadata: event.userMetadata))
        }
        return children
    }
}
