import SpoolMatching

extension SpoolEngine {
    /// Asks the workflow a question (Temporal's `QueryWorkflow`) and waits for a worker's answer.
    /// Nothing is written: the run's history and state are unchanged, whatever happens.
    ///
    /// How the query reaches a worker, as Temporal:
    /// - a closed run, or an open run with no workflow task scheduled or started, gets a
    ///   **query-only task** on its task queue (``WorkflowTask/query`` set, the full history),
    ///   answered with ``respondQueryTaskCompleted(taskToken:result:identity:)``;
    /// - an open run with a workflow task outstanding gets the query **with its next workflow task**
    ///   (``WorkflowTask/queries``: the task's new events come before the query), answered in
    ///   ``respondWorkflowTaskCompleted(taskToken:commands:identity:stickyAttributes:metadata:queryResults:)``.
    ///   If that completion does not answer it and schedules no new task, it becomes a query-only task.
    ///
    /// Either way the run needs a completed workflow task before a worker can answer: until then
    /// the query waits with the next workflow task.
    ///
    /// - Parameters:
    ///   - execution: the run; an empty run id means the workflow id's current run.
    ///   - rejectCondition: refuse instead of asking when the run is closed (`notOpen`) or closed
    ///     other than completed (`notCompletedCleanly`): the response then holds the run's status.
    ///   - timeout: how long to wait for an answer.
    /// - Throws: ``SpoolError/Code/queryFailed`` with the worker's message and ``SpoolError/failure``
    ///   when the worker failed the query (no handler, the handler threw);
    ///   ``SpoolError/Code/queryTimedOut`` when no worker answered within `timeout`;
    ///   ``SpoolError/Code/workflowNotReady`` when the run's workflow task keeps failing (attempt 3
    ///   or more, as Temporal: the query would fail too); ``SpoolError/Code/notFound``;
    ///   ``SpoolError/Code/invalidArgument`` for an empty query type; ``SpoolError/Code/closed``
    ///   when the engine closes meanwhile. A cancelled caller gets ``SpoolError/Code/queryTimedOut``.
    public func queryWorkflow(namespace: String = defaultNamespace, execution: WorkflowExecution, queryType: String,
                              args: Payloads? = nil, header: Header = Header(), rejectCondition: QueryRejectCondition = .none,
                              timeout: Duration = .seconds(30)) async throws(SpoolError) -> QueryWorkflowResponse {
        try checkOpen()
        guard !queryType.isEmpty else {
            throw SpoolError(.invalidArgument, "the query type is empty", namespace: namespace, workflowID: execution.workflowID)
        }
        let deadline = clock.now().advanced(by: timeout)
        let handle = try await lockRun(namespace: namespace, execution: execution)
        let state = handle.state
        if !state.isRunning {
            switch rejectCondition {
            case .none:
                break
            case .notOpen:
                handle.gate.release()
                return QueryWorkflowResponse(queryRejected: state.status)
            case .notCompletedCleanly:
                if state.status != .completed {
                    handle.gate.release()
                    return QueryWorkflowResponse(queryRejected: state.status)
                }
            }
        }
        if state.isRunning, let task = state.workflowTask, task.attempt >= 3 {
            handle.gate.release()
            throw handle.key.error(.workflowNotReady, "the workflow task is failing (attempt \(task.attempt)); the query would fail too. "
                                   + "Query again once a workflow task completes")
        }
        // Direct dispatch is safe when no event waits for the workflow: nothing the query could
        // miss. A worker can only replay a history in which a workflow task completed.
        let direct = state.previousStartedEventID != 0 && (!state.isRunning || state.workflowTask == nil)
        let query = WorkflowQuery(queryType: queryType, queryArgs: args, header: header)
        let id = queries.register(query, key: handle.key, phase: direct ? .dispatched : .buffered)
        if direct { dispatchQueryTask(id, state: state) }
        handle.gate.release()

        let queries = self.queries
        let timer = Task { [clock] in
            do { try await clock.sleep(until: deadline) } catch { return }
            queries.resolve(id, .failed(handle.key.error(.queryTimedOut, "no worker answered the query '\(queryType)' within \(timeout)")))
        }
        let outcome = await withTaskCancellationHandler {
            await queries.wait(id)
        } onCancel: {
            queries.resolve(id, .failed(handle.key.error(.queryTimedOut, "the query '\(queryType)' was cancelled before a worker answered")))
        }
        timer.cancel()
        switch outcome {
        case .answered(let result):
            switch result.resultType {
            case .answered:
                return QueryWorkflowResponse(queryResult: result.answer)
            case .failed:
                var error = handle.key.error(.queryFailed, result.errorMessage.isEmpty ? result.failure?.message ?? "the query failed" : result.errorMessage)
                error.failure = result.failure
                throw error
            }
        case .failed(let error):
            throw error
        }
    }

    /// Answers a query-only task (Temporal's `RespondQueryTaskCompleted`): the caller of
    /// ``queryWorkflow(namespace:execution:queryType:args:header:rejectCondition:timeout:)`` gets
    /// the answer, or ``SpoolError/Code/queryFailed`` for a ``WorkflowQueryResult/ResultType/failed`` result.
    /// - Throws: ``SpoolError/Code/invalidTaskToken`` for a workflow or activity task's token;
    ///   ``SpoolError/Code/notFound`` when the query is no longer waiting (answered, timed out).
    public func respondQueryTaskCompleted(taskToken: TaskToken, result: WorkflowQueryResult, identity: String = "") async throws(SpoolError) {
        try checkOpen()
        guard taskToken.kind == .query, let id = UInt32(exactly: taskToken.queryID) else {
            throw taskToken.key.error(.invalidTaskToken, "the token is not a query task's")
        }
        guard queries.resolve(id, .answered(result), key: taskToken.key, expecting: .taken) else {
            throw taskToken.key.error(.notFound, "the query is no longer waiting for an answer (it was answered, timed out or cancelled)")
        }
    }

    /// Puts query `id`'s query-only task on the run's own task queue.
    func dispatchQueryTask(_ id: UInt32, state: ExecutionState) {
        let reference = TaskReference(key: state.key, scheduledEventID: 0, attempt: 0, queryID: id)
        do {
            try dispatcher(state.key.namespace).add(QueuedTask(id: UInt64(id), payload: reference), to: state.taskQueue, kind: .workflow)
        } catch {
            queries.resolve(id, .failed(state.key.error(.invalidArgument, "cannot queue the query task: \(error)")))
        }
    }

    /// The query-only task a poll received, for a worker; nil when the query no longer waits.
    func queryTask(_ reference: TaskReference) throws(SpoolError) -> WorkflowTask? {
        guard let handle = registry.handle(reference.key), let query = queries.take(reference.queryID, key: reference.key) else { return nil }
        let state = handle.state
        let history: [HistoryEvent]
        do {
            history = try self.history(of: handle)
        } catch {
            queries.resolve(reference.queryID, .failed(error))
            throw error
        }
        let now = clock.now()
        return WorkflowTask(
            taskToken: TaskToken(kind: .query, key: state.key, scheduledEventID: 0, startedEventID: 0, attempt: 1,
                                 queryID: UInt64(reference.queryID)),
            workflowExecution: state.key.execution, workflowType: state.workflowType,
            previousStartedEventID: state.previousStartedEventID, startedEventID: 0, attempt: 1, history: history,
            workflowExecutionTaskQueue: state.taskQueue, scheduledTime: now, startedTime: now, query: query)
    }

    /// Gives back a query-only task a poll took but could not hand to its worker: it goes on
    /// the queue again at once. Does nothing when the query no longer waits.
    func returnUndeliveredQueryTask(_ token: TaskToken) {
        guard let id = UInt32(exactly: token.queryID), queries.untake(id, key: token.key),
              let handle = registry.handle(token.key) else { return }
        dispatchQueryTask(id, state: handle.state)
    }

    /// Moves the queries of a run whose transition was just published (see ``QueryRegistry/runChanged(_:)``).
    func queriesAfterTransition(_ state: ExecutionState) {
        for id in queries.runChanged(state) { dispatchQueryTask(id, state: state) }
    }
}
