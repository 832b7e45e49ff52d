import SpoolLog

/// Names one attempt of one task: the run, the task's scheduled event id, its attempt and, for
/// a workflow task, its started event id. A worker hands it back with the task's outcome; an
/// outcome whose token no longer names the pending attempt is rejected with
/// ``SpoolError/Code/staleTaskToken`` and changes nothing (Temporal's task token).
public struct TaskToken: Hashable, Sendable, CustomStringConvertible {
    /// Which kind of task the token is for.
    public enum Kind: UInt8, Hashable, Sendable {
        /// A workflow task.
        case workflow = 1
        /// An activity task.
        case activity = 2
        /// A query-only task (a query sent to a worker without a workflow task), answered with
        /// ``SpoolEngine/respondQueryTaskCompleted(taskToken:result:identity:)``.
        case query = 3
    }

    /// Which kind of task the token is for.
    public var kind: Kind
    /// The run's namespace.
    public var namespace: String
    /// The run.
    public var execution: WorkflowExecution
    /// The task's WorkflowTaskScheduled or ActivityTaskScheduled event.
    public var scheduledEventID: Int64
    /// The workflow task's WorkflowTaskStarted event (0 for an activity task).
    public var startedEventID: Int64
    /// The attempt, from 1.
    public var attempt: Int32
    /// The engine's id of the query, for a query-only task (0 for other kinds).
    public var queryID: UInt64

    init(kind: Kind, key: ExecutionKey, scheduledEventID: Int64, startedEventID: Int64, attempt: Int32, queryID: UInt64 = 0) {
        self.kind = kind
        self.namespace = key.namespace
        self.execution = key.execution
        self.scheduledEventID = scheduledEventID
        self.startedEventID = startedEventID
        self.attempt = attempt
        self.queryID = queryID
    }

    var key: ExecutionKey { ExecutionKey(namespace: namespace, workflowID: execution.workflowID, runID: execution.runID) }

    private static let version: UInt8 = 1

    /// The token as opaque bytes, for a worker on the other side of a network.
    public var serialized: [UInt8] {
        var w = BinaryWriter(capacity: 64)
        w.byte(Self.version)
        w.byte(kind.rawValue)
        w.string(namespace)
        w.string(execution.workflowID)
        w.string(execution.runID)
        w.signed(scheduledEventID)
        w.signed(startedEventID)
        w.signed(Int64(attempt))
        // Only a query token carries it: workflow and activity tokens keep their earlier bytes.
        if kind == .query { w.unsigned(queryID) }
        return w.bytes
    }

    /// Decodes ``serialized`` bytes.
    /// - Throws: ``SpoolError/Code/invalidTaskToken`` when the bytes are not a task token.
    public init(serialized bytes: [UInt8]) throws(SpoolError) {
        var r = BinaryReader<SpoolError>(bytes, context: "task token")
        do throws(SpoolError) {
            guard try r.byte() == Self.version else { throw r.corrupt("unknown version") }
            kind = try r.enumeration(Kind.self)
            namespace = try r.string()
            execution = WorkflowExecution(workflowID: try r.string(), runID: try r.string())
            scheduledEventID = try r.signed()
            startedEventID = try r.signed()
            attempt = try r.int32()
            queryID = try kind == .query ? r.unsigned() : 0
            guard r.isAtEnd else { throw r.corrupt("trailing bytes") }
        } catch {
            throw SpoolError(.invalidTaskToken, "the bytes are not a Spool task token: \(error.message)")
        }
    }

    public var description: String {
        kind == .query ? "query task \(queryID) \(namespace)/\(execution)"
            : "\(kind) task \(namespace)/\(execution) scheduled \(scheduledEventID) started \(startedEventID) attempt \(attempt)"
    }
}
