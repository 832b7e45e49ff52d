import Synchronization

/// The slow path of a poll: suspending in a partition until a producer hands over a task,
/// the deadline passes or the calling task is cancelled.
///
/// Cancellation leaves the poller's node in the waiter queue as a *tombstone* that still counts
/// in the balance (a producer may already have counted on it). Whoever pops a tombstone simply
/// counts again: a producer re-releases its task, a reaper drops it. So that an idle queue with
/// long-polling workers does not accumulate tombstones, each cancelled poller *reaps* up to two
/// nodes from the head of the queue: it takes one unit of demand off a negative balance and
/// pops a node; a tombstone is dropped, a live waiter is registered again at the tail (where it
/// may be matched at once). Two reaps per cancellation keep tombstones at most about as many
/// as live waiters.
extension TaskQueue {
    @inlinable
    func wait(in home: TaskQueuePartition<Payload>, table: PartitionTable<Payload>,
              until deadline: MatchingInstant?) async -> QueuedTask<Payload>? {
        _ = home.waiters.loadOrCreate { WaiterQueue(capacity: context.waiterRingCapacity) }
        let waiter = PollWaiter<Payload>()
        let clock = context.clock
        let timer: Task<Void, Never>? = deadline.map { deadline in
            Task { [self] in
                do { try await clock.sleep(until: deadline) } catch { return }
                cancel(waiter, in: home, table: table)
            }
        }
        let task = await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<QueuedTask<Payload>?, Never>) in
                arm(waiter, continuation, in: home, table: table)
            }
        } onCancel: {
            cancel(waiter, in: home, table: table)
        }
        timer?.cancel()
        return task
    }

    @inlinable
    func arm(_ waiter: PollWaiter<Payload>, _ continuation: UnsafeContinuation<QueuedTask<Payload>?, Never>,
             in home: TaskQueuePartition<Payload>, table: PartitionTable<Payload>) {
        waiter.continuation = continuation
        guard waiter.state.compareExchange(expected: PollWaiter<Payload>.arming, desired: PollWaiter<Payload>.waiting,
                                           ordering: .acquiringAndReleasing).exchanged else {
            continuation.resume(returning: nil)  // cancelled before it was armed
            return
        }
        home.waiters.load().unsafelyUnwrapped.live.add(1, ordering: .relaxed)
        register(waiter, in: home, table: table)
    }

    /// Counts `waiter` in `home`'s balance: takes an available task at once, or joins the waiter
    /// queue (and then looks for a task stranded in another partition).
    @inlinable
    func register(_ waiter: PollWaiter<Payload>, in home: TaskQueuePartition<Payload>, table: PartitionTable<Payload>) {
        let waiters = home.waiters.load().unsafelyUnwrapped
        let before = home.balance.pointee.wrappingSubtract(1, ordering: .sequentiallyConsistent).oldValue
        if before > 0 {
            if waiter.tryMatch() {
                waiters.live.subtract(1, ordering: .relaxed)
                waiter.resume(home.takeClaimed())
            } else if !home.release() && table.count > 1 {
                // The waiter gave up meanwhile: the claimed task is counted back.
                forward(from: home, in: table)
            }
            return
        }
        waiters.push(waiter)
        if table.count > 1 { stealForWaiter(waiter, in: home, table: table) }
    }

    /// After joining `home`'s waiters: if another partition has a task and no poller, take it.
    @usableFromInline
    func stealForWaiter(_ waiter: PollWaiter<Payload>, in home: TaskQueuePartition<Payload>, table: PartitionTable<Payload>) {
        for partition in table.partitions where partition !== home && partition.balance.pointee.load(ordering: .sequentiallyConsistent) > 0 {
            guard partition.tryClaim() else { continue }
            let task = partition.takeClaimed()
            if waiter.tryCancelWaiting() {
                // Our node is now a tombstone; we deliver the task ourselves.
                home.waiters.load().unsafelyUnwrapped.live.subtract(1, ordering: .relaxed)
                waiter.resume(task)
                reap(in: home, table: table, count: 1)
            } else {
                // A producer matched (or a deadline cancelled) the waiter first: give the task back.
                partition.recirculated.pointee.wrappingAdd(1, ordering: .relaxed)
                offer(task, to: partition, in: table)
            }
            return
        }
    }

    /// Gives up `waiter` (deadline or task cancellation). Exactly one of this and a producer's
    /// match wins; the loser does nothing to the waiter.
    @usableFromInline
    func cancel(_ waiter: PollWaiter<Payload>, in home: TaskQueuePartition<Payload>, table: PartitionTable<Payload>) {
        while true {
            switch waiter.state.load(ordering: .acquiring) {
            case PollWaiter<Payload>.arming:
                if waiter.state.compareExchange(expected: PollWaiter<Payload>.arming, desired: PollWaiter<Payload>.cancelled,
                                                ordering: .acquiringAndReleasing).exchanged { return }
            case PollWaiter<Payload>.waiting:
                if waiter.tryCancelWaiting() {
                    home.waiters.load().unsafelyUnwrapped.live.subtract(1, ordering: .relaxed)
                    waiter.resume(nil)
                    reap(in: home, table: table, count: 2)
                    return
                }
            default:
                return
            }
        }
    }

    /// Pops up to `count` nodes off the head of `home`'s waiter queue while the balance says
    /// pollers wait: tombstones are dropped, live waiters registered again.
    @usableFromInline
    func reap(in home: TaskQueuePartition<Payload>, table: PartitionTable<Payload>, count: Int) {
        guard let waiters = home.waiters.load() else { return }
        for _ in 0..<count {
            var balance = home.balance.pointee.load(ordering: .relaxed)
            while true {
                if balance >= 0 { return }
                let (exchanged, original) = home.balance.pointee.weakCompareExchange(
                    expected: balance, desired: balance + 1, successOrdering: .sequentiallyConsistent, failureOrdering: .relaxed)
                if exchanged { break }
                balance = original
            }
            let node = waiters.popCounted()
            if node.isCancelled { continue }
            register(node, in: home, table: table)
        }
    }
}
