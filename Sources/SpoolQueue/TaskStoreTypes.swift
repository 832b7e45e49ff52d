import SpoolMatching

/// How a task is queued: its priority, fairness key and schedule-to-start deadline.
public struct TaskOptions: Sendable, Hashable {
    /// 1 (highest) … 5 (lowest); default 3. See `TaskPriority`.
    public var priority: Int
    /// Tasks of one priority that carry keys are dispatched in proportion to their keys' weights.
    public var fairness: FairnessKey?
    /// After this instant (on the store's clock) the task is no longer worth starting: it is
    /// dropped at hand-over, acknowledged, and reported to ``TaskStore/expiredCount``.
    public var scheduleToStartDeadline: MatchingInstant?

    /// Options with the given values; the defaults are priority 3, no key, no deadline.
    public init(priority: Int = TaskPriority.default, fairness: FairnessKey? = nil, scheduleToStartDeadline: MatchingInstant? = nil) {
        self.priority = priority
        self.fairness = fairness
        self.scheduleToStartDeadline = scheduleToStartDeadline
    }
}

/// A task handed to a poller. Finish it with ``TaskStore/complete(_:)`` or
/// ``TaskStore/fail(_:reason:)`` before ``TaskStoreConfiguration/visibilityTimeout``, or it is
/// delivered again.
public struct DeliveredTask: Sendable, Hashable {
    /// The id to complete or fail the task with. For a task of the queue log it is the offset
    /// of its record; a retry is a new record, so each retry has a new id.
    public var id: UInt64
    /// The id the task was first added with (equal to ``id`` on the first attempt).
    public var originalID: UInt64
    /// The queue's name.
    public var queue: String
    /// The queue's kind.
    public var kind: TaskQueueKind
    /// 1 (highest) … 5.
    public var priority: Int
    /// 1 on the first delivery, then one more per failure or visibility timeout.
    public var attempt: Int
    /// The bytes given to `add`.
    public var payload: [UInt8]
    /// The task's fairness key, if any.
    public var fairnessKey: String?
    /// When the task was added (on the store's clock).
    public var addedAt: MatchingInstant
    /// The task was added with ``TaskStore/addRecordedElsewhere(_:to:kind:options:)``: the
    /// queue log holds no record of it, so completing it writes nothing.
    public var isRecordedElsewhere: Bool
}

/// What ``TaskStore/fail(_:reason:)`` did with a task.
public enum FailureOutcome: Sendable, Hashable {
    /// The task will be delivered again, as `attempt`, with id `newID`, not before `notBefore`.
    case retrying(newID: UInt64, attempt: Int, notBefore: MatchingInstant)
    /// The task used its last attempt and is now in the queue's dead-letter queue under `newID`.
    case deadLettered(newID: UInt64)
}

/// A task in a dead-letter queue.
public struct DeadLetter: Sendable, Hashable {
    /// Its id in the dead-letter queue (the offset of its dead-letter record).
    public var id: UInt64
    /// The id it was first added with.
    public var originalID: UInt64
    /// Attempts it was delivered.
    public var attempts: Int
    /// The reason given by the last failure (or "visibility timeout").
    public var reason: String
    /// The task's bytes.
    public var payload: [UInt8]
    /// 1 … 5.
    public var priority: Int
}

/// A task still queued, as shown by ``TaskStore/peek(_:kind:limit:)`` (it stays queued).
public struct PeekedTask: Sendable, Hashable {
    /// The task's id.
    public var id: UInt64
    /// 1 … 5.
    public var priority: Int
    /// The attempt it will be delivered as.
    public var attempt: Int
    /// The task's bytes.
    public var payload: [UInt8]
    /// Its fairness key, if any.
    public var fairnessKey: String?
    /// When it was added.
    public var addedAt: MatchingInstant
    /// Waiting out a retry backoff until this instant, if it is.
    public var notBefore: MatchingInstant?
}

/// One line of ``TaskStore/listQueues()``.
public struct QueueSummary: Sendable, Hashable {
    /// The queue's name.
    public var name: String
    /// Workflow or activity.
    public var kind: TaskQueueKind
    /// Tasks queued (in memory, on disk, and waiting out a retry backoff).
    public var backlogCount: Int
    /// Tasks delivered and not yet completed.
    public var inFlightCount: Int
    /// Tasks in the dead-letter queue.
    public var deadLetterCount: Int
    /// Whether pollers are held back.
    public var isPaused: Bool
}

/// A snapshot of one queue (figures are read without stopping it).
public struct QueueDescription: Sendable {
    /// The queue's name.
    public var name: String
    /// Workflow or activity.
    public var kind: TaskQueueKind
    /// Whether pollers are held back (paused, or a rate limit of 0).
    public var isPaused: Bool
    /// The queue-wide rate limit, if any.
    public var rateLimit: RateLimit?
    /// Per priority 1…5: tasks queued and the age of the oldest.
    public var backlog: [QueueBacklogLevel]
    /// Tasks queued, all priorities.
    public var backlogCount: Int { backlog.reduce(0) { $0 + $1.count } }
    /// Of the backlog, tasks whose payload is in memory (the rest are read back from the log).
    public var inMemoryCount: Int
    /// Tasks waiting out a retry backoff (counted in ``backlog`` too).
    public var delayedCount: Int
    /// Tasks delivered and not yet completed.
    public var inFlightCount: Int
    /// Tasks in the dead-letter queue.
    public var deadLetterCount: Int
    /// Tasks added since the store was opened (restored tasks are not counted).
    public var addedCount: Int
    /// Tasks delivered since the store was opened.
    public var dispatchedCount: Int
    /// Tasks added per second over the last sampling interval (≥ 1 s between two calls of
    /// `describe`), or since the store was opened on the first call.
    public var addRate: Double
    /// Tasks delivered per second, measured like ``addRate``.
    public var dispatchRate: Double
    /// Tasks dropped because their schedule-to-start deadline passed.
    public var expiredCount: Int
    /// Pollers waiting now.
    public var waitingPollers: Int
    /// Pollers seen through a `TaskPoller` handle: identity, last poll, own rate limit.
    public var pollers: [PollerDescription]
}

/// The backlog of one priority of a queue.
public struct QueueBacklogLevel: Sendable, Hashable {
    /// 1 (highest) … 5.
    public var priority: Int
    /// Tasks of this priority queued (in memory, on disk, or waiting out a backoff).
    public var count: Int
    /// How long the oldest of them has waited since it was first added, if any.
    public var oldestAge: Duration?
}
