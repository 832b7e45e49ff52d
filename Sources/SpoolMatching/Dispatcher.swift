import SpoolPrimitives
/// The matching core: task queues by name, created on first use, each name with a workflow
/// queue and an activity queue.
///
/// Generic over the task payload the engine attaches (a log position, an event reference, a
/// small struct); the dispatcher never looks inside it.
///
/// The name → queue registry is sharded, each shard behind its own lock. That lock is taken
/// once per lookup by name; callers on a hot path keep the ``TaskQueue`` and use it directly,
/// which takes no lock.
public final class Dispatcher<Payload: Sendable>: Sendable {
    @usableFromInline let context: DispatcherContext
    @usableFromInline let shards: [RegistryShard<Payload>]

    /// Creates a dispatcher; `clock` stamps tasks and times deadlines and rate limits.
    /// - Throws: ``MatchingError/Code/invalidConfiguration`` naming the bad setting.
    public init(configuration: DispatcherConfiguration = DispatcherConfiguration(), clock: MatchingClock = .system) throws(MatchingError) {
        try configuration.validate()
        context = DispatcherContext(configuration: configuration, clock: clock)
        shards = (0..<configuration.registryShards).map { _ in RegistryShard() }
    }

    /// The clock this dispatcher uses.
    public var clock: MatchingClock { context.clock }

    /// The queue of `kind` named `name`, creating both queues of the name on first use.
    /// Cost: one hash and one shard lock.
    /// - Throws: ``MatchingError/Code/invalidQueueName`` for a name ``TaskQueueName/validate(_:)``
    ///   refuses (empty, oversized, a control character).
    ///
    /// Inlinable, like the registry's lookup behind it, so that the caller's module specializes
    /// it for its payload: unspecialized, the generic dictionary lookup and metadata accessors
    /// made a lookup about 2,900 instructions.
    @inlinable
    public func queue(_ name: String, kind: TaskQueueKind) throws(MatchingError) -> TaskQueue<Payload> {
        try TaskQueueName.validate(name)
        let pair = shard(for: name).pair(name, context: context)
        return kind == .workflow ? pair.workflow : pair.activity
    }

    /// ``queue(_:kind:)`` for a name read back from a store, checked only as names were before
    /// control characters were refused (``TaskQueueName/validateRecorded(_:)``), so that
    /// existing data stays reachable.
    @inlinable
    package func queue(recorded name: String, kind: TaskQueueKind) throws(MatchingError) -> TaskQueue<Payload> {
        let queues = try self.queues(recorded: name)
        return kind == .workflow ? queues.workflow : queues.activity
    }

    /// Both queues of a recorded name (see ``queue(recorded:kind:)``), with one lookup.
    @inlinable
    package func queues(recorded name: String) throws(MatchingError) -> (workflow: TaskQueue<Payload>, activity: TaskQueue<Payload>) {
        try TaskQueueName.validateRecorded(name)
        let pair = shard(for: name).pair(name, context: context)
        return (pair.workflow, pair.activity)
    }

    /// The queue if its name was ever used, without creating it.
    public func existingQueue(_ name: String, kind: TaskQueueKind) -> TaskQueue<Payload>? {
        guard let pair = shard(for: name).existing(name) else { return nil }
        return kind == .workflow ? pair.workflow : pair.activity
    }

    /// Adds `task` to the queue of `kind` named `name`; see ``TaskQueue/add(_:)``.
    public func add(_ task: QueuedTask<Payload>, to name: String, kind: TaskQueueKind) throws(MatchingError) {
        try queue(name, kind: kind).add(task)
    }

    /// Polls the queue of `kind` named `name`; see ``TaskQueue/poll(timeout:poller:)``.
    public func poll(_ name: String, kind: TaskQueueKind, timeout: Duration? = nil) async throws(MatchingError) -> QueuedTask<Payload>? {
        let queue = try queue(name, kind: kind)
        return await queue.poll(timeout: timeout)
    }

    /// Names in use.
    public var queueNameCount: Int { shards.reduce(0) { $0 + $1.count } }

    /// Every queue (both kinds of every name), sorted by name then kind.
    public func listQueues() -> [TaskQueueSummary] {
        var list: [TaskQueueSummary] = []
        for shard in shards {
            for pair in shard.allPairs() {
                for queue in [pair.workflow, pair.activity] {
                    list.append(TaskQueueSummary(name: queue.name, kind: queue.kind, backlogCount: queue.backlogCount, isPaused: queue.isPaused))
                }
            }
        }
        return list.sorted { ($0.name, $0.kind.rawValue) < ($1.name, $1.kind.rawValue) }
    }

    @inlinable
    func shard(for name: String) -> RegistryShard<Payload> {
        var hasher = Hasher()
        hasher.combine(name)
        return shards[hasher.finalize() & (shards.count - 1)]
    }
}

/// One line of ``Dispatcher/listQueues()``.
public struct TaskQueueSummary: Sendable, Hashable {
    /// The queue's name.
    public var name: String
    /// Workflow or activity.
    public var kind: TaskQueueKind
    /// Tasks queued now.
    public var backlogCount: Int
    /// Whether pollers are held back.
    public var isPaused: Bool
}

/// The two queues of a name.
@usableFromInline final class TaskQueuePair<Payload: Sendable>: Sendable {
    @usableFromInline let workflow: TaskQueue<Payload>
    @usableFromInline let activity: TaskQueue<Payload>

    init(name: String, context: DispatcherContext) {
        workflow = TaskQueue(name: name, kind: .workflow, context: context)
        activity = TaskQueue(name: name, kind: .activity, context: context)
    }
}

/// A slice of the name registry behind its own lock (lookups by name are not on the add/poll
/// hot path: callers keep the queue).
@usableFromInline final class RegistryShard<Payload: Sendable> {
    // `pairs` is guarded by `lock`.
    @usableFromInline let lock = ThreadLock()
    @usableFromInline var pairs: [String: TaskQueuePair<Payload>] = [:]

    @usableFromInline init() {}

    /// The pair of `name`, created on first use.
    @inlinable
    func pair(_ name: String, context: DispatcherContext) -> TaskQueuePair<Payload> {
        if let pair = lock.withLock({ pairs[name] }) { return pair }
        return createPair(name, context: context)
    }

    @usableFromInline
    func createPair(_ name: String, context: DispatcherContext) -> TaskQueuePair<Payload> {
        lock.withLock {
            if let pair = pairs[name] { return pair }
            let pair = TaskQueuePair<Payload>(name: name, context: context)
            pairs[name] = pair
            return pair
        }
    }

    func existing(_ name: String) -> TaskQueuePair<Payload>? { lock.withLock { pairs[name] } }
    var count: Int { lock.withLock { pairs.count } }
    func allPairs() -> [TaskQueuePair<Payload>] { lock.withLock { Array(pairs.values) } }
}

// `pairs` is only touched under the shard's lock; the pairs themselves are Sendable.
extension RegistryShard: @unchecked Sendable {}
