import Synchronization

/// One task queue: the workflow or the activity queue of a name. Producers ``add(_:)`` tasks;
/// workers ``poll(timeout:poller:)`` for them. A task that finds a waiting poller is handed
/// over at once (sync match); otherwise it waits in the queue's in-memory backlog, which is
/// drained highest priority first, first-in first-out within a priority, in proportion to
/// weights among fairness keys.
///
/// The add → poll → hand-off path takes no lock (see `Docs/matching.md`): bounded lock-free
/// rings per priority, and a count of waiting pollers per partition that producers only read
/// while no poller waits. Locks are taken only by tasks
/// with fairness keys, by rings that overflow, and by control operations.
///
/// Get queues from ``Dispatcher/queue(_:kind:)``; a queue is never removed.
public final class TaskQueue<Payload: Sendable>: Sendable {
    /// The queue's name.
    public let name: String
    /// Workflow or activity.
    public let kind: TaskQueueKind
    @usableFromInline let context: DispatcherContext
    /// Bits: paused, rate 0, rate limited. Zero on the fast path.
    @usableFromInline let control = Atomic<Int>(0)
    @usableFromInline let table = LazyObject<PartitionTable<Payload>>()
    @usableFromInline let controlBlock = LazyObject<QueueControlBlock>()
    /// Partitions this queue is created with when set (above 0) before its first add or poll;
    /// 0: the dispatcher's ``DispatcherConfiguration/partitions``.
    @usableFromInline let partitionOverride = Atomic<Int>(0)

    @usableFromInline static var pausedBit: Int { 1 }
    @usableFromInline static var rateZeroBit: Int { 2 }
    @usableFromInline static var rateLimitedBit: Int { 4 }
    /// A per-fairness-key rate limit is set: pollers take the slow path, which wakes when a
    /// throttled key's next token is due.
    @usableFromInline static var keyRateBit: Int { 8 }
    /// Pollers do not get tasks while any of these is set.
    @usableFromInline static var closedBits: Int { 3 }

    init(name: String, kind: TaskQueueKind, context: DispatcherContext) {
        self.name = name
        self.kind = kind
        self.context = context
    }

    @inlinable @inline(__always)
    func partitions() -> PartitionTable<Payload> {
        table.loadOrCreate { PartitionTable(count: partitionCount, context: context) }
    }

    /// The partitions a new table of this queue gets.
    @inlinable
    var partitionCount: Int {
        let override = partitionOverride.load(ordering: .relaxed)
        return override > 0 ? override : context.partitions
    }

    /// The partitions the queue has now (its table's), or would be created with.
    public var activePartitions: Int { table.load()?.count ?? partitionCount }

    /// Sets how many partitions (1…64) the queue is split into; nil: the dispatcher's setting.
    /// Applies only while the queue has not been used (no add or poll yet), because a queue's
    /// partitions are never replaced; returns whether it applied.
    /// - Throws: ``MatchingError/Code/invalidConfiguration`` for a count outside 1…64.
    @discardableResult
    public func setPartitions(_ count: Int?) throws(MatchingError) -> Bool {
        if let count, !(1...64).contains(count) {
            throw MatchingError(.invalidConfiguration, "partitions must be between 1 and 64 (got \(count))", queue: name)
        }
        partitionOverride.store(count ?? 0, ordering: .relaxed)
        return table.load() == nil
    }

    @usableFromInline
    func controlBlockOrCreate() -> QueueControlBlock {
        controlBlock.loadOrCreate { QueueControlBlock() }
    }

    // MARK: Adding

    /// Adds a task: hands it to a waiting poller if there is one, otherwise queues it.
    ///
    /// Lock-free unless the task has a fairness key or its priority's ring is full.
    /// - Throws: ``MatchingError/Code/invalidPriority`` for a priority outside 1…5;
    ///   ``MatchingError/Code/invalidFairnessKey`` for an empty or oversized key or a zero weight.
    ///   Nothing is queued when it throws.
    @inlinable
    public func add(_ task: consuming QueuedTask<Payload>) throws(MatchingError) {
        try add(task, enqueuedAt: context.now())
    }

    /// ``add(_:)`` with the instant the task counts as queued since, for a caller that queues
    /// a task again (a backlog rebuilt after a restart): ``describe()`` reports the age of the
    /// oldest task from it. Order in the queue is still the order of adds.
    /// - Throws: as ``add(_:)``.
    @inlinable
    public func add(_ task: consuming QueuedTask<Payload>, enqueuedAt: MatchingInstant) throws(MatchingError) {
        guard task.priority >= TaskPriority.highest && task.priority <= TaskPriority.lowest else {
            throw invalidPriority(task)
        }
        if task.fairnessBox != nil { try validate(task) }
        task.enqueuedAt = enqueuedAt
        let id = task.id
        // Moved, never copied, down to its ring slot (see `PriorityLane.push`).
        var moving = Optional(task)
        let count = partitionCount
        table.withCreated({ PartitionTable(count: count, context: context) }) { table in
            table.withPartition(choose: { partitionForAdd($0, id: id) }) { home in
                offer(moving.take().unsafelyUnwrapped, to: home, in: table)
            }
        }
    }

    /// Puts a task in `partition`'s lane and counts it, forwarding to a partition with waiting
    /// pollers if this one has none.
    @inlinable
    func offer(_ task: consuming QueuedTask<Payload>, to partition: TaskQueuePartition<Payload>, in table: PartitionTable<Payload>) {
        partition.push(task, capacity: context.ringCapacity)
        if partition.hasWaiters && handOff(in: partition, table: table) { return }
        if table.count > 1 { forward(from: partition, in: table) }
    }

    @usableFromInline
    func invalidPriority(_ task: QueuedTask<Payload>) -> MatchingError {
        MatchingError(.invalidPriority, "priority \(task.priority) is outside 1 (highest) … 5 (lowest)", queue: name, taskID: task.id)
    }

    @usableFromInline
    func validate(_ task: borrowing QueuedTask<Payload>) throws(MatchingError) {
        guard let key = task.fairness else { return }
        let length = key.key.utf8.count
        guard length > 0, length <= FairnessKey.maximumUTF8Length else {
            throw MatchingError(.invalidFairnessKey, "a fairness key must be 1…\(FairnessKey.maximumUTF8Length) UTF-8 bytes (got \(length))",
                                queue: name, taskID: task.id)
        }
        guard key.weightThousandths >= 1 else {
            throw MatchingError(.invalidFairnessKey, "fairness key '\(key.key)' has weight 0; weights start at 1", queue: name, taskID: task.id)
        }
    }

    /// With several partitions, a producer prefers one where pollers wait; else the task's own.
    @usableFromInline
    func partitionForAdd(_ table: PartitionTable<Payload>, id: UInt64) -> TaskQueuePartition<Payload> {
        let count = table.count
        let start = Int(id % UInt64(count))
        for step in 0..<count {
            let partition = table.partitions[(start + step) % count]
            if partition.waiting.pointee.load(ordering: .relaxed) > 0 { return partition }
        }
        return table.partitions[start]
    }

    /// A task just stayed in `partition`'s backlog: if another partition has waiting pollers,
    /// move one task there. Together with the same check by pollers after they register
    /// (`register` looks at every partition's lanes), and both sides' sequentially consistent
    /// updates (the ring's tail, the partition's waiter count), this is a
    /// Dekker handshake: a task and a poller that arrive in different partitions at the same
    /// moment cannot both miss each other.
    @usableFromInline
    func forward(from partition: TaskQueuePartition<Payload>, in table: PartitionTable<Payload>) {
        var source = partition
        var moving = true
        while moving {
            moving = false
            for target in table.partitions where target !== source && target.waiting.pointee.load(ordering: .sequentiallyConsistent) > 0 {
                guard let task = source.take() else { return }
                source.recirculated.pointee.wrappingAdd(1, ordering: .relaxed)
                target.push(task, capacity: context.ringCapacity)
                if !(target.hasWaiters && handOff(in: target, table: table)) {
                    // The waiter there was served by someone else: look again from the target.
                    source = target
                    moving = true
                }
                break
            }
        }
    }

    // MARK: Polling

    /// Waits up to `timeout` (forever if nil) for a task and returns it, or nil when the time is
    /// up or the calling task is cancelled. A task that is available is returned without suspending.
    ///
    /// Through `poller`, the worker is recorded in ``describe()`` and its own rate limit is applied.
    public func poll(timeout: Duration? = nil, poller: TaskPoller? = nil) async -> QueuedTask<Payload>? {
        let deadline = timeout.map { context.clock.now().advanced(by: $0) }
        return await poll(until: deadline, poller: poller)
    }

    /// Waits until `deadline` (forever if nil) for a task; see ``poll(timeout:poller:)``.
    ///
    /// Always inlined into the caller: called, this nonisolated async function hops to the global
    /// executor and back around every poll (two `swift_task_switch`es, measured: more than the
    /// poll itself costs); inlined, a poll that finds a task does not suspend or hop.
    @inlinable @inline(__always)
    public func poll(until deadline: MatchingInstant?, poller: TaskPoller? = nil) async -> QueuedTask<Payload>? {
        if let poller { poller.lastPollNanoseconds.store(context.now().nanoseconds, ordering: .relaxed) }
        var pending: QueuedTask<Payload>?
        if poller?.limiter == nil && control.load(ordering: .relaxed) == 0 {
            let count = partitionCount
            let task = table.withCreated({ PartitionTable(count: count, context: context) }) { table -> QueuedTask<Payload>? in
                table.withPartition(choose: { partitionForPoll($0, poller: poller) }) { home -> QueuedTask<Payload>? in
                guard let task = table.count == 1 ? home.take() : claimAny(table, home: home) else { return nil }
                if task.scheduleToStartDeadline == nil {
                    poller?.dispatched.wrappingAdd(1, ordering: .relaxed)
                    return task
                }
                pending = task
                return nil
                }
            }
            if let task { return task }
        }
        return await pollSlowly(until: deadline, poller: poller, pending: pending)
    }

    @usableFromInline
    func partitionForPoll(_ table: PartitionTable<Payload>, poller: TaskPoller?) -> TaskQueuePartition<Payload> {
        let slot = poller?.partitionHint ?? table.cursor.wrappingAdd(1, ordering: .relaxed).oldValue
        return table.partitions[abs(slot % table.count)]
    }

    /// Claims an available task: with one partition, `home`'s best; with several, the best of the
    /// partition whose best task has the highest priority (poll forwarding), so a poller never
    /// takes a lower-priority task while a higher one waits in another partition. Ties go round
    /// robin over the partitions, so that fairness keys spread over partitions keep their shares.
    @inlinable
    func claimAny(_ table: PartitionTable<Payload>, home: TaskQueuePartition<Payload>) -> QueuedTask<Payload>? {
        if table.count == 1 { return home.take() }
        let count = table.count
        let start = abs(table.cursor.wrappingAdd(1, ordering: .relaxed).oldValue % count)
        var best: TaskQueuePartition<Payload>?
        var bestPriority = Int.max
        for step in 0..<count {
            let partition = table.partitions[(start + step) % count]
            if let priority = partition.bestPendingPriority, priority < bestPriority {
                best = partition
                bestPriority = priority
                if priority == TaskPriority.highest { break }
            }
        }
        if let best, let task = best.take() { return task }
        // Another poller took it meanwhile: any task will do.
        if let task = home.take() { return task }
        for partition in table.partitions where partition !== home {
            if let task = partition.take() { return task }
        }
        return nil
    }

    /// The general poll: pause gate, worker and queue rate limits, expiry, waiting.
    /// Inlinable so that the waiting path is specialized too (pollers of a queue that runs
    /// dry take it often); the rare branches call out.
    @inlinable
    func pollSlowly(until deadline: MatchingInstant?, poller: TaskPoller?, pending first: QueuedTask<Payload>?) async -> QueuedTask<Payload>? {
        let clock = context.clock
        let table = partitions()
        let home = table.count == 1 ? table.first : partitionForPoll(table, poller: poller)
        var pending = first
        var workerToken = false
        var queueToken = false
        defer {
            if workerToken { poller?.limiter?.refund() }
            if queueToken { controlBlock.load()?.limiter.refund() }
        }
        while true {
            if let task = pending {
                pending = nil
                if let expiry = task.scheduleToStartDeadline, clock.now() >= expiry {
                    dropExpired(task, in: home)
                    continue  // the tokens held are kept for the next task
                }
                if control.load(ordering: .acquiring) & Self.closedBits != 0 {
                    home.recirculated.pointee.wrappingAdd(1, ordering: .relaxed)
                    offer(task, to: home, in: table)  // paused after we took it: give it back
                    continue
                }
                poller?.dispatched.wrappingAdd(1, ordering: .relaxed)
                workerToken = false
                queueToken = false
                return task
            }
            if Task.isCancelled { return nil }
            let bits = control.load(ordering: .acquiring)
            if bits & Self.closedBits != 0 {
                if await !waitForResume(until: deadline) { return nil }
                continue
            }
            if !workerToken, let limiter = poller?.limiter {
                guard await takeToken(limiter, deadline: deadline) else { return nil }
                workerToken = true
                continue
            }
            if !queueToken && bits & Self.rateLimitedBit != 0 {
                guard await takeToken(controlBlockOrCreate().limiter, deadline: deadline) else { return nil }
                queueToken = true
                continue
            }
            if let task = claimAny(table, home: home) {
                pending = task
                continue
            }
            if let deadline, clock.now() >= deadline { return nil }
            // Keys held back by their rate: wait no longer than until the first is due again.
            var wakeAt = deadline
            if bits & Self.keyRateBit != 0, let due = keyedDue(table) {
                let at = MatchingInstant(nanoseconds: max(due, clock.now().nanoseconds &+ 1_000_000))
                if at < (deadline ?? MatchingInstant(nanoseconds: .max)) { wakeAt = at }
            }
            guard let task = await wait(in: home, table: table, until: wakeAt) else {
                if wakeAt != deadline && !Task.isCancelled { continue }
                return nil
            }
            pending = task
        }
    }

    /// When the first keyed task held back by the per-key rate becomes due, in any partition.
    @usableFromInline
    func keyedDue(_ table: PartitionTable<Payload>) -> UInt64? {
        table.partitions.compactMap { $0.keyedDue() }.min()
    }

    /// Waits at the pause gate until the queue is resumed; false at `deadline` or on cancellation.
    @usableFromInline
    func waitForResume(until deadline: MatchingInstant?) async -> Bool {
        await controlBlockOrCreate().gate.wait(until: deadline, deadlines: context.deadlines) { [self] in
            control.load(ordering: .acquiring) & Self.closedBits == 0
        }
    }

    /// Takes a token from `limiter`, sleeping until it may be used; false if that is after
    /// `deadline` (then sleeps until the deadline) or the task is cancelled.
    @usableFromInline
    func takeToken(_ limiter: RateLimiter, deadline: MatchingInstant?) async -> Bool {
        let clock = context.clock
        let now = clock.preciseNow()
        guard let at = limiter.reserve(now: now.nanoseconds, notAfter: deadline?.nanoseconds) else {
            if let deadline { try? await clock.sleep(until: deadline) }
            return false
        }
        if at > now.nanoseconds {
            do {
                try await clock.sleep(until: MatchingInstant(nanoseconds: at))
            } catch {
                limiter.refund()
                return false
            }
        }
        return true
    }

    @usableFromInline
    func dropExpired(_ task: QueuedTask<Payload>, in partition: TaskQueuePartition<Payload>) {
        partition.expired.pointee.wrappingAdd(1, ordering: .relaxed)
        if let onExpired = context.onExpired, let deadline = task.scheduleToStartDeadline {
            onExpired(ExpiredTask(queue: name, kind: kind, id: task.id, deadline: deadline, droppedAt: context.clock.now()))
        }
    }

    /// Returns an available task without waiting, or nil if none is available now, the queue
    /// is paused, or a rate limit (the queue's or `poller`'s) has no token now.
    ///
    /// Inlinable, like ``add(_:)`` and ``poll(until:poller:)``: unspecialized, a caller in another
    /// module ran it through the generic payload's value witnesses, ~300 ns instead of ~30 ns.
    /// With no poller handle and no pause or rate limit it reads the clock only for a task that
    /// has a schedule-to-start deadline, and reaches the partition without reference counting.
    @inlinable
    public func tryPoll(poller: TaskPoller? = nil) -> QueuedTask<Payload>? {
        if poller == nil && control.load(ordering: .relaxed) == 0 {
            let count = partitionCount
            while true {
                let task = table.withCreated({ PartitionTable(count: count, context: context) }) { table -> QueuedTask<Payload>? in
                    table.withPartition(choose: { partitionForPoll($0, poller: nil) }) { home -> QueuedTask<Payload>? in
                        claimAny(table, home: home)
                    }
                }
                guard let task else { return nil }
                guard let expiry = task.scheduleToStartDeadline, context.now() >= expiry else { return task }
                dropExpired(task, in: partitions().first)
            }
        }
        return tryPollSlowly(poller: poller)
    }

    /// ``tryPoll(poller:)`` with a poller handle, a pause or a rate limit.
    @inlinable
    func tryPollSlowly(poller: TaskPoller?) -> QueuedTask<Payload>? {
        let clock = context.clock
        let table = partitions()
        let home = table.count == 1 ? table.first : partitionForPoll(table, poller: poller)
        if let poller { poller.lastPollNanoseconds.store(clock.now().nanoseconds, ordering: .relaxed) }
        var workerToken = false
        var queueToken = false
        defer {
            if workerToken { poller?.limiter?.refund() }
            if queueToken { controlBlock.load()?.limiter.refund() }
        }
        while true {
            let bits = control.load(ordering: .acquiring)
            if bits & Self.closedBits != 0 { return nil }
            let now = clock.preciseNow().nanoseconds
            if !workerToken, let limiter = poller?.limiter {
                guard limiter.tryAcquire(now: now) else { return nil }
                workerToken = true
            }
            if !queueToken && bits & Self.rateLimitedBit != 0 {
                guard controlBlockOrCreate().limiter.tryAcquire(now: now) else { return nil }
                queueToken = true
            }
            guard let task = claimAny(table, home: home) else { return nil }
            if let expiry = task.scheduleToStartDeadline, clock.now() >= expiry {
                dropExpired(task, in: home)
                continue
            }
            poller?.dispatched.wrappingAdd(1, ordering: .relaxed)
            workerToken = false
            queueToken = false
            return task
        }
    }

    /// A handle through which a worker polls this queue: it is listed by ``describe()`` with its
    /// last poll time, and `maxTasksPerSecond` (if given) caps the rate at which it gets tasks.
    /// Asking again with the same identity and rate returns the same handle.
    /// - Throws: ``MatchingError/Code/invalidPollerIdentity`` for an empty or oversized identity;
    ///   ``MatchingError/Code/invalidRateLimit`` for a rate that is not a finite number above 0.
    public func poller(identity: String, maxTasksPerSecond: Double? = nil) throws(MatchingError) -> TaskPoller {
        let length = identity.utf8.count
        guard length > 0 && length <= 256 else {
            throw MatchingError(.invalidPollerIdentity, "a poller identity must be 1…256 UTF-8 bytes (got \(length))", queue: name)
        }
        if let rate = maxTasksPerSecond, !(rate.isFinite && rate > 0) {
            throw MatchingError(.invalidRateLimit, "a poller's maxTasksPerSecond must be a finite number above 0 (got \(rate)); omit it for no limit",
                                queue: name)
        }
        let block = controlBlockOrCreate()
        // The same worker polling again keeps its handle, and with it its rate limiter's state.
        if let existing = block.registeredPoller(identity), existing.maxTasksPerSecond == maxTasksPerSecond { return existing }
        let hint = partitions().cursor.wrappingAdd(1, ordering: .relaxed).oldValue
        let poller = TaskPoller(identity: identity, maxTasksPerSecond: maxTasksPerSecond, partitionHint: hint)
        poller.lastPollNanoseconds.store(context.now().nanoseconds, ordering: .relaxed)
        block.register(poller, now: context.now())
        return poller
    }

    /// Tells the queue that the task its last poll through `poller` returned was used (the worker
    /// started it) now. The worker's rate interval restarts from this moment, so that delays
    /// between the hand-over and the start (a run's lock, a commit) cannot bring two starts
    /// closer together than the worker's rate allows. One poll at a time per handle keeps the
    /// guarantee exact; concurrent polls through one handle are limited at hand-over only.
    public func pollerUsedTask(_ poller: TaskPoller?) {
        guard let limiter = poller?.limiter else { return }
        limiter.restart(from: context.clock.preciseNow().nanoseconds)
    }

    /// Tells the queue that the task its last poll through `poller` returned could not be used
    /// (it was stale: already started, completed or timed out). The worker's rate token is given
    /// back, as a task that expired while throttled takes none.
    public func pollerDiscardedTask(_ poller: TaskPoller?) {
        poller?.limiter?.refund()
    }

    // MARK: Control

    /// Stops handing out tasks; adds still queue them. Pollers wait (up to their deadlines) until ``resume()``.
    public func pause() {
        _ = controlBlockOrCreate()
        control.bitwiseOr(Self.pausedBit, ordering: .sequentiallyConsistent)
    }

    /// Undoes ``pause()``. A rate limit of 0 keeps the queue paused until it is changed.
    public func resume() {
        let bits = control.bitwiseAnd(~Self.pausedBit, ordering: .sequentiallyConsistent).newValue
        if bits & Self.closedBits == 0 { controlBlock.load()?.gate.open() }
    }

    /// Whether pollers are held back (paused, or a rate limit of 0).
    public var isPaused: Bool { control.load(ordering: .acquiring) & Self.closedBits != 0 }

    /// Sets the queue's rate limit, shared by all its partitions and pollers; nil removes it;
    /// a rate of 0 pauses the queue until another rate is set.
    /// - Throws: ``MatchingError/Code/invalidRateLimit`` for a negative or non-finite rate or a burst below 1.
    public func setRateLimit(_ limit: RateLimit?) throws(MatchingError) {
        try limit?.validate(queue: name)
        let block = controlBlockOrCreate()
        block.setRateLimit(limit)
        let bits: Int
        switch limit {
        case nil:
            bits = control.bitwiseAnd(~(Self.rateZeroBit | Self.rateLimitedBit), ordering: .sequentiallyConsistent).newValue
        case let limit? where limit.perSecond == 0:
            bits = control.bitwiseOr(Self.rateZeroBit, ordering: .sequentiallyConsistent).newValue
        default:
            control.bitwiseOr(Self.rateLimitedBit, ordering: .sequentiallyConsistent)
            bits = control.bitwiseAnd(~Self.rateZeroBit, ordering: .sequentiallyConsistent).newValue
        }
        if bits & Self.closedBits == 0 { block.gate.open() }
    }

    /// The queue's rate limit, if one is set.
    public var rateLimit: RateLimit? { controlBlock.load()?.currentRateLimit }

    /// Sets the rate limit of each fairness key (Temporal's `fairness_keys_rate_limit_default`):
    /// a key of weight `w` is dispatched at most `perSecond × w` times per second, across the
    /// queue's partitions and priorities; a key over its rate is skipped and other keys (and
    /// unkeyed tasks, which it does not limit) still dispatch. A rate of 0 holds every keyed task
    /// back; nil removes the limit. A task whose schedule-to-start deadline has passed takes no token.
    ///
    /// Setting a rate creates the queue's partitions if it had none yet (as a first add or poll does).
    /// - Throws: ``MatchingError/Code/invalidRateLimit`` for a negative or non-finite rate or a burst below 1.
    public func setFairnessKeyRateLimit(_ limit: RateLimit?) throws(MatchingError) {
        try limit?.validate(queue: name)
        if limit == nil && table.load() == nil { return }
        let table = partitions()
        table.keyRates.set(limit)
        if limit != nil {
            control.bitwiseOr(Self.keyRateBit, ordering: .sequentiallyConsistent)
        } else {
            control.bitwiseAnd(~Self.keyRateBit, ordering: .sequentiallyConsistent)
        }
        // Keys held back may be due now: clear the marks and give waiting pollers their tasks.
        for partition in table.partitions {
            for priority in TaskPriority.all { partition.lane(priority)?.throttledUntil.store(0, ordering: .sequentiallyConsistent) }
            while partition.hasWaiters && handOff(in: partition, table: table) {}
        }
    }

    /// The per-fairness-key rate limit, if one is set.
    public var fairnessKeyRateLimit: RateLimit? { table.load()?.keyRates.currentRate }

    /// Removes and returns every queued task (highest priority first), ignoring pause and rate
    /// limits; the engine uses it to move a queue's backlog elsewhere.
    public func drain() -> [QueuedTask<Payload>] {
        guard let table = table.load() else { return [] }
        var tasks: [QueuedTask<Payload>] = []
        for partition in table.partitions {
            while let task = partition.takeIgnoringKeyRates() {
                tasks.append(task)
                partition.drained.pointee.wrappingAdd(1, ordering: .relaxed)
            }
        }
        return tasks
    }
}
