import Synchronization

/// The backlog of one priority.
public struct PriorityBacklog: Sendable, Hashable {
    /// 1 (highest) … 5.
    public var priority: Int
    /// Queued tasks of this priority.
    public var count: Int
    /// How long the oldest of them has waited, if any.
    public var oldestAge: Duration?
    /// The tasks of this priority that have a fairness key, per key, most tasks first (filled by
    /// ``TaskQueue/describe(fairnessKeys:)`` when asked; tasks without a key are not in it).
    public var fairnessKeys: [FairnessKeyBacklog] = []
}

/// The tasks of one fairness key waiting in one priority.
public struct FairnessKeyBacklog: Sendable, Hashable {
    /// The fairness key.
    public var key: String
    /// Its tasks waiting.
    public var count: Int
    /// How long the oldest of them has waited.
    public var oldestAge: Duration?
}

/// A worker seen polling a queue.
public struct PollerDescription: Sendable, Hashable {
    /// The identity it gave.
    public var identity: String
    /// When it last polled.
    public var lastPoll: MatchingInstant
    /// Its own rate limit, if any.
    public var maxTasksPerSecond: Double?
    /// Tasks handed to it.
    public var dispatched: Int
}

/// A snapshot of a queue (each figure is read without stopping the queue, so under load they
/// may be a few operations apart).
public struct TaskQueueDescription: Sendable {
    /// The queue's name.
    public var name: String
    /// Workflow or activity.
    public var kind: TaskQueueKind
    /// Partitions, and how many have been used.
    public var partitions: Int
    /// Whether pollers are held back (paused or rate 0).
    public var isPaused: Bool
    /// The queue's rate limit.
    public var rateLimit: RateLimit?
    /// The rate limit of each fairness key (scaled by the key's weight), if set.
    public var fairnessKeyRateLimit: RateLimit?
    /// Per priority (1…5), the backlog and the age of its oldest task.
    public var backlog: [PriorityBacklog]
    /// Tasks queued, all priorities.
    public var backlogCount: Int { backlog.reduce(0) { $0 + $1.count } }
    /// Tasks added since the queue was created.
    public var added: Int
    /// Tasks handed to pollers since the queue was created.
    public var dispatched: Int
    /// Tasks dropped because their schedule-to-start deadline passed.
    public var expired: Int
    /// Pollers waiting now.
    public var waitingPollers: Int
    /// Pollers that polled through a ``TaskPoller`` handle within ``TaskPoller/historyTTL``, by identity.
    public var pollers: [PollerDescription]
}

extension TaskQueue {
    /// A snapshot of the queue's backlog, counters and pollers; with `fairnessKeys`, also the
    /// backlog of each priority per fairness key (a walk over the keys that have tasks, under each
    /// lane's lock).
    public func describe(fairnessKeys: Bool = false) -> TaskQueueDescription {
        let now = context.clock.now()
        var backlog: [PriorityBacklog] = TaskPriority.all.map { PriorityBacklog(priority: $0, count: 0, oldestAge: nil) }
        var added = 0
        var dispatched = 0
        var expired = 0
        var waiting = 0
        var oldest: [UInt64?] = Array(repeating: nil, count: 5)
        var keys: [[String: (count: Int, oldest: UInt64?)]] = Array(repeating: [:], count: 5)
        if let table = table.load() {
            for partition in table.partitions {
                // Every task enters a lane once per add or recirculation, and leaves it once per
                // delivery, expiry, drain or recirculation.
                let recirculated = partition.recirculated.pointee.load(ordering: .relaxed)
                let partitionExpired = partition.expired.pointee.load(ordering: .relaxed)
                expired += partitionExpired
                added -= recirculated
                dispatched -= recirculated + partitionExpired + partition.drained.pointee.load(ordering: .relaxed)
                waiting += partition.waiters.load()?.live.load(ordering: .relaxed) ?? 0
                for priority in TaskPriority.all {
                    guard let lane = partition.lane(priority) else { continue }
                    added += lane.entered
                    dispatched += lane.left
                    backlog[priority - 1].count += lane.count
                    if let stamp = lane.oldestEnqueueTime() {
                        oldest[priority - 1] = min(oldest[priority - 1] ?? stamp, stamp)
                    }
                    if fairnessKeys {
                        for entry in lane.fairnessKeyBacklog() {
                            let previous = keys[priority - 1][entry.key]
                            let stamps = [previous?.oldest, entry.oldest].compactMap { $0 }
                            keys[priority - 1][entry.key] = ((previous?.count ?? 0) + entry.count, stamps.min())
                        }
                    }
                }
            }
        }
        for priority in TaskPriority.all {
            if let stamp = oldest[priority - 1], backlog[priority - 1].count > 0 {
                backlog[priority - 1].oldestAge = now.duration(since: MatchingInstant(nanoseconds: stamp))
            }
            backlog[priority - 1].fairnessKeys = keys[priority - 1].map { key, value in
                FairnessKeyBacklog(key: key, count: value.count,
                                   oldestAge: value.oldest.map { now.duration(since: MatchingInstant(nanoseconds: $0)) })
            }.sorted { ($0.count, $1.key) > ($1.count, $0.key) }
        }
        let pollers = (controlBlock.load()?.registeredPollers ?? []).filter { $0.isLive(at: now) }.map {
            PollerDescription(identity: $0.identity, lastPoll: $0.lastPoll, maxTasksPerSecond: $0.maxTasksPerSecond, dispatched: $0.dispatchedCount)
        }.sorted { $0.identity < $1.identity }
        return TaskQueueDescription(name: name, kind: kind, partitions: activePartitions, isPaused: isPaused, rateLimit: rateLimit,
                                    fairnessKeyRateLimit: fairnessKeyRateLimit, backlog: backlog, added: added, dispatched: dispatched, expired: expired,
                                    waitingPollers: waiting, pollers: pollers)
    }

    /// Tasks queued now, all priorities (a snapshot; cheaper than ``describe()``).
    public var backlogCount: Int {
        guard let table = table.load() else { return 0 }
        return table.partitions.reduce(0) { $0 + $1.available }
    }

    /// Heap bytes this queue holds: the queue object and whatever it has allocated so far
    /// (partitions, priority lanes and their rings, waiter queues, control block). An idle
    /// queue that never had a task or a poller holds only its own object.
    public var allocatedBytes: Int {
        var bytes = mallocSize(of: self) + heapBytes(of: name)
        if let table = table.load() {
            bytes += mallocSize(of: table) + table.count * MemoryLayout<TaskQueuePartition<Payload>>.stride + 32
            bytes += table.keyRates.allocatedBytes
            for partition in table.partitions {
                bytes += mallocSize(of: partition)
                for priority in TaskPriority.all { bytes += partition.lane(priority)?.allocatedBytes ?? 0 }
                if let waiters = partition.waiters.load() {
                    bytes += mallocSize(of: waiters) + waiters.ring.allocatedBytes
                }
            }
        }
        if let block = controlBlock.load() { bytes += mallocSize(of: block) + mallocSize(of: block.limiter) + mallocSize(of: block.gate) }
        return bytes
    }
}
