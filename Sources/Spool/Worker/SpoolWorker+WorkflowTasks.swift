import Logging
import SpoolPrimitives

/// Workflow tasks: the poll loops of the normal and sticky queues, running a definition and
/// responding, eager activities, and the history a definition is given.
extension SpoolWorker {
    func pollWorkflowTasks(_ queue: String) async {
        while !isStopping {
            await workflowSlots.acquire()
            if isStopping {
                workflowSlots.release()
                break
            }
            let polled: WorkflowTask?
            do {
                polled = try await engine.pollWorkflowTaskQueue(namespace: namespace, taskQueue: queue, identity: identity,
                                                                timeout: .seconds(30), sticky: queue == stickyTaskQueue)
            } catch {
                workflowSlots.release()
                guard await shouldPollAgain(after: error) else { break }
                continue
            }
            guard let task = polled else {
                workflowSlots.release()
                continue
            }
            // Not a child of the loop: stopping the loop must not cancel a task being run.
            runners.submit { await self.run(task) }
        }
    }

    /// Runs a workflow task whose slot is held, frees the slot, then runs the activities the
    /// engine started eagerly for it (their slots are held): the last in this same task, the
    /// others each on a runner of its own — one hand-off fewer per workflow task that schedules
    /// activities.
    func run(_ task: WorkflowTask) async {
        let activities = await handle(task)
        workflowSlots.release()
        for (index, activity) in activities.enumerated() {
            if index == activities.count - 1 {
                await handle(activity)
                activitySlots.release()
            } else {
                runners.submit {
                    await self.handle(activity)
                    self.activitySlots.release()
                }
            }
        }
    }

    /// Runs a workflow task and responds; returns the activities the engine started for it
    /// eagerly, each holding an activity slot the caller must release once it is answered.
    ///
    /// Every call allocates this async function's frame, which holds whatever lives across one of
    /// its `await`s: the rare paths (queries, updates, failures) and the synchronous bookkeeping
    /// are functions of their own, not inlined, so that the frame stays small.
    private func handle(_ task: WorkflowTask) async -> [ActivityTask] {
        if let query = task.query {
            await answerQueryTask(task, query: query)
            return []
        }
        do {
            let history = try await fullHistory(of: task)
            guard let definition = registrations.withLock({ $0.workflows[task.workflowType] })?.definition else {
                try await fail(task, with: .application("workflow type '\(task.workflowType)' is not registered with worker '\(identity)'",
                                                        type: "NotFoundError", source: SpoolWorker.failureSource))
                return []
            }
            let context = WorkflowContext(workflowExecution: task.workflowExecution, workflowType: task.workflowType,
                                          history: history, attempt: task.attempt)
            let onlyUpdates = Self.bringsOnlyUpdates(task, history: history)
            let (updateMessages, updateCommands) = task.messages.isEmpty ? ([], []) : await answerUpdates(task, history: history)
            var commands: [Command] = updateCommands
            do {
                if !onlyUpdates { commands += try await definition(context) }
            } catch {
                try await fail(task, with: .application("\(error)", type: String(describing: type(of: error)),
                                                        source: SpoolWorker.failureSource))
                return []
            }
            let completion = prepareCompletion(task, history: history, commands: commands, onlyUpdates: onlyUpdates)
            // Slots reserved for eager activities the engine did not start go back.
            defer { for _ in 0..<completion.reserved { activitySlots.release() } }
            let queryResults = task.queries.isEmpty ? [:] : await answerQueries(task, history: history)
            let response = try await engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: completion.commands,
                                                                         identity: identity, stickyAttributes: completion.sticky,
                                                                         queryResults: queryResults,
                                                                         // The definition sees accepted updates in a next task.
                                                                         forceCreateNewWorkflowTask: !updateCommands.isEmpty && !completion.closes,
                                                                         messages: updateMessages)
            let started = Array(response.activityTasks.prefix(completion.reserved))
            completion.reserved -= started.count     // these slots now belong to the activities, released when they are answered
            return started
        } catch {
            forget(task, error)
            return []
        }
    }

    /// A workflow task's completion, prepared before it is sent: the commands (activities marked
    /// for eager execution) and the activity slots reserved for them; a class, so that the async
    /// caller holds one reference across its `await`s.
    private final class PreparedCompletion {
        let commands: [Command]
        let sticky: StickyExecutionAttributes?
        let closes: Bool
        var reserved: Int

        init(commands: [Command], sticky: StickyExecutionAttributes?, closes: Bool, reserved: Int) {
            self.commands = commands
            self.sticky = sticky
            self.closes = closes
            self.reserved = reserved
        }
    }

    /// Caches the task's history for the run's next (sticky) task, or drops it, and marks the
    /// commands' activities for eager execution.
    @inline(never)
    private func prepareCompletion(_ task: WorkflowTask, history: [HistoryEvent], commands: [Command],
                                   onlyUpdates: Bool) -> PreparedCompletion {
        let runID = task.workflowExecution.runID
        let closes = commands.contains { $0.isClosing }
        let sticky = closes ? nil : stickyTaskQueue.map {
            StickyExecutionAttributes(workerTaskQueue: $0, scheduleToStartTimeout: stickyScheduleToStartTimeout)
        }
        // A task with only updates may leave no trace (all rejected): its events are not cached.
        if sticky != nil && !onlyUpdates { cache.withLock { $0.store(runID, history) } } else { cache.withLock { $0.remove(runID) } }
        let (marked, reserved) = requestEagerExecution(commands, workflowTaskQueue: task.workflowExecutionTaskQueue)
        return PreparedCompletion(commands: marked, sticky: sticky, closes: closes, reserved: reserved)
    }

    /// The answers to the queries that came with `task`, by id.
    @inline(never)
    private func answerQueries(_ task: WorkflowTask, history: [HistoryEvent]) async -> [String: WorkflowQueryResult] {
        var queryResults: [String: WorkflowQueryResult] = [:]
        for (id, query) in task.queries {
            queryResults[id] = await answer(query, workflowExecution: task.workflowExecution, workflowType: task.workflowType,
                                            history: history)
        }
        return queryResults
    }

    /// Fails `task` (the definition is not registered here, or it threw) and forgets the run's
    /// cached history.
    @inline(never)
    private func fail(_ task: WorkflowTask, with failure: Failure) async throws(SpoolError) {
        cache.withLock { $0.remove(task.workflowExecution.runID) }
        try await engine.respondWorkflowTaskFailed(taskToken: task.taskToken, cause: .workflowWorkerUnhandledFailure,
                                                   failure: failure, identity: identity)
    }

    /// A task that could not be answered: its run's cached history is dropped, the engine's
    /// timeout hands the task to another attempt.
    @inline(never)
    private func forget(_ task: WorkflowTask, _ error: SpoolError) {
        cache.withLock { $0.remove(task.workflowExecution.runID) }
        logger.info("a workflow task could not be answered", metadata: ["run": "\(task.workflowExecution)", "error": "\(error)"])
    }

    /// Answers a query-only task from the run's whole history.
    @inline(never)
    private func answerQueryTask(_ task: WorkflowTask, query: WorkflowQuery) async {
        do {
            var history = task.history
            if history.first?.eventID != 1 {
                history = try await engine.getWorkflowExecutionHistory(namespace: namespace, execution: task.workflowExecution,
                                                                       maximumPageSize: .max).history
            }
            let result = await answer(query, workflowExecution: task.workflowExecution, workflowType: task.workflowType, history: history)
            try await engine.respondQueryTaskCompleted(taskToken: task.taskToken, result: result, identity: identity)
        } catch {
            logger.info("a query task could not be answered", metadata: ["run": "\(task.workflowExecution)", "error": "\(error)"])
        }
    }

    /// Runs the handler registered for `query`, or fails it naming the known query types.
    private func answer(_ query: WorkflowQuery, workflowExecution: WorkflowExecution, workflowType: String,
                        history: [HistoryEvent]) async -> WorkflowQueryResult {
        let handlers = registrations.withLock { $0.queries[workflowType] ?? [:] }
        if handlers[query.queryType] == nil,
           let builtIn = builtInAnswer(query.queryType, workflowType: workflowType, history: history, registeredQueries: Array(handlers.keys)) {
            return .answered(builtIn)
        }
        guard let handler = handlers[query.queryType] else {
            let known = Set(handlers.keys).union(Self.builtInQueryTypes).sorted().joined(separator: " ")
            return .failed("unknown queryType \(query.queryType). KnownQueryTypes=[\(known)]",
                           failure: .application("unknown queryType \(query.queryType)", type: "QueryNotRegistered",
                                                 source: SpoolWorker.failureSource))
        }
        do {
            return .answered(try await handler(QueryContext(workflowExecution: workflowExecution, workflowType: workflowType,
                                                            history: history, query: query)))
        } catch {
            return .failed("\(error)", failure: .application("\(error)", type: String(describing: type(of: error)),
                                                               source: SpoolWorker.failureSource))
        }
    }

    /// Marks for eager execution as many of `commands`' activities on the workflow's queue as
    /// there are free activity slots, and takes those slots; returns the commands and how many.
    private func requestEagerExecution(_ commands: [Command], workflowTaskQueue: String) -> ([Command], Int) {
        guard eagerActivities, workflowTaskQueue == taskQueue else { return (commands, 0) }
        var reserved = 0
        let marked = commands.map { command -> Command in
            guard case .scheduleActivityTask(var attributes) = command,
                  attributes.taskQueue.isEmpty || attributes.taskQueue == taskQueue,
                  activitySlots.tryAcquire() else { return command }
            reserved += 1
            attributes.requestEagerExecution = true
            return .scheduleActivityTask(attributes)
        }
        return (marked, reserved)
    }

    /// The task's whole history: the cached events plus the new ones of a sticky task, or the
    /// full history read from the engine when the cache does not have the run.
    private func fullHistory(of task: WorkflowTask) async throws(SpoolError) -> [HistoryEvent] {
        if task.history.first?.eventID == 1 { return task.history }
        let runID = task.workflowExecution.runID
        if let cached = cache.withLock({ $0.history(runID) }), cached.last?.eventID == (task.history.first?.eventID ?? 1) - 1 {
            return cached + task.history
        }
        var events: [HistoryEvent] = []
        var token: [UInt8]? = nil
        repeat {
            let page = try await engine.getWorkflowExecutionHistory(namespace: namespace, execution: task.workflowExecution,
                                                                     nextPageToken: token)
            events += page.history
            token = page.nextPageToken
        } while token != nil && (events.last?.eventID ?? 0) < task.startedEventID
        return events.filter { $0.eventID <= task.startedEventID }
    }
}
