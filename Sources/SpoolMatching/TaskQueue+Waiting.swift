import Synchronization

/// The slow path of a poll: suspending in a partition until a producer hands over a task,
/// the deadline passes or the calling task is cancelled.
///
/// Cancellation leaves the poller's node in the waiter queue as a *tombstone* that still counts
/// in the partition's `waiting` (it cannot be removed from the middle of a ring). Whoever pops a
/// tombstone drops it: a producer then pops the next node, a reaper stops there. So that an
/// idle queue with long-polling workers does not accumulate tombstones, each cancelled poller
/// *reaps* up to two nodes from the head of the queue: a tombstone is dropped, a live waiter is
/// registered again at the tail (where it may take a task at once). Two reaps per cancellation
/// keep tombstones at most about as many as live waiters.
extension TaskQueue {
    @inlinable
    func wait(in home: TaskQueuePartition<Payload>, table: PartitionTable<Payload>,
              until deadline: MatchingInstant?) async -> QueuedTask<Payload>? {
        home.waiters.withCreated({ WaiterQueue(capacity: context.waiterRingCapacity) }) { _ in }
        let waiter = PollWaiter<Payload>()
        let timer: PollDeadline? = deadline.map { deadline in
            let entry = PollDeadline(deadline: deadline) { [self] in cancel(waiter, in: home, table: table) }
            context.deadlines.add(entry)
            return entry
        }
        let task = await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<QueuedTask<Payload>?, Never>) in
                arm(waiter, continuation, in: home, table: table)
            }
        } onCancel: {
            cancel(waiter, in: home, table: table)
        }
        if let timer { context.deadlines.ended(timer) }
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
        _ = home.waiters.with { $0.live.add(1, ordering: .relaxed) }
        register(waiter, in: home, table: table)
    }

    /// After a task was pushed into `partition`'s lanes, if pollers are counted there: pops
    /// waiter nodes while some are counted; tombstones are dropped; the first live waiter gets
    /// the partition's best task or, if other pollers took every task meanwhile, is registered
    /// again (which looks at the lanes once more). Returns true if a poller got a task (not
    /// necessarily the one just pushed).
    @inlinable
    func handOff(in partition: TaskQueuePartition<Payload>, table: PartitionTable<Payload>) -> Bool {
        while let waiter = partition.popWaiter() {
            guard waiter.hold() else { continue }  // a tombstone: its count is consumed
            if let task = partition.take() {
                _ = partition.waiters.with { $0.live.subtract(1, ordering: .relaxed) }
                waiter.finish(with: task)
                return true
            }
            waiter.unhold()
            register(waiter, in: partition, table: table)
            return false
        }
        return false
    }

    /// Counts `waiter` in `home` and joins the waiter queue, then looks at the lanes (the
    /// poller's half of the handshake, see `TaskQueuePartition`): a task that is there, in
    /// `home` or in another partition, was pushed before this count and its producer may have
    /// missed the waiter, so the waiter takes it itself. Its node then stays in the queue as a
    /// tombstone, which the next producer or reaper to pop it drops.
    @inlinable
    func register(_ waiter: PollWaiter<Payload>, in home: TaskQueuePartition<Payload>, table: PartitionTable<Payload>) {
        home.waiting.pointee.wrappingAdd(1, ordering: .sequentiallyConsistent)
        _ = home.waiters.with { $0.push(waiter) }
        guard home.hasPending || (table.count > 1 && table.partitions.contains(where: { $0 !== home && $0.hasPending })) else { return }
        guard waiter.hold() else { return }  // matched or cancelled meanwhile
        if let task = claimAny(table, home: home) {
            _ = home.waiters.with { $0.live.subtract(1, ordering: .relaxed) }
            waiter.finish(with: task)
        } else {
            // Other pollers took those tasks; any task pushed from now on sees this waiter.
            waiter.unhold()
        }
    }

    /// Gives up `waiter` (deadline or task cancellation). Exactly one of this and a match wins;
    /// the loser does nothing to the waiter.
    @usableFromInline
    func cancel(_ waiter: PollWaiter<Payload>, in home: TaskQueuePartition<Payload>, table: PartitionTable<Payload>) {
        if waiter.state.compareExchange(expected: PollWaiter<Payload>.arming, desired: PollWaiter<Payload>.cancelled,
                                        ordering: .acquiringAndReleasing).exchanged { return }
        if waiter.tryCancelWaiting() {
            _ = home.waiters.with { $0.live.subtract(1, ordering: .relaxed) }
            waiter.resume(nil)
            reap(in: home, table: table, count: 2)
        }
    }

    /// Pops up to `count` nodes off the head of `home`'s waiter queue while some are counted:
    /// tombstones are dropped, live waiters registered again (at the tail).
    @usableFromInline
    func reap(in home: TaskQueuePartition<Payload>, table: PartitionTable<Payload>, count: Int) {
        guard home.waiters.load() != nil else { return }
        for _ in 0..<count {
            guard let node = home.popWaiter() else { return }
            guard node.hold() else { continue }
            node.unhold()
            register(node, in: home, table: table)
        }
    }
}
