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

    /// The run's WorkflowExecutionStarted attributes.
    public var started: WorkflowExecutionStartedEventAttributes? {
        if case .workflowExecutionStarted(let started) = history.first?.attributes { return started }
        return nil
    }

    /// The result of the chain's last completed run: what a cron run gets from the run before
    /// it, or what a continue-as-new handed on; nil for none.
    public var lastCompletionResult: Payloads? { started?.lastCompletionResult }

    /// The failure of the run this one retries (or of the cron run before it that failed).
    public var continuedFailure: Failure? { started?.continuedFailure }

    /// The run's attempt: 1, or one more than the run it retries (not the workflow task's
    /// ``attempt``).
    public var runAttempt: Int32 { started?.attempt ?? 1 }

    /// The run's search attributes as of this task: the start's, with the upserts in the
    /// history so far merged in (a workflow returns
    /// ``Command/upsertWorkflowSearchAttributes(_:)`` to change them).
    public var searchAttributes: [String: Payload] {
        var current = started?.searchAttributes ?? [:]
        for event in history {
            if case .upsertWorkflowSearchAttributes(let a) = event.attributes { current = Payload.merging(a.searchAttributes, into: current) }
        }
        return current
    }

    /// The run's memo as of this task: the start's, with the modifications in the history so
    /// far merged in (``Command/modifyWorkflowProperties(_:)`` changes it).
    public var memo: [String: Payload] {
        var current = started?.memo ?? [:]
        for event in history {
            if case .workflowPropertiesModified(let a) = event.attributes { current = Payload.merging(a.upsertedMemo, into: current) }
        }
        return current
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
