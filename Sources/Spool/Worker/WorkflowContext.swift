/// What a workflow definition is given: the run and its whole history up to the current
/// workflow task's WorkflowTaskStarted event.
public struct WorkflowContext: Sendable {
    /// The run.
    public var workflowExecution: WorkflowExecution
    /// Its type.
    public var workflowType: String
    /// Its events, from WorkflowExecutionStarted to this task's WorkflowTaskStarted.
    public var history: [HistoryEvent]
    /// The attempt of this workflow task.
    public var attempt: Int32

    /// The run's input (from WorkflowExecutionStarted).
    public var input: Payloads? {
        if case .workflowExecutionStarted(let started) = history.first?.attributes { return started.input }
        return nil
    }

    /// The run's header (from WorkflowExecutionStarted): what the starter propagated.
    public var header: Header {
        if case .workflowExecutionStarted(let started) = history.first?.attributes { return started.header }
        return Header()
    }
}

/// A workflow definition: a deterministic function of the run's history that returns the
/// commands for this workflow task. Throwing fails the workflow task (it is retried); the run
/// does not fail. To fail the run, return ``Command/failWorkflowExecution(_:)``.
public typealias WorkflowDefinition = @Sendable (WorkflowContext) async throws -> [Command]

/// What a query handler is given: the run, its history and the query.
public struct QueryContext: Sendable {
    /// The run.
    public var workflowExecution: WorkflowExecution
    /// Its type.
    public var workflowType: String
    /// Its events: up to the workflow task the query came with, or the whole history for a
    /// query-only task (a closed run's included).
    public var history: [HistoryEvent]
    /// The query: its type, arguments and header.
    public var query: WorkflowQuery
}

/// A query handler: reads the run's state from its history and returns the answer; writes
/// nothing. Throwing fails the query: the caller gets ``SpoolError/Code/queryFailed`` with the
/// error's description.
public typealias QueryHandler = @Sendable (QueryContext) async throws -> Payloads?
