import SpoolPrimitives

/// Signals and cancel requests to other workflows (issue 19, point 2), and the work that keeps
/// related runs consistent across a crash.
///
/// The sender's command is recorded with its workflow task (…Initiated); the engine then delivers
/// it to the target in the target's own transition, and records the outcome in the sender's
/// (ExternalWorkflowExecutionSignaled / …CancelRequested, or …Failed with
/// EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND). A signal carries a request id made of the sender's run
/// and initiated event, so delivering it again after a crash (``reconcileRelatedRuns()``) does
/// not signal twice; a cancel request is idempotent by nature.
extension SpoolEngine {
    /// Validates a SignalExternalWorkflowExecution command; returns the initiated event's fields.
    func initiatedSignal(_ a: SignalExternalWorkflowExecutionCommandAttributes, state: ExecutionState,
                         completedEventID: Int64) -> Result<SignalExternalWorkflowExecutionInitiatedEventAttributes, CommandRejection> {
        let namespace = a.namespace.isEmpty ? state.key.namespace : a.namespace
        if namespace != state.key.namespace {
            return .failure(CommandRejection(cause: .badSignalWorkflowExecutionAttributes,
                                             message: "the target's namespace '\(namespace)' is not the sender's; Spool signals within a namespace only"))
        }
        if a.execution.workflowID.isEmpty {
            return .failure(CommandRejection(cause: .badSignalWorkflowExecutionAttributes, message: "the target's workflow id is empty"))
        }
        if a.signalName.isEmpty {
            return .failure(CommandRejection(cause: .badSignalWorkflowExecutionAttributes, message: "the signal name is empty"))
        }
        return .success(.init(workflowTaskCompletedEventID: completedEventID, namespace: namespace, workflowExecution: a.execution,
                              signalName: a.signalName, input: a.input, control: a.control, childWorkflowOnly: a.childWorkflowOnly,
                              header: a.header))
    }

    /// Validates a RequestCancelExternalWorkflowExecution command; returns the initiated event's fields.
    func initiatedCancel(_ a: RequestCancelExternalWorkflowExecutionCommandAttributes, state: ExecutionState,
                         completedEventID: Int64) -> Result<RequestCancelExternalWorkflowExecutionInitiatedEventAttributes, CommandRejection> {
        let namespace = a.namespace.isEmpty ? state.key.namespace : a.namespace
        if namespace != state.key.namespace {
            return .failure(CommandRejection(cause: .badRequestCancelExternalWorkflowExecutionAttributes,
                                             message: "the target's namespace '\(namespace)' is not the sender's; Spool cancels within a namespace only"))
        }
        if a.execution.workflowID.isEmpty {
            return .failure(CommandRejection(cause: .badRequestCancelExternalWorkflowExecutionAttributes,
                                             message: "the target's workflow id is empty"))
        }
        return .success(.init(workflowTaskCompletedEventID: completedEventID, namespace: namespace, workflowExecution: a.execution,
                              control: a.control, childWorkflowOnly: a.childWorkflowOnly, reason: a.reason))
    }

    /// The request id of the signal the sender `sender` initiated with event `initiatedEventID`.
    static func externalSignalRequestID(sender: ExecutionKey, initiatedEventID: Int64) -> String {
        "spool-signal-external:\(sender.runID):\(initiatedEventID)"
    }

    /// The target run `execution` names, when it exists and — with `childWorkflowOnly` — is a
    /// child of `sender` (Temporal: a target whose parent is another run is "not found").
    private func externalTarget(namespace: String, execution: WorkflowExecution, childWorkflowOnly: Bool,
                                sender: ExecutionKey) -> ExecutionHandle? {
        guard let handle = registry.handle(namespace: namespace, execution: execution), handle.isVisible else { return nil }
        if childWorkflowOnly {
            guard let parent = handle.state.related.parent, parent.execution == sender.execution, parent.namespace == sender.namespace else {
                return nil
            }
        }
        return handle
    }

    /// Delivers the sender's pending signal `initiatedEventID` and records the outcome in the sender.
    func deliverExternalSignal(from sender: ExecutionKey, initiatedEventID: Int64) async throws(SpoolError) {
        try checkOpen()
        guard let source = registry.handle(sender), let a = source.state.related.signals[initiatedEventID], source.state.isRunning else { return }
        var delivered = false
        if let target = externalTarget(namespace: a.namespace, execution: a.workflowExecution, childWorkflowOnly: a.childWorkflowOnly,
                                       sender: sender) {
            await target.gate.acquire()
            func signalTarget() async throws(SpoolError) -> Bool {
                defer { target.gate.release() }
                guard !target.isRemoved else { return false }
                let requestID = Self.externalSignalRequestID(sender: sender, initiatedEventID: initiatedEventID)
                // Delivered before a crash, and the target closed since: it was signaled.
                guard target.state.isRunning else { return try hasSignal(requestID: requestID, handle: target, state: target.state) }
                try await signal(target, signalName: a.signalName, input: a.input, identity: historyServiceIdentity, header: a.header,
                                 requestID: requestID, externalWorkflowExecution: sender.execution)
                return true
            }
            delivered = try await signalTarget()
        }
        await source.gate.acquire()
        defer { source.gate.release() }
        let state = source.state
        guard !source.isRemoved, state.isRunning, state.related.signals[initiatedEventID] != nil else { return }
        var transition = Transition(state, now: clock.now())
        if delivered {
            try transition.addWorkflowInput(.externalWorkflowExecutionSignaled(.init(
                initiatedEventID: initiatedEventID, namespace: a.namespace, workflowExecution: a.workflowExecution, control: a.control)))
        } else {
            try transition.addWorkflowInput(.signalExternalWorkflowExecutionFailed(.init(
                cause: .externalWorkflowExecutionNotFound, workflowTaskCompletedEventID: a.workflowTaskCompletedEventID,
                namespace: a.namespace, workflowExecution: a.workflowExecution, initiatedEventID: initiatedEventID, control: a.control)))
        }
        try transition.scheduleWorkflowTaskIfNeeded()
        try await commit(source, transition)
    }

    /// Delivers the sender's pending cancel request `initiatedEventID` and records the outcome in
    /// the sender. As in Temporal, a target that already closed (or was already asked) counts as asked.
    func deliverExternalCancel(from sender: ExecutionKey, initiatedEventID: Int64) async throws(SpoolError) {
        try checkOpen()
        guard let source = registry.handle(sender), let a = source.state.related.cancels[initiatedEventID], source.state.isRunning else { return }
        var delivered = false
        if let target = externalTarget(namespace: a.namespace, execution: a.workflowExecution, childWorkflowOnly: a.childWorkflowOnly,
                                       sender: sender) {
            await target.gate.acquire()
            func cancelTarget() async throws(SpoolError) -> Bool {
                defer { target.gate.release() }
                guard !target.isRemoved else { return false }
                let state = target.state
                if state.isRunning, !state.cancelRequested {
                    var transition = Transition(state, now: clock.now())
                    try transition.addWorkflowInput(.workflowExecutionCancelRequested(.init(
                        cause: a.reason, identity: historyServiceIdentity, externalInitiatedEventID: initiatedEventID,
                        externalWorkflowExecution: sender.execution)))
                    try transition.scheduleWorkflowTaskIfNeeded()
                    try await commit(target, transition)
                }
                return true
            }
            delivered = try await cancelTarget()
        }
        await source.gate.acquire()
        defer { source.gate.release() }
        let state = source.state
        guard !source.isRemoved, state.isRunning, state.related.cancels[initiatedEventID] != nil else { return }
        var transition = Transition(state, now: clock.now())
        if delivered {
            try transition.addWorkflowInput(.externalWorkflowExecutionCancelRequested(.init(
                initiatedEventID: initiatedEventID, namespace: a.namespace, workflowExecution: a.workflowExecution)))
        } else {
            try transition.addWorkflowInput(.requestCancelExternalWorkflowExecutionFailed(.init(
                cause: .externalWorkflowExecutionNotFound, workflowTaskCompletedEventID: a.workflowTaskCompletedEventID,
                namespace: a.namespace, workflowExecution: a.workflowExecution, initiatedEventID: initiatedEventID, control: a.control)))
        }
        try transition.scheduleWorkflowTaskIfNeeded()
        try await commit(source, transition)
    }

    // MARK: Scheduling the work

    /// The work a closed run calls for: its close to its parent, its close policy to its children.
    func armClosedRunEffects(_ state: ExecutionState) {
        let key = state.key
        if state.related.parent != nil {
            relatedRunWork.spawn { [weak self] in try await self?.deliverChildClose(of: key) }
        }
        for child in state.related.children.values.sorted(by: { $0.initiatedEventID < $1.initiatedEventID })
        where child.isStarted && child.parentClosePolicy.effective != .abandon {
            relatedRunWork.spawn { [weak self] in try await self?.applyParentClosePolicy(to: child, of: key) }
        }
    }

    /// Redoes, after open, the cross-run work a crash may have cut short: every closed child's
    /// close to its parent, every closed parent's close policy, every open run's undelivered
    /// signals and cancel requests. Each step acts only if it was not done (see the type's notes).
    /// Cost: one pass over the runs in memory.
    func reconcileRelatedRuns() {
        for handle in registry.allHandles() {
            let state = handle.state
            guard !state.related.isEmpty else { continue }
            if state.isRunning {
                for id in state.related.signals.keys.sorted() {
                    relatedRunWork.spawn { [weak self] in try await self?.deliverExternalSignal(from: state.key, initiatedEventID: id) }
                }
                for id in state.related.cancels.keys.sorted() {
                    relatedRunWork.spawn { [weak self] in try await self?.deliverExternalCancel(from: state.key, initiatedEventID: id) }
                }
                for child in state.related.children.values.sorted(by: { $0.initiatedEventID < $1.initiatedEventID }) where !child.isStarted {
                    let id = child.initiatedEventID
                    relatedRunWork.spawn { [weak self] in try await self?.startChildAfterTermination(of: state.key, initiatedEventID: id) }
                }
            } else if needsClosedRunEffects(state) {
                armClosedRunEffects(state)
            }
        }
    }

    /// Whether the closed run `state` still has cross-run work to do: its parent still lists it
    /// as a pending child, or one of its children still runs for it (and its policy acts). Checked
    /// before spawning anything, so an open with many closed runs starts no task for them.
    private func needsClosedRunEffects(_ state: ExecutionState) -> Bool {
        if let link = state.related.parent, state.newExecutionRunID == nil,
           let parent = registry.handle(namespace: link.namespace, execution: link.execution) {
            let parentState = parent.state
            if parentState.isRunning, parentState.related.children[link.initiatedEventID] != nil { return true }
        }
        for child in state.related.children.values where child.isStarted && child.parentClosePolicy.effective != .abandon {
            if let run = openRun(of: child), run.state.related.parent?.execution == state.key.execution { return true }
        }
        return false
    }

    /// Waits until the cross-run work started so far (and the work it started) is done. For
    /// tests and tools that need a settled engine; the engine itself never waits for it.
    package func waitForRelatedRunWork() async {
        await relatedRunWork.waitUntilIdle()
    }
}

/// The engine's cross-run tasks in flight, so that a caller can wait for them to settle.
final class RelatedRunWork: Sendable {
    private let tasks = LockedValue<(next: UInt64, running: [UInt64: Task<Void, Never>])>((0, [:]))

    /// Runs `body` as a task of its own. An error (the engine closed, the log failed) ends the
    /// step; the next open's reconciliation repeats it.
    func spawn(_ body: @escaping @Sendable () async throws -> Void) {
        tasks.withLock { tasks in
            let id = tasks.next
            tasks.next += 1
            tasks.running[id] = Task { [self] in
                do { try await body() } catch {}
                self.tasks.withLock { _ = $0.running.removeValue(forKey: id) }
            }
        }
    }

    func waitUntilIdle() async {
        while true {
            let running = tasks.withLock { Array($0.running.values) }
            if running.isEmpty { return }
            for task in running { await task.value }
        }
    }
}


extension SpoolEngine {
    /// Starts the delivery of the signal or cancel request `event` (its initiated event) records.
    func armExternalRequest(_ event: HistoryEvent, state: ExecutionState) {
        let key = state.key
        let id = event.eventID
        if case .signalExternalWorkflowExecutionInitiated = event.attributes {
            relatedRunWork.spawn { [weak self] in try await self?.deliverExternalSignal(from: key, initiatedEventID: id) }
        } else {
            relatedRunWork.spawn { [weak self] in try await self?.deliverExternalCancel(from: key, initiatedEventID: id) }
        }
    }
}
