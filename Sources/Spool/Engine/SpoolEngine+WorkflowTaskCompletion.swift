/// A workflow task's completion: the commands and messages a worker sends are decided into one
/// transition (with a continue-as-new's next run and started children, appended together),
/// committed, and answered with the eager activities and the next workflow task.
extension SpoolEngine {
    /// Completes a started workflow task with the workflow's commands, applied in order, all or
    /// none, in one durable append: WorkflowTaskCompleted, the commands' events, the events
    /// buffered meanwhile, and a new WorkflowTaskScheduled if those buffered events (or an
    /// activity canceled before it started) need the workflow's attention.
    ///
    /// An invalid command (an unknown activity or timer, a duplicate id, a bad timeout, a command
    /// after a closing command, a closing command while new events wait) does not fail the call:
    /// the task is recorded as WorkflowTaskFailed with the command's cause, nothing else changes,
    /// and a new attempt is scheduled.
    ///
    /// - Parameters:
    ///   - stickyAttributes: the worker's sticky queue for the run's next workflow tasks.
    ///   - metadata: what the worker reports about itself (SDK flags, name and version, build id,
    ///     binary checksum, metering): recorded in WorkflowTaskCompleted as sent.
    ///   - queryResults: answers to the task's ``WorkflowTask/queries``, by id; each goes to its
    ///     caller (written nowhere). A query left unanswered waits for the next workflow task, or
    ///     becomes a query-only task when this completion schedules none.
    ///   - forceCreateNewWorkflowTask: schedule a new workflow task at once even when no new event
    ///     needs one (Temporal's `force_create_new_workflow_task`: an SDK whose local activities
    ///     run past the task timeout completes the task this way, as a heartbeat, and goes on in
    ///     the next one). Ignored when the commands close the run.
    ///   - returnNewWorkflowTask: when this completion schedules a new workflow task (new events,
    ///     `forceCreateNewWorkflowTask`), start it for this worker in the same append
    ///     (WorkflowTaskStarted written) and return it in
    ///     ``RespondWorkflowTaskCompletedResponse/workflowTask`` instead of queueing it (Temporal's
    ///     `return_new_workflow_task`). Its history is the events after this task's WorkflowTaskStarted
    ///     when it is on the worker's sticky queue, else the whole history.
    ///   - messages: the worker's protocol messages (Temporal's `messages`): acceptances,
    ///     rejections and responses for the updates of ``WorkflowTask/messages``, processed where a
    ///     ``Command/protocolMessage(_:)`` names them, the others after the commands (before them
    ///     when no command names a message, as Temporal does for SDKs that send none). An update
    ///     sent with the task and not answered is rejected. A speculative task (one the engine
    ///     scheduled for an update) whose completion only rejects writes nothing at all. An invalid
    ///     message fails the task (`badUpdateWorkflowExecutionMessage`) like an invalid command.
    /// - Throws: ``SpoolError/Code/staleTaskToken`` when the token does not name the run's started
    ///   workflow task (nothing changes); ``SpoolError/Code/notFound``; ``SpoolError/Code/storage``.
    @discardableResult
    public func respondWorkflowTaskCompleted(taskToken: TaskToken, commands: [Command], identity: String = "",
                                             stickyAttributes: StickyExecutionAttributes? = nil,
                                             metadata: WorkflowTaskCompletionMetadata = WorkflowTaskCompletionMetadata(),
                                             queryResults: [String: WorkflowQueryResult] = [:],
                                             forceCreateNewWorkflowTask: Bool = false,
                                             returnNewWorkflowTask: Bool = false,
                                             messages: [ProtocolMessage] = []) async throws(SpoolError) -> RespondWorkflowTaskCompletedResponse {
        try checkOpen()
        let (handle, state, task) = try await lockStartedWorkflowTask(taskToken)
        defer { handle.gate.release() }
        let decision = try decideCompletion(handle, state, task, commands: commands, identity: identity,
                                            stickyAttributes: stickyAttributes, metadata: metadata, queryResults: queryResults,
                                            forceCreateNewWorkflowTask: forceCreateNewWorkflowTask,
                                            returnNewWorkflowTask: returnNewWorkflowTask, messages: messages)
        try await commit(decision, of: handle)
        if decision.leavesNoTrace {
            return RespondWorkflowTaskCompletedResponse(activityTasks: [], resetHistoryEventID: state.previousStartedEventID)
        }
        return try completedResponse(decision, of: handle, task: task, returnNewWorkflowTask: returnNewWorkflowTask)
    }

    /// What a workflow task's completion writes, decided under the run's gate before the append.
    /// A class: the async callers keep one reference across their suspension points, not the
    /// transitions themselves (an async function's frame holds every value live across an
    /// `await`, and each call allocates it).
    private final class CompletionDecision {
        /// The run's transition; for a speculative task that leaves no trace (``leavesNoTrace``),
        /// the one that ends it without writing its events.
        var transition: Transition
        var leavesNoTrace = false
        /// A continue-as-new's next run, started in the same append.
        var newRun: (handle: ExecutionHandle, transition: Transition)?
        /// Children started in the same append.
        var children: [(handle: ExecutionHandle, transition: Transition, previousRunID: String?)] = []
        /// Activities started in the same append for the completing worker.
        var eager: [Int64] = []
        var updateEffects: [UpdateRegistry.Effect] = []

        init(_ transition: Transition) { self.transition = transition }
    }

    /// Decides everything `respondWorkflowTaskCompleted` writes (see there); synchronous, and not
    /// inlined into its async caller, so that its many temporaries live on the thread's stack.
    @inline(never)
    private func decideCompletion(_ handle: ExecutionHandle, _ state: ExecutionState, _ task: WorkflowTaskInfo, commands: [Command],
                                  identity: String, stickyAttributes: StickyExecutionAttributes?,
                                  metadata: WorkflowTaskCompletionMetadata, queryResults: [String: WorkflowQueryResult],
                                  forceCreateNewWorkflowTask: Bool, returnNewWorkflowTask: Bool,
                                  messages: [ProtocolMessage]) throws(SpoolError) -> CompletionDecision {
        var updateMessages = updateMessageProcessing(messages, handle: handle, startedEventID: task.startedEventID)
        // Answered before the commit: an answer is about the state the worker computed, whatever
        // becomes of its commands; the ones left are moved when the transition is published.
        for (id, result) in queryResults {
            guard let id = UInt32(id) else { continue }
            queries.resolve(id, .answered(result), key: handle.key, expecting: .attached(startedEventID: task.startedEventID))
        }
        let now = clock.now()
        if task.isSpeculative, !forceCreateNewWorkflowTask,
           let dropped = try speculativeTaskDropped(state, task, commands: commands, updateMessages: &updateMessages,
                                                    stickyAttributes: stickyAttributes, now: now) {
            let decision = CompletionDecision(dropped)
            decision.leavesNoTrace = true
            decision.updateEffects = updateMessages.effects
            return decision
        }
        var transition = Transition(state, now: now)
        // A transient attempt's Scheduled and Started are written now, in the same append.
        if task.isTransient { try transition.writeTransientWorkflowTask(task, identity: identity) }
        let completedEventID = try transition.add(.workflowTaskCompleted(.init(
            scheduledEventID: task.scheduledEventID, startedEventID: task.startedEventID, identity: identity,
            binaryChecksum: metadata.binaryChecksum, workerVersion: metadata.workerVersion, sdkMetadata: metadata.sdkMetadata,
            meteringMetadata: metadata.meteringMetadata, versioningBehavior: metadata.versioningBehavior,
            workerDeploymentName: metadata.workerDeploymentName, workerDeploymentVersion: metadata.workerDeploymentVersion)))
        if let sticky = stickyAttributes {
            try validateQueueName(sticky.workerTaskQueue, what: "the sticky queue")
            if sticky.workerTaskQueue != state.stickyTaskQueue || sticky.scheduleToStartTimeout != state.stickyScheduleToStartTimeout {
                try transition.record(.stickyTaskQueue(name: sticky.workerTaskQueue, scheduleToStartTimeout: sticky.scheduleToStartTimeout))
            }
        }
        var newRun: (handle: ExecutionHandle, transition: Transition)?
        var children: [(handle: ExecutionHandle, transition: Transition, previousRunID: String?)] = []
        var eager: [Int64] = []
        let messagesFirst = !commands.contains { if case .protocolMessage = $0 { true } else { false } }
        var outcome: CommandOutcome
        if messagesFirst, let problem = try updateMessages.finish(into: &transition) {
            outcome = .rejected(.badUpdateWorkflowExecutionMessage, "protocol messages: \(problem)")
        } else {
            outcome = try apply(commands, to: &transition, completedEventID: completedEventID, identity: identity,
                                updateMessages: &updateMessages)
            if case .accepted = outcome, !messagesFirst, let problem = try updateMessages.finish(into: &transition) {
                outcome = .rejected(.badUpdateWorkflowExecutionMessage, "protocol messages: \(problem)")
            }
        }
        var updateEffects = updateMessages.effects
        switch outcome {
        case .rejected(let cause, let message):
            // As Temporal (`workflowTaskFailErr`): the updates this task carried fail, not retried.
            updateEffects = updates.sent(run: handle.key, startedEventID: task.startedEventID).keys.map {
                .failed(updateID: $0, error: handle.key.error(.workflowNotReady,
                        "Unable to perform workflow execution update due to unexpected workflow task failure."))
            }
            // As Temporal's server: a server failure naming the cause and the invalid command.
            transition = try failedWorkflowTask(state, task, cause: cause, failure: .server("\(cause): \(message)", nonRetryable: true),
                                                identity: identity, binaryChecksum: metadata.binaryChecksum,
                                                workerVersion: metadata.workerVersion, now: now)
        case .accepted(let needsWorkflowTask, let continued, let eagerActivities):
            if transition.state.isRunning {
                let flushed = try transition.flushBufferedEvents()
                // Children start in this same append; their Started or StartFailed needs a workflow task.
                let initiated = commands.contains(where: \.isStartChild) ? initiatedChildren(in: transition, after: completedEventID) : []
                children = try startChildren(initiated, transition: &transition)
                // A child left to start after this append (TERMINATE_IF_RUNNING) needs none yet.
                let childOutcomes = initiated.contains { transition.state.related.children[$0.initiatedEventID]?.isStarted ?? true }
                if flushed || needsWorkflowTask || forceCreateNewWorkflowTask || childOutcomes {
                    try transition.scheduleWorkflowTaskIfNeeded()
                }
                // Started in this same append for the completing worker: never queued.
                if returnNewWorkflowTask, let next = transition.state.workflowTask, next.startedEventID == 0,
                   next.scheduledEventID > completedEventID {
                    try transition.add(.workflowTaskStarted(.init(scheduledEventID: next.scheduledEventID, identity: identity,
                                                                  requestID: RequestID.next())))
                }
                // Started in this same append: the worker gets them in the response, nothing is queued.
                for scheduledEventID in eagerActivities {
                    guard let activity = transition.state.activities[scheduledEventID], !activity.isStarted else { continue }
                    try transition.record(.activityStarted(scheduledEventID: scheduledEventID, attempt: activity.attempt, time: now,
                                                           identity: identity, requestID: RequestID.next()))
                    eager.append(scheduledEventID)
                }
                // Updates that arrived while the task ran, with no other task to carry them: a
                // speculative one, as Temporal (written only if the worker accepts one).
                if !updates.isEmpty, transition.state.workflowTask == nil, !transition.state.isPendingOnFirstWorkflowTaskBackoff,
                   updates.hasUndelivered(run: handle.key, exceptStartedEventID: task.startedEventID, answered: updateMessages.answered) {
                    try transition.record(.speculativeWorkflowTaskScheduled(time: now))
                }
            }
            newRun = continued
        }
        let decision = CompletionDecision(transition)
        decision.newRun = newRun
        decision.children = children
        decision.eager = eager
        decision.updateEffects = updateEffects
        return decision
    }

    /// Appends a completion's transitions (a continue-as-new's next run and started children in
    /// the same append), with what they did to updates applied when they are published; undoes
    /// the staged update effects and the reservations when the append fails.
    private func commit(_ decision: CompletionDecision, of handle: ExecutionHandle) async throws(SpoolError) {
        updates.stage(decision.updateEffects, run: handle.key)
        do {
            if let newRun = decision.newRun {
                try await commit([(handle, decision.transition), newRun])
            } else if !decision.children.isEmpty {
                try await commit([(handle, decision.transition)] + decision.children.map { ($0.handle, $0.transition) })
            } else {
                try await commit(handle, decision.transition)
            }
        } catch {
            if !decision.updateEffects.isEmpty { updates.unstage(run: handle.key) }
            if let newRun = decision.newRun { unreserve(newRun.handle, previousRunID: handle.key.runID) }
            for child in decision.children { unreserve(child.handle, previousRunID: child.previousRunID) }
            throw error
        }
        decision.newRun?.handle.gate.release()
        for child in decision.children { child.handle.gate.release() }
    }

    /// The response to a committed completion: its eager activities, and the next workflow task
    /// when the worker asked for it and one was started.
    @inline(never)
    private func completedResponse(_ decision: CompletionDecision, of handle: ExecutionHandle, task: WorkflowTaskInfo,
                                   returnNewWorkflowTask: Bool) throws(SpoolError) -> RespondWorkflowTaskCompletedResponse {
        let final = decision.transition.state
        var next: WorkflowTask?
        if returnNewWorkflowTask, let started = final.workflowTask, started.startedEventID > task.startedEventID,
           final.isRunning, var returned = try workflowTask(from: final, history: history(of: handle)) {
            if !queries.isEmpty { returned.queries = queries.attach(key: handle.key, startedEventID: returned.startedEventID) }
            returned.messages = updateRequestMessages(for: handle.key, startedEventID: returned.startedEventID)
            next = returned
        }
        return RespondWorkflowTaskCompletedResponse(activityTasks: decision.eager.compactMap { scheduledEventID in
            final.activities[scheduledEventID].map { activityTask(for: $0, state: final) }
        }, workflowTask: next)
    }
}
