/// A query to a workflow (Temporal's `WorkflowQuery`): a read-only question the workflow's
/// code answers from its state, without writing anything to the run's history.
public struct WorkflowQuery: Hashable, Sendable {
    /// The name of the query handler (`__stack_trace` and the SDKs' other built-in names too).
    public var queryType: String
    /// Its arguments.
    public var queryArgs: Payloads?
    /// Context the caller propagates (tracing, auth).
    public var header: Header

    /// A query.
    public init(queryType: String, queryArgs: Payloads? = nil, header: Header = Header()) {
        self.queryType = queryType
        self.queryArgs = queryArgs
        self.header = header
    }
}

/// A worker's answer to a query (Temporal's `WorkflowQueryResult`, and the outcome part of
/// `RespondQueryTaskCompletedRequest`).
public struct WorkflowQueryResult: Hashable, Sendable {
    /// Whether the query was answered or failed (Temporal's `QueryResultType`).
    public enum ResultType: UInt8, Hashable, Sendable {
        /// The handler returned ``WorkflowQueryResult/answer``.
        case answered = 1
        /// The handler failed (or none is registered): ``WorkflowQueryResult/errorMessage``.
        case failed = 2
    }

    /// Answered or failed.
    public var resultType: ResultType
    /// The answer, when answered.
    public var answer: Payloads?
    /// Why it failed, when failed.
    public var errorMessage: String
    /// The failure in full, when the worker sent one.
    public var failure: Failure?

    /// A result; prefer ``answered(_:)`` and ``failed(_:failure:)``.
    public init(resultType: ResultType, answer: Payloads? = nil, errorMessage: String = "", failure: Failure? = nil) {
        self.resultType = resultType
        self.answer = answer
        self.errorMessage = errorMessage
        self.failure = failure
    }

    /// An answer.
    public static func answered(_ answer: Payloads?) -> WorkflowQueryResult {
        WorkflowQueryResult(resultType: .answered, answer: answer)
    }

    /// A failed query: the caller of ``SpoolEngine/queryWorkflow(namespace:execution:queryType:args:header:rejectCondition:timeout:)``
    /// gets ``SpoolError/Code/queryFailed`` with this message and failure.
    public static func failed(_ message: String, failure: Failure? = nil) -> WorkflowQueryResult {
        WorkflowQueryResult(resultType: .failed, errorMessage: message, failure: failure)
    }
}

/// When a query is refused instead of being answered (Temporal's `QueryRejectCondition`).
public enum QueryRejectCondition: UInt8, Hashable, Sendable, CaseIterable {
    /// Never: closed runs are queried too (their full history is replayed by a worker).
    case none = 1
    /// Refused when the run is not open.
    case notOpen = 2
    /// Refused when the run is not open, unless it completed successfully.
    case notCompletedCleanly = 3
}

/// The outcome of a query that did not fail (Temporal's `QueryWorkflowResponse`).
public struct QueryWorkflowResponse: Hashable, Sendable {
    /// The worker's answer; nil when the query was rejected (or the handler returned nothing).
    public var queryResult: Payloads?
    /// The run's status when the reject condition refused the query; nil when it was answered.
    public var queryRejected: WorkflowExecutionStatus?

    /// A response.
    public init(queryResult: Payloads? = nil, queryRejected: WorkflowExecutionStatus? = nil) {
        self.queryResult = queryResult
        self.queryRejected = queryRejected
    }
}
