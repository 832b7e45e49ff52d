/// An error from the engine: what went wrong (``Code``), where (namespace, workflow id, run id,
/// event id), and the underlying cause (a `LogError`, a `MatchingError`).
///
/// Codes are an open set of values rather than a closed enum, so new failure kinds can be added
/// without breaking callers that switch over the ones they handle.
public struct SpoolError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// A stable, machine-readable name such as `"notFound"`.
        public let rawValue: String
        init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// A request field is missing or out of range; the message names it.
        public static let invalidArgument = Code("invalidArgument")
        /// No such execution (or, for a signal, cancel or terminate, it is already closed).
        public static let notFound = Code("notFound")
        /// A start was rejected: a run with this workflow id is open (conflict policy
        /// ``WorkflowIDConflictPolicy/fail``) or its reuse policy forbids a new run.
        public static let workflowExecutionAlreadyStarted = Code("workflowExecutionAlreadyStarted")
        /// A task token does not name the current attempt of a pending task: the task was already
        /// completed, timed out, retried or canceled. Nothing was changed.
        public static let staleTaskToken = Code("staleTaskToken")
        /// A task token's bytes could not be decoded.
        public static let invalidTaskToken = Code("invalidTaskToken")
        /// A history page token's bytes could not be decoded or belong to another execution.
        public static let invalidPageToken = Code("invalidPageToken")
        /// A log record could not be decoded (damaged, or written by a newer version).
        public static let corruptRecord = Code("corruptRecord")
        /// The engine's data directory could not be created or opened.
        public static let io = Code("io")
        /// The log failed (write or fsync error); the engine must be reopened. ``SpoolError/underlying``
        /// holds the `LogError`.
        public static let storage = Code("storage")
        /// The engine was closed.
        public static let closed = Code("closed")
        /// A worker answered a query with a failure (or has no handler for it): the message is the
        /// worker's, ``SpoolError/failure`` its failure when it sent one (Temporal's `QueryFailed`).
        public static let queryFailed = Code("queryFailed")
        /// No worker answered the query before its timeout (Temporal: `DEADLINE_EXCEEDED`). Nothing
        /// was changed: queries write nothing.
        public static let queryTimedOut = Code("queryTimedOut")
        /// The run cannot answer queries now: its workflow task keeps failing (attempt 3 or more),
        /// or it has no workflow task yet (Temporal's `WorkflowNotReady`). Try again later.
        public static let workflowNotReady = Code("workflowNotReady")
        /// The call names a namespace that is not registered (Temporal's `NamespaceNotFound`).
        public static let namespaceNotFound = Code("namespaceNotFound")
        /// A namespace with this name is already registered (Temporal's `NamespaceAlreadyExists`).
        public static let namespaceAlreadyExists = Code("namespaceAlreadyExists")
        /// What the call would create exists already (a search attribute of that name).
        public static let alreadyExists = Code("alreadyExists")
    }

    /// The kind of failure.
    public var code: Code
    /// A sentence for humans saying what happened and, where it helps, what to do.
    public var message: String
    /// The namespace concerned, when there is one.
    public var namespace: String?
    /// The workflow id concerned, when there is one.
    public var workflowID: String?
    /// The run id concerned, when there is one.
    public var runID: String?
    /// The event id concerned (a scheduled event id, for tasks), when there is one.
    public var eventID: Int64?
    /// The cause, such as a `LogError`.
    public var underlying: (any Error & Sendable)?
    /// The failure a worker reported, for ``Code/queryFailed``.
    public var failure: Failure?

    /// Creates an error.
    public init(_ code: Code, _ message: String, namespace: String? = nil, workflowID: String? = nil,
                runID: String? = nil, eventID: Int64? = nil, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.namespace = namespace
        self.workflowID = workflowID
        self.runID = runID
        self.eventID = eventID
        self.underlying = underlying
    }

    func with(underlying: any Error & Sendable) -> SpoolError {
        var copy = self
        copy.underlying = underlying
        return copy
    }

    public var description: String {
        var text = "\(code): "
        if let namespace { text += "namespace '\(namespace)': " }
        if let workflowID {
            text += "workflow '\(workflowID)'"
            if let runID, !runID.isEmpty { text += " run \(runID)" }
            text += ": "
        }
        if let eventID { text += "event \(eventID): " }
        text += message
        if let underlying { text += " (\(underlying))" }
        return text
    }
}
