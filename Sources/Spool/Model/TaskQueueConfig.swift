import SpoolMatching

/// A rate limit set through ``SpoolEngine/updateTaskQueueConfig(_:)``, with who set it, why and
/// when (Temporal's `RateLimitConfig` and its `ConfigMetadata`).
public struct TaskQueueRateLimitConfig: Hashable, Sendable {
    /// Tasks per second across every worker; 0 pauses dispatch.
    public var requestsPerSecond: Double
    /// Why it was set, as the caller said.
    public var reason: String
    /// Who set it.
    public var updateIdentity: String
    /// When.
    public var updateTime: Timestamp

    /// A rate limit with its metadata.
    public init(requestsPerSecond: Double, reason: String = "", updateIdentity: String = "", updateTime: Timestamp) {
        self.requestsPerSecond = requestsPerSecond
        self.reason = reason
        self.updateIdentity = updateIdentity
        self.updateTime = updateTime
    }
}

/// Why, by whom and since when a task queue is paused.
public struct TaskQueuePauseConfig: Hashable, Sendable {
    /// Why it was paused.
    public var reason: String
    /// Who paused it.
    public var identity: String
    /// When.
    public var time: Timestamp

    /// A pause with its metadata.
    public init(reason: String = "", identity: String = "", time: Timestamp) {
        self.reason = reason
        self.identity = identity
        self.time = time
    }
}

/// The durable settings of one task queue (a workflow or an activity queue of a name in a
/// namespace), kept in the data directory's `task-queues` file and applied again at every open.
/// Every field unset is a queue with no settings: pollers' rates apply, the engine's default
/// partitions, not paused.
public struct TaskQueueConfig: Hashable, Sendable {
    /// The queue-wide rate limit; it takes precedence over the rate pollers send.
    public var queueRateLimit: TaskQueueRateLimitConfig?
    /// How many partitions the queue is split into (1…64); nil: the engine's
    /// ``SpoolEngineConfiguration/taskQueuePartitions``.
    public var partitions: Int?
    /// Set while the queue is paused: polls wait, adds are kept.
    public var pause: TaskQueuePauseConfig?
    /// The rate limit of each fairness key (Temporal's `fairness_keys_rate_limit_default`): a key
    /// of weight `w` gets at most `requestsPerSecond × w` tasks per second; a key over its rate is
    /// skipped while other keys and tasks without a key still dispatch; 0 holds back every task
    /// that has a fairness key.
    public var fairnessKeyRateLimit: TaskQueueRateLimitConfig?

    /// No settings.
    public init(queueRateLimit: TaskQueueRateLimitConfig? = nil, partitions: Int? = nil, pause: TaskQueuePauseConfig? = nil,
                fairnessKeyRateLimit: TaskQueueRateLimitConfig? = nil) {
        self.queueRateLimit = queueRateLimit
        self.partitions = partitions
        self.pause = pause
        self.fairnessKeyRateLimit = fairnessKeyRateLimit
    }

    /// Whether nothing is set.
    public var isEmpty: Bool { queueRateLimit == nil && partitions == nil && pause == nil && fairnessKeyRateLimit == nil }
}

/// A change to a task queue's durable settings (Temporal's `UpdateTaskQueueConfigRequest`, plus
/// the partition count). Fields left nil are not changed.
public struct UpdateTaskQueueConfigRequest: Hashable, Sendable {
    /// A change to a rate limit.
    public enum RateLimitUpdate: Hashable, Sendable {
        /// Set the rate (tasks per second, ≥ 0; 0 pauses dispatch), saying why.
        case set(requestsPerSecond: Double, reason: String)
        /// Remove it (pollers' rates apply again), saying why.
        case unset(reason: String)
    }

    /// The namespace; ``defaultNamespace`` unless set.
    public var namespace: String
    /// The task queue's name.
    public var taskQueue: String
    /// Its workflow or its activity queue.
    public var kind: TaskQueueKind
    /// Who makes the change (recorded with a rate limit).
    public var identity: String
    /// The queue-wide rate limit, or nil to leave it.
    public var queueRateLimit: RateLimitUpdate?
    /// The partition count: `.some(n)` sets it (1…64), `.some(nil)` returns to the engine's
    /// default, nil leaves it. A queue already used in this process keeps its partitions until
    /// the engine is opened again.
    public var partitions: Int??
    /// The per-fairness-key rate limit (Temporal's `update_fairness_key_rate_limit_default`), or nil to leave it.
    public var fairnessKeyRateLimit: RateLimitUpdate?

    /// A request that changes nothing yet.
    public init(namespace: String = defaultNamespace, taskQueue: String, kind: TaskQueueKind, identity: String = "",
                queueRateLimit: RateLimitUpdate? = nil, partitions: Int?? = nil, fairnessKeyRateLimit: RateLimitUpdate? = nil) {
        self.namespace = namespace
        self.taskQueue = taskQueue
        self.kind = kind
        self.identity = identity
        self.queueRateLimit = queueRateLimit
        self.partitions = partitions
        self.fairnessKeyRateLimit = fairnessKeyRateLimit
    }
}

/// A worker seen polling a task queue (Temporal's `PollerInfo`).
public struct TaskQueuePollerInfo: Hashable, Sendable {
    /// The identity it polled with.
    public var identity: String
    /// When it last polled.
    public var lastAccessTime: Timestamp
    /// Its own rate limit (`workerMaxTasksPerSecond` of its polls), if it set one.
    public var ratePerSecond: Double?
    /// Tasks handed to it since the engine opened.
    public var dispatched: Int
}

/// The backlog of one priority of a task queue.
public struct TaskQueueBacklogInfo: Hashable, Sendable {
    /// 1 (most urgent) … 5.
    public var priority: Int
    /// Tasks waiting.
    public var count: Int
    /// How long the oldest of them has waited since it was scheduled (also across a reopen), nil
    /// when there is none.
    public var oldestAge: Duration?
    /// The tasks of this priority that have a fairness key, per key, most tasks first; filled only
    /// when ``SpoolEngine/describeTaskQueue(namespace:taskQueue:kind:fairnessKeys:)`` is asked for them.
    public var fairnessKeys: [TaskQueueFairnessKeyBacklog] = []
}

/// The tasks of one fairness key waiting in one priority of a task queue.
public struct TaskQueueFairnessKeyBacklog: Hashable, Sendable {
    /// The fairness key (Temporal's `Priority.fairness_key`).
    public var key: String
    /// Its tasks waiting.
    public var count: Int
    /// How long the oldest of them has waited.
    public var oldestAge: Duration?
}

/// What ``SpoolEngine/describeTaskQueue(namespace:taskQueue:kind:fairnessKeys:)`` sees of a queue (Temporal's
/// `DescribeTaskQueueResponse`, with exact counts).
public struct TaskQueueInfo: Sendable {
    /// The namespace.
    public var namespace: String
    /// The queue's name.
    public var name: String
    /// Workflow or activity.
    public var kind: TaskQueueKind
    /// The durable settings.
    public var config: TaskQueueConfig
    /// The rate the latest poller sent (`maxTasksPerSecond` of its poll), if any and if that
    /// poller polled within the poller history TTL (5 minutes, Temporal's `pollerHistoryTTL`).
    public var pollerRateLimit: Double?
    /// The rate dispatch enforces now: the configured one, else the pollers'; nil: unlimited.
    public var effectiveRateLimit: Double?
    /// Whether pollers are held back: paused, or an effective rate of 0.
    public var isPaused: Bool
    /// The partitions the queue has in this process.
    public var partitions: Int
    /// Per priority 1…5, the tasks waiting and the age of the oldest.
    public var backlog: [TaskQueueBacklogInfo]
    /// Tasks waiting, all priorities.
    public var backlogCount: Int { backlog.reduce(0) { $0 + $1.count } }
    /// Tasks added to the queue since the engine opened (a reopen adds the rebuilt backlog again).
    public var added: Int
    /// Tasks handed to pollers since the engine opened.
    public var dispatched: Int
    /// Tasks added per second, averaged since the engine opened.
    public var addRate: Double
    /// Tasks dispatched per second, averaged since the engine opened.
    public var dispatchRate: Double
    /// Pollers waiting now.
    public var waitingPollers: Int
    /// Pollers that polled with an identity within the last 5 minutes (Temporal's poller
    /// history TTL), by identity.
    public var pollers: [TaskQueuePollerInfo]
    /// False for an engine opened read-only (such as `spool task-queue describe` on a directory):
    /// pollers are only visible in the process they poll.
    public var pollersVisible: Bool
}
