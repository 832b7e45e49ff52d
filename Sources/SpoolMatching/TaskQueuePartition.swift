import Synchronization
import SpoolPrimitives

/// One partition of a task queue: five priority lanes, a queue of waiting pollers, and the
/// count of that queue's nodes.
///
/// Tasks are not counted: a lane's ring is its own count, so an add is one contended
/// read-modify-write (the ring's tail) and a poll is one (the ring's head). Only waiting pollers
/// are counted, in `waiting` (nodes in the waiter queue, tombstones of pollers that gave up
/// included until they are popped). The two meet in a Dekker handshake on sequentially
/// consistent operations:
///
/// - a producer pushes its task (sequentially consistent tail update), then reads `waiting`;
///   if it is positive it hands the best task of the partition to the first live waiter;
/// - a poller that suspends counts itself (`waiting` + 1), pushes its node, then looks at the
///   lanes (sequentially consistent reads of their indexes); if it sees a task it takes it
///   itself.
///
/// In the total order of the four operations one side sees the other, so a task and a live
/// waiter never both stay unmatched in a partition.
@usableFromInline
final class TaskQueuePartition<Payload: Sendable> {
    /// `waiting` on its own cache line (`cells[0]`), apart from the read-mostly lane references
    /// and the slow-path counters. Producers only read it (it stays shared in both cores'
    /// caches) while no poller suspends. Adds and dispatches are not counted on the hot path:
    /// they are derived from the lanes' ring indexes (see `TaskQueue+Visibility.swift`).
    @usableFromInline let cells: UnsafeMutablePointer<Atomic<Int>>
    /// Nodes in the waiter queue (live waiters and tombstones); counted before a node is pushed,
    /// uncounted by whoever pops it.
    @inlinable var waiting: UnsafeMutablePointer<Atomic<Int>> { cells }
    /// Tasks taken out of a lane and put back into one without being delivered (given back by a
    /// poller of a paused queue, forwarded to another partition).
    @inlinable var recirculated: UnsafeMutablePointer<Atomic<Int>> { cells + 8 }
    /// Tasks removed by `drain()`.
    @inlinable var drained: UnsafeMutablePointer<Atomic<Int>> { cells + 9 }
    @inlinable var expired: UnsafeMutablePointer<Atomic<Int>> { cells + 16 }
    static var cellCount: Int { 24 }
    @usableFromInline let lane1 = LazyObject<PriorityLane<Payload>>()
    @usableFromInline let lane2 = LazyObject<PriorityLane<Payload>>()
    @usableFromInline let lane3 = LazyObject<PriorityLane<Payload>>()
    @usableFromInline let lane4 = LazyObject<PriorityLane<Payload>>()
    @usableFromInline let lane5 = LazyObject<PriorityLane<Payload>>()
    @usableFromInline let waiters = LazyObject<WaiterQueue<Payload>>()
    @usableFromInline let index: Int
    /// The queue's per-fairness-key rate limit, given to each lane.
    @usableFromInline let keyRates: KeyRateLimits

    @usableFromInline init(index: Int, keyRates: KeyRateLimits) {
        self.index = index
        self.keyRates = keyRates
        cells = allocateCacheAlignedCells(count: Self.cellCount)
    }

    deinit {
        deallocateCacheAlignedCells(cells, count: Self.cellCount)
    }

    /// The lane of `priority` (1…5), or nil if no task of that priority was ever added here.
    @inlinable @inline(__always)
    func lane(_ priority: Int) -> PriorityLane<Payload>? {
        switch priority {
        case 1: lane1.load()
        case 2: lane2.load()
        case 3: lane3.load()
        case 4: lane4.load()
        default: lane5.load()
        }
    }

    /// Pushes `task` into its priority's lane (created on first use) without retaining the lane
    /// or the partition. The task is moved through (the closure takes it out of an optional),
    /// never copied.
    ///
    /// The closure captures nothing but the task: when the lane's maker was a closure here too
    /// (capturing `keyRates`, or `self` to reach it), every add retained and released that
    /// object, two atomic operations on a reference count that every producer of the queue
    /// writes (`perf`: a third of an add's samples, on a line travelling between the cores).
    @inlinable @inline(__always)
    func push(_ task: consuming QueuedTask<Payload>, capacity: Int) {
        let priority = task.priority
        var moving = Optional(task)
        while true {
            let pushed: Void?
            switch priority {
            case 1: pushed = lane1.with { $0.push(moving.take().unsafelyUnwrapped) }
            case 2: pushed = lane2.with { $0.push(moving.take().unsafelyUnwrapped) }
            case 3: pushed = lane3.with { $0.push(moving.take().unsafelyUnwrapped) }
            case 4: pushed = lane4.with { $0.push(moving.take().unsafelyUnwrapped) }
            default: pushed = lane5.with { $0.push(moving.take().unsafelyUnwrapped) }
            }
            if pushed != nil { return }
            createLane(priority, capacity: capacity)
        }
    }

    /// Installs the lane of `priority` if it is not there yet (the first task of that priority
    /// in this partition; a concurrent creator may win, see ``LazyObject``).
    @usableFromInline @inline(never)
    func createLane(_ priority: Int, capacity: Int) {
        let make = { PriorityLane<Payload>(capacity: capacity, keyRates: self.keyRates) }
        switch priority {
        case 1: _ = lane1.loadOrCreate(make)
        case 2: _ = lane2.loadOrCreate(make)
        case 3: _ = lane3.loadOrCreate(make)
        case 4: _ = lane4.loadOrCreate(make)
        default: _ = lane5.loadOrCreate(make)
        }
    }

    /// Takes the best task: the highest priority first, FIFO within it (stride order among
    /// fairness keys); nil if the partition has none. A task whose producer has reserved its
    /// ring slot but not yet published it is waited for (a few instructions), so nil means
    /// the lanes were empty at some point during the call.
    @inlinable
    func take() -> QueuedTask<Payload>? {
        var spins = 0
        while true {
            if let task = lane1.with({ $0.pop() }) ?? nil { return task }
            if let task = lane2.with({ $0.pop() }) ?? nil { return task }
            if let task = lane3.with({ $0.pop() }) ?? nil { return task }
            if let task = lane4.with({ $0.pop() }) ?? nil { return task }
            if let task = lane5.with({ $0.pop() }) ?? nil { return task }
            guard hasPending else { return nil }
            // A task is being published by its producer, or another poller took ours between
            // the pop and this check: look again.
            backOff(&spins)
        }
    }

    /// Takes the best task ignoring the per-key rate limit (for `drain()`); nil if the partition has none.
    func takeIgnoringKeyRates() -> QueuedTask<Payload>? {
        for priority in TaskPriority.all {
            guard let lane = lane(priority) else { continue }
            if let task = lane.pop() ?? lane.popLocked(ignoringKeyRates: true) { return task }
        }
        return hasPending ? take() : nil
    }

    /// The earliest instant (nanoseconds) a lane's keyed tasks held back by the per-key rate
    /// become due, nil if none is held back.
    func keyedDue() -> UInt64? {
        var due: UInt64?
        for priority in TaskPriority.all {
            guard let lane = lane(priority), lane.keyed.load(ordering: .relaxed) > 0 else { continue }
            let until = lane.throttledUntil.load(ordering: .acquiring)
            if until > 0 { due = min(due ?? until, until) }
        }
        return due
    }

    /// Whether any lane holds a task or one being published (sequentially consistent reads).
    @inlinable
    var hasPending: Bool {
        (lane1.with { $0.hasPending } ?? false) || (lane2.with { $0.hasPending } ?? false)
            || (lane3.with { $0.hasPending } ?? false) || (lane4.with { $0.hasPending } ?? false)
            || (lane5.with { $0.hasPending } ?? false)
    }

    /// The highest priority (lowest number) with a task in this partition, nil if none (a snapshot).
    @inlinable
    var bestPendingPriority: Int? {
        if lane1.with({ $0.hasPending }) ?? false { return 1 }
        if lane2.with({ $0.hasPending }) ?? false { return 2 }
        if lane3.with({ $0.hasPending }) ?? false { return 3 }
        if lane4.with({ $0.hasPending }) ?? false { return 4 }
        if lane5.with({ $0.hasPending }) ?? false { return 5 }
        return nil
    }

    /// Whether pollers (or tombstones) are counted here: the producer's half of the handshake,
    /// read after its task is pushed (see the type's comment). While no poller waits it is the
    /// only extra cost of an add: a load of a line that stays shared in both cores' caches.
    @inlinable @inline(__always)
    var hasWaiters: Bool { waiting.pointee.load(ordering: .sequentiallyConsistent) > 0 }

    /// Uncounts and pops one node of the waiter queue, nil if none is counted.
    @inlinable
    func popWaiter() -> PollWaiter<Payload>? {
        var count = waiting.pointee.load(ordering: .relaxed)
        while true {
            if count <= 0 { return nil }
            let (exchanged, original) = waiting.pointee.weakCompareExchange(
                expected: count, desired: count &- 1, successOrdering: .sequentiallyConsistent, failureOrdering: .relaxed)
            if exchanged { break }
            count = original
        }
        // Counted before it was pushed: it is (about to be) in the queue.
        return waiters.with { $0.popCounted() }.unsafelyUnwrapped
    }

    /// Tasks queued in the lanes (a snapshot).
    var available: Int {
        var total = 0
        for priority in TaskPriority.all { total += lane(priority)?.count ?? 0 }
        return total
    }
}

// Every field is an atomic or a lazily installed, never replaced, Sendable object.
extension TaskQueuePartition: @unchecked Sendable {}

/// The partitions of a queue, created together on the queue's first add or poll.
@usableFromInline
final class PartitionTable<Payload: Sendable> {
    @usableFromInline let partitions: ContiguousArray<TaskQueuePartition<Payload>>
    /// `partitions[0]`, the only one by default (a stored reference: no array access on the hot path).
    @usableFromInline let first: TaskQueuePartition<Payload>
    /// `first` without reference counting (kept alive by `first`), for the hot path.
    @usableFromInline let firstUnmanaged: Unmanaged<TaskQueuePartition<Payload>>
    @usableFromInline let cursor = Atomic<Int>(0)

    /// The queue's per-fairness-key rate limit, shared by every partition's lanes.
    @usableFromInline let keyRates: KeyRateLimits

    @usableFromInline init(count: Int, context: DispatcherContext) {
        let keyRates = KeyRateLimits(context: context)
        self.keyRates = keyRates
        partitions = ContiguousArray((0..<count).map { TaskQueuePartition(index: $0, keyRates: keyRates) })
        first = partitions[0]
        firstUnmanaged = Unmanaged.passUnretained(first)
    }

    /// Runs `body` on the partition a single-partition queue uses, or on `choose(self)`.
    @inlinable @inline(__always)
    func withPartition<R>(choose: (PartitionTable<Payload>) -> TaskQueuePartition<Payload>,
                          _ body: (TaskQueuePartition<Payload>) -> R) -> R {
        if partitions.count == 1 { return firstUnmanaged._withUnsafeGuaranteedRef(body) }
        return body(choose(self))
    }

    @inlinable var count: Int { partitions.count }
}

extension PartitionTable: @unchecked Sendable {}
