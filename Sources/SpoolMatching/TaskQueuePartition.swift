import Synchronization

/// One partition of a task queue: a semaphore-style *balance* over five priority lanes and a
/// queue of waiting pollers.
///
/// `balance` = tasks available − pollers waiting (tombstones of pollers that gave up count as
/// waiting until they are popped). Its invariants:
///
/// - A producer pushes its task into a lane *before* incrementing the balance, so a poller
///   whose decrement saw a positive balance always finds a task in the lanes (or one that is
///   a few instructions from being published).
/// - A poller counts itself (decrement) *before* pushing its node, so a producer whose
///   increment saw a negative balance always finds a node in the waiter queue (idem).
/// - Each increment that saw a negative balance pops exactly one node; each decrement that saw
///   a positive balance takes exactly one task. So no task sits in a lane while a live poller
///   waits in the same partition, and no poller waits while a task is unclaimed.
@usableFromInline
final class TaskQueuePartition<Payload: Sendable> {
    /// The balance on its own cache line (`cells[0]`), apart from the read-mostly lane
    /// references and the slow-path counters: it is the one word every producer and poller of
    /// the partition writes. Adds and dispatches are not counted on the hot path: they are
    /// derived from the lanes' ring indexes (see `TaskQueue+Visibility.swift`).
    @usableFromInline let cells: UnsafeMutablePointer<Atomic<Int>>
    @inlinable var balance: UnsafeMutablePointer<Atomic<Int>> { cells }
    /// Tasks taken out of a lane and put back into one without being delivered (given back by a
    /// poller of a paused queue, forwarded to another partition, returned after a steal).
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

    @usableFromInline init(index: Int) {
        self.index = index
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

    @inlinable @inline(__always)
    func laneOrCreate(_ priority: Int, capacity: Int) -> PriorityLane<Payload> {
        let make = { PriorityLane<Payload>(capacity: capacity) }
        switch priority {
        case 1: return lane1.loadOrCreate(make)
        case 2: return lane2.loadOrCreate(make)
        case 3: return lane3.loadOrCreate(make)
        case 4: return lane4.loadOrCreate(make)
        default: return lane5.loadOrCreate(make)
        }
    }

    /// Pushes `task` into its priority's lane (created on first use) without retaining the lane.
    /// The task is moved through (the closures take it out of an optional), never copied.
    @inlinable @inline(__always)
    func push(_ task: consuming QueuedTask<Payload>, capacity: Int) {
        let make = { PriorityLane<Payload>(capacity: capacity) }
        let priority = task.priority
        var moving = Optional(task)
        switch priority {
        case 1: lane1.withCreated(make) { $0.push(moving.take().unsafelyUnwrapped) }
        case 2: lane2.withCreated(make) { $0.push(moving.take().unsafelyUnwrapped) }
        case 3: lane3.withCreated(make) { $0.push(moving.take().unsafelyUnwrapped) }
        case 4: lane4.withCreated(make) { $0.push(moving.take().unsafelyUnwrapped) }
        default: lane5.withCreated(make) { $0.push(moving.take().unsafelyUnwrapped) }
        }
    }

    /// Claims one available task (balance > 0 → balance − 1) without suspending.
    @inlinable @inline(__always)
    func tryClaim() -> Bool {
        var current = balance.pointee.load(ordering: .relaxed)
        while current > 0 {
            let (exchanged, original) = balance.pointee.weakCompareExchange(
                expected: current, desired: current &- 1, successOrdering: .sequentiallyConsistent, failureOrdering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Takes the task a successful claim entitles the caller to: the highest priority first,
    /// FIFO within it (stride order among fairness keys).
    @inlinable
    func takeClaimed() -> QueuedTask<Payload> {
        var spins = 0
        while true {
            if let task = lane1.with({ $0.pop() }) ?? nil { return task }
            if let task = lane2.with({ $0.pop() }) ?? nil { return task }
            if let task = lane3.with({ $0.pop() }) ?? nil { return task }
            if let task = lane4.with({ $0.pop() }) ?? nil { return task }
            if let task = lane5.with({ $0.pop() }) ?? nil { return task }
            // The task this claim counts is being published by its producer.
            backOff(&spins)
        }
    }

    /// Counts one more available task (already pushed into a lane) and, when pollers wait,
    /// hands the best task to the first live one. Returns true if a poller got a task.
    @inlinable
    func release() -> Bool {
        while true {
            let before = balance.pointee.wrappingAdd(1, ordering: .sequentiallyConsistent).oldValue
            if before >= 0 { return false }
            // A poller is counted; its node is (about to be) in the waiter queue.
            let waiter = waiters.with { $0.popCounted() }.unsafelyUnwrapped
            if waiter.tryMatch() {
                _ = waiters.with { $0.live.subtract(1, ordering: .relaxed) }
                waiter.resume(takeClaimed())
                return true
            }
            // A tombstone: the poller gave up. Its count is now consumed and our task is
            // uncounted again; count it once more.
        }
    }

    /// Tasks available and not yet claimed (a snapshot).
    var available: Int { max(0, balance.pointee.load(ordering: .relaxed)) }
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

    @usableFromInline init(count: Int) {
        partitions = ContiguousArray((0..<count).map { TaskQueuePartition(index: $0) })
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
