import SpoolMatching

/// Workflow updates: the client calls, delivery on workflow tasks, and what a workflow task's
/// completion does with the worker's protocol messages (Temporal's `UpdateWorkflowExecution`,
/// `PollWorkflowExecutionUpdate` and `service/history/workflow/update`).
extension SpoolEngine {
    /// Asks the running workflow `workflowID` to handle an update and waits until it reaches
    /// `waitFor` (Temporal's `UpdateWorkflowExecution`).
    ///
    /// The request goes to a worker as a protocol message on the run's next workflow task
    /// (``WorkflowTask/messages``); on an idle run the engine schedules a *speculative* task for
    /// it, whose events are written only if the worker accepts the update. The worker accepts
    /// (WorkflowExecutionUpdateAccepted, recording the request) and answers
    /// (WorkflowExecutionUpdateCompleted with the outcome), or rejects it: then nothing is
    /// written, and the outcome is the rejection's failure.
    ///
    /// One update per id and run: a request with the id of an update in flight waits for that
    /// one; with the id of an update in history (accepted or completed, also on a closed run) it
    /// gets that update's stage and outcome. Until it is accepted an update lives in memory only,
    /// as in Temporal: a restart loses it, and the caller retries with the same id.
    ///
    /// - Parameters:
    ///   - runID: the run; empty means the workflow id's current run.
    ///   - updateID: the caller's id for the update; empty: the engine makes one.
    ///   - waitFor: ``UpdateWorkflowExecutionLifecycleStage/admitted`` returns once the engine
    ///     holds the request; `accepted` once the workflow accepted (or rejected) it;
    ///   `completed` once it has an outcome.
    ///   - firstExecutionRunID: when set, the run must belong to the chain this run started.
    ///   - timeout: the longest wait (Temporal's long-poll interval); when it passes the response
    ///     holds the stage reached so far and no outcome.
    /// - Throws: ``SpoolError/Code/invalidArgument`` for an empty name or an unspecified stage;
    ///   ``SpoolError/Code/notFound`` when the run does not exist, belongs to another chain, or is
    ///   closed and has no update with this id (Temporal's "workflow execution already
    ///   completed"), or when the run closes before the update is accepted ("update aborted by
    ///   closing workflow"); ``SpoolError/Code/workflowNotReady`` when the workflow task that
    ///   carried it failed on an invalid message or command; ``SpoolError/Code/closed``;
    ///   ``SpoolError/Code/storage``.
    public func updateWorkflowExecution(namespace: String = defaultNamespace, workflowID: String, runID: String = "",
                                        updateID: String, name: String, input: Payloads? = nil, header: Header = Header(),
                                        identity: String = "", waitFor: UpdateWorkflowExecutionLifecycleStage = .accepted,
                                        firstExecutionRunID: String = "",
                                        timeout: Duration = .seconds(20)) async throws(SpoolError) -> UpdateWorkflowExecutionResponse {
        try checkOpen()
        guard !name.isEmpty else {
            throw SpoolError(.invalidArgument, "the update name is empty", namespace: namespace, workflowID: workflowID)
        }
        guard waitFor != .unspecified else {
            throw SpoolError(.invalidArgument, "the stage to wait for is unspecified (admitted, accepted or completed)",
                             namespace: namespace, workflowID: workflowID)
        }
        let updateID = updateID.isEmpty ? RequestID.next() : updateID
        let request = UpdateRequest(meta: UpdateMeta(updateID: updateID, identity: identity),
                                    input: UpdateInput(name: name, args: input, header: header))
        let deadline = clock.now().advanced(by: timeout)
        var runID = runID
        while true {
            let handle = try await lockRun(namespace: namespace, execution: WorkflowExecution(workflowID: workflowID, runID: runID))
            let state = handle.state
            if !firstExecutionRunID.isEmpty && state.firstExecutionRunID != firstExecutionRunID {
                handle.gate.release()
                throw handle.key.error(.notFound, "the run does not belong to the chain started by run \(firstExecutionRunID)")
            }
            let key = UpdateRegistry.UpdateKey(run: handle.key, updateID: updateID)
            let known: UpdateWorkflowExecutionResponse?
            do {
                known = try await admitOrFind(request, key: key, handle: handle)
            } catch {
                handle.gate.release()
                throw error
            }
            handle.gate.release()
            if let known { return known }
            switch try await waitForUpdate(key, wants: waitFor, deadline: deadline) {
            case .reached(let response):
                return response
            case .runContinued:
                // Temporal retries on the new run: the workflow never saw the update.
                guard runID.isEmpty else { throw handle.key.error(.notFound, "update aborted by closing workflow (continued as new)") }
                runID = ""
            }
        }
    }

    /// Waits for an update's outcome, or for it to reach `waitFor` (Temporal's
    /// `PollWorkflowExecutionUpdate`): an update in flight, or one in the run's history (also
    /// on a closed run).
    /// - Parameters:
    ///   - updateRef: the run (an empty run id: the current run) and the update id.
    ///   - timeout: the longest wait; the response then holds the stage reached so far.
    /// - Throws: ``SpoolError/Code/notFound`` when the run has no such update (never admitted,
    ///   rejected, or lost in a restart before it was accepted); as
    ///   ``updateWorkflowExecution(namespace:workflowID:runID:updateID:name:input:header:identity:waitFor:firstExecutionRunID:timeout:)``
    ///   for a run that closes meanwhile.
    public func pollWorkflowExecutionUpdate(namespace: String = defaultNamespace, updateRef: UpdateRef,
                                            waitFor: UpdateWorkflowExecutionLifecycleStage = .completed,
                                            timeout: Duration = .seconds(20)) async throws(SpoolError) -> UpdateWorkflowExecutionResponse {
        try checkOpen()
        let deadline = clock.now().advanced(by: timeout)
        let handle = try await lockRun(namespace: namespace, execution: updateRef.workflowExecution)
        let key = UpdateRegistry.UpdateKey(run: handle.key, updateID: updateRef.updateID)
        let known: UpdateWorkflowExecutionResponse?
        do {
            known = try findRecorded(key, handle: handle)
        } catch {
            handle.gate.release()
            throw error
        }
        handle.gate.release()
        if let known { return known }
        guard updates.lookup(key) != nil else {
            throw handle.key.error(.notFound, "update \(updateRef.updateID) not found")
        }
        switch try await waitForUpdate(key, wants: waitFor == .unspecified ? .completed : waitFor, deadline: deadline) {
        case .reached(let response): return response
        case .runContinued: throw handle.key.error(.notFound, "update aborted by closing workflow (continued as new)")
        }
    }

    /// Starts a workflow and updates it in one call (Temporal's `ExecuteMultiOperation` with a
    /// start and an update: update-with-start). With ``WorkflowIDConflictPolicy/useExisting`` an
    /// open run of the id is updated instead; with `fail` an open run fails the call with
    /// ``SpoolError/Code/workflowExecutionAlreadyStarted``. On a new run the update goes with its
    /// first workflow task.
    /// - Returns: the start's outcome and the update's.
    /// - Throws: as ``startWorkflowExecution(_:)`` and
    ///   ``updateWorkflowExecution(namespace:workflowID:runID:updateID:name:input:header:identity:waitFor:firstExecutionRunID:timeout:)``;
    ///   ``SpoolError/Code/invalidArgument`` for eager execution, a cron schedule or a start delay,
    ///   which Temporal refuses with update-with-start.
    public func updateWithStartWorkflowExecution(_ start: StartWorkflowExecutionRequest, updateID: String, name: String,
                                                 input: Payloads? = nil, header: Header = Header(), identity: String = "",
                                                 waitFor: UpdateWorkflowExecutionLifecycleStage = .accepted,
                                                 timeout: Duration = .seconds(20))
        async throws(SpoolError) -> (start: StartWorkflowExecutionResponse, update: UpdateWorkflowExecutionResponse) {
        try checkOpen()
        if start.requestEagerExecution || !start.cronSchedule.isEmpty || start.startDelay != nil {
            throw SpoolError(.invalidArgument, "update-with-start does not take eager execution, a cron schedule or a start delay",
                             namespace: start.namespace, workflowID: start.workflowID)
        }
        guard !name.isEmpty else {
            throw SpoolError(.invalidArgument, "the update name is empty", namespace: start.namespace, workflowID: start.workflowID)
        }
        let started = try await startWorkflowExecution(start)
        let update = try await updateWorkflowExecution(namespace: start.namespace, workflowID: start.workflowID, runID: started.runID,
                                                       updateID: updateID, name: name, input: input, header: header,
                                                       identity: identity, waitFor: waitFor, timeout: timeout)
        return (started, update)
    }

    // MARK: - Admission and waiting

    private enum UpdateWait {
        case reached(UpdateWorkflowExecutionResponse)
        case runContinued
    }

    /// The update in the run's history, answered; or the one in flight, attached to; or a new one,
    /// admitted and its delivery scheduled. Returns a response when there is nothing to wait for.
    /// The caller holds the run's gate.
    private func admitOrFind(_ request: UpdateRequest, key: UpdateRegistry.UpdateKey,
                             handle: ExecutionHandle) async throws(SpoolError) -> UpdateWorkflowExecutionResponse? {
        if let known = try findRecorded(key, handle: handle) { return known }
        if updates.lookup(key) != nil { return nil }
        let state = handle.state
        guard state.isRunning else { throw handle.key.error(.notFound, "workflow execution already completed") }
        updates.admit(request, run: handle.key)
        do {
            try await scheduleUpdateDelivery(handle)
        } catch {
            updates.withdraw(key, error: error)
            throw error
        }
        return nil
    }

    /// The response for an update in the run's history: completed (its outcome), or accepted
    /// (registered again if a restart lost it; on a closed run it failed with
    /// ``Failure/acceptedUpdateCompletedWorkflow``). Nil when history has no such update. The
    /// caller holds the run's gate.
    private func findRecorded(_ key: UpdateRegistry.UpdateKey, handle: ExecutionHandle) throws(SpoolError) -> UpdateWorkflowExecutionResponse? {
        let ref = UpdateRef(workflowExecution: handle.key.execution, updateID: key.updateID)
        // In flight and not accepted: nothing in history to read.
        if let entry = updates.lookup(key), entry.stage.lifecycleStage < .accepted { return nil }
        switch try recordedUpdate(key.updateID, in: history(of: handle)) {
        case .none:
            return nil
        case .completed(let outcome):
            return UpdateWorkflowExecutionResponse(updateRef: ref, outcome: outcome, stage: .completed)
        case .accepted(let eventID, let request):
            guard handle.state.isRunning else {
                return UpdateWorkflowExecutionResponse(updateRef: ref, outcome: .failure(.acceptedUpdateCompletedWorkflow), stage: .completed)
            }
            updates.admit(request, run: handle.key, stage: .accepted(eventID: eventID))
            return nil
        }
    }

    /// What a run's history says about update `updateID`.
    enum RecordedUpdate {
        case none
        case accepted(eventID: Int64, request: UpdateRequest)
        case completed(UpdateOutcome)
    }

    func recordedUpdate(_ updateID: String, in history: [HistoryEvent]) -> RecordedUpdate {
        var found = RecordedUpdate.none
        for event in history {
            switch event.attributes {
            case .workflowExecutionUpdateAccepted(let a) where a.protocolInstanceID == updateID:
                found = .accepted(eventID: event.eventID, request: a.acceptedRequest)
            case .workflowExecutionUpdateCompleted(let a) where a.meta.updateID == updateID:
                return .completed(a.outcome)
            default:
                break
            }
        }
        return found
    }

    /// Schedules a speculative workflow task to deliver the run's admitted updates when no
    /// workflow task is outstanding (a scheduled one takes them when it starts; a started one's
    /// completion schedules the next). The caller holds the run's gate.
    private func scheduleUpdateDelivery(_ handle: ExecutionHandle) async throws(SpoolError) {
        let state = handle.state
        guard state.isRunning, state.workflowTask == nil, !state.isPendingOnFirstWorkflowTaskBackoff else { return }
        var transition = Transition(state, now: clock.now())
        try transition.record(.speculativeWorkflowTaskScheduled(time: transition.now))
        try await commit(handle, transition)
    }

    private func waitForUpdate(_ key: UpdateRegistry.UpdateKey, wants: UpdateWorkflowExecutionLifecycleStage,
                               deadline: Timestamp) async throws(SpoolError) -> UpdateWait {
        let ref = UpdateRef(workflowExecution: key.run.execution, updateID: key.updateID)
        let waiterID = updates.nextWaiterID()
        let updates = self.updates
        let timer = Task { [clock] in
            do { try await clock.sleep(until: deadline) } catch { return }
            updates.timeOut(key, waiterID: waiterID)
        }
        let result = await withTaskCancellationHandler {
            await updates.wait(key, wants: wants, waiterID: waiterID)
        } onCancel: {
            updates.timeOut(key, waiterID: waiterID)
        }
        timer.cancel()
        switch result {
        case .none:
            // Left the registry between the admission and the wait: completed (in history) or aborted.
            let handle = try await lockRun(namespace: key.run.namespace, execution: key.run.execution)
            defer { handle.gate.release() }
            if case .completed(let outcome) = try recordedUpdate(key.updateID, in: history(of: handle)) {
                return .reached(UpdateWorkflowExecutionResponse(updateRef: ref, outcome: outcome, stage: .completed))
            }
            throw key.run.error(.notFound, "update \(key.updateID) not found")
        case .reached(let stage, let outcome)?:
            return .reached(UpdateWorkflowExecutionResponse(updateRef: ref, outcome: outcome, stage: stage))
        case .failed(let error)?:
            throw error
        case .runContinued?:
            return .runContinued
        }
    }

    /// Moves the updates of a run whose transition was just published (see
    /// ``UpdateRegistry/runChanged(_:recordedOutcome:)``), and schedules a workflow task for
    /// updates left waiting without one.
    func updatesAfterTransition(_ state: ExecutionState) {
        let handle = registry.handle(state.key)
        let needsTask = updates.runChanged(state) { updateID in
            guard !state.isRunning, let handle, let history = try? self.history(of: handle),
                  case .completed(let outcome) = self.recordedUpdate(updateID, in: history) else { return nil }
            return outcome
        }
        guard needsTask, let handle else { return }
        Task {
            await handle.gate.acquire()
            defer { handle.gate.release() }
            guard !handle.isRemoved, updates.hasUndelivered(run: handle.key) else { return }
            try? await scheduleUpdateDelivery(handle)
        }
    }

    /// The processing of a completion's protocol messages for run `handle`'s task started at
    /// `startedEventID`. The caller holds the run's gate.
    func updateMessageProcessing(_ messages: [ProtocolMessage], handle: ExecutionHandle,
                                 startedEventID: Int64) -> UpdateMessageProcessing {
        // The common case (no update anywhere): closures that capture nothing, no allocation.
        if messages.isEmpty && updates.isEmpty {
            return UpdateMessageProcessing(messages: [], sent: [:], inFlight: { _ in nil }, recorded: { _ in .none })
        }
        let run = handle.key
        let updates = self.updates
        let sent = updates.isEmpty ? [:] : updates.sent(run: run, startedEventID: startedEventID)
        return UpdateMessageProcessing(
            messages: messages, sent: sent,
            inFlight: { updateID in updates.lookup(UpdateRegistry.UpdateKey(run: run, updateID: updateID)) },
            recorded: { [self] (updateID: String) throws(SpoolError) -> RecordedUpdate in
                recordedUpdate(updateID, in: try history(of: handle))
            })
    }

    /// The transition that ends speculative task `task` without a trace, when its completion
    /// writes nothing (Temporal drops such a task's events): no command but ProtocolMessage
    /// commands, only rejections, no event buffered meanwhile. Nil when the task must be written
    /// (then `updateMessages` is untouched). A further speculative task is scheduled for updates
    /// that arrived meanwhile.
    func speculativeTaskDropped(_ state: ExecutionState, _ task: WorkflowTaskInfo, commands: [Command],
                                updateMessages: inout UpdateMessageProcessing, stickyAttributes: StickyExecutionAttributes?,
                                now: Timestamp) throws(SpoolError) -> Transition? {
        guard state.buffered.isEmpty, updateMessages.onlyRejections else { return nil }
        var transition = Transition(state, now: now)
        try transition.record(.transientWorkflowTaskEnded(scheduledEventID: task.scheduledEventID, attempt: task.attempt))
        var processing = updateMessages
        for command in commands {
            guard case .protocolMessage(let a) = command,
                  try processing.process(messageID: a.messageID, into: &transition) == nil else { return nil }
        }
        guard try processing.finish(into: &transition) == nil, transition.changes.count == 1 else { return nil }
        if let sticky = stickyAttributes {
            try validateQueueName(sticky.workerTaskQueue, what: "the sticky queue")
            if sticky.workerTaskQueue != state.stickyTaskQueue || sticky.scheduleToStartTimeout != state.stickyScheduleToStartTimeout {
                try transition.record(.stickyTaskQueue(name: sticky.workerTaskQueue, scheduleToStartTimeout: sticky.scheduleToStartTimeout))
            }
        }
        if !updates.isEmpty,
           updates.hasUndelivered(run: state.key, exceptStartedEventID: task.startedEventID, answered: processing.answered) {
            try transition.record(.speculativeWorkflowTaskScheduled(time: transition.now))
        }
        updateMessages = processing
        return transition
    }

    /// The request messages to hand a worker with the workflow task just started at
    /// `startedEventID` of run `key`.
    func updateRequestMessages(for key: ExecutionKey, startedEventID: Int64) -> [ProtocolMessage] {
        updates.isEmpty ? [] : updates.send(run: key, startedEventID: startedEventID)
    }
}
