import DequeModule
import Synchronization
import SpoolPrimitives

/// The backlog of one priority in one partition: a lock-free ring for unkeyed tasks, a locked
/// overflow behind it when the ring is full, and a locked fairness scheduler for keyed tasks.
///
/// FIFO: while the overflow holds tasks, new unkeyed tasks go to the overflow too, and a
/// consumer that finds the ring empty refills it from the front of the overflow; so the ring
/// always holds tasks older than the overflow's and the lane stays first-in first-out
/// (up to the order of concurrent adds, which have none).
@usableFromInline
final class PriorityLane<Payload: Sendable> {
    @usableFromInline let ring: MPMCRing<QueuedTask<Payload>>
    /// Tasks in `overflow`.
    @usableFromInline let spilled = Atomic<Int>(0)
    /// Tasks in `fairness`.
    @usableFromInline let keyed = Atomic<Int>(0)
    /// Tasks pushed to the overflow or the fairness scheduler, tasks popped from them, and tasks
    /// moved from the overflow into the ring: with the ring's own indexes these count every task
    /// that entered and left the lane, without a counter on the lock-free path.
    let lockedPushes = Atomic<Int>(0)
    let lockedPops = Atomic<Int>(0)
    let refills = Atomic<Int>(0)
    // `overflow` and `fairness` are guarded by `lock`.
    private let lock = ThreadLock()
    private var overflow = Deque<QueuedTask<Payload>>()
    private var fairness = FairnessScheduler<Payload>()

    /// The queue's per-fairness-key rate limit (shared by its lanes).
    @usableFromInline let keyRates: KeyRateLimits
    /// While every keyed task's key is over its rate: when the first of them is due (nanoseconds;
    /// `UInt64.max` at rate 0); 0 otherwise. Keyed tasks do not count as pending before then.
    @usableFromInline let throttledUntil = Atomic<UInt64>(0)

    @usableFromInline
    init(capacity: Int, keyRates: KeyRateLimits) {
        ring = MPMCRing(capacity: capacity, stamped: true, padded: true)
        self.keyRates = keyRates
    }

    /// Adds a task. Lock-free when it has no fairness key and the ring has room.
    /// The task is moved, not copied, into the ring: a copy of the generic task goes through
    /// its type metadata's value witnesses (an outlined call and a layout-driven copy).
    @inlinable @inline(__always)
    func push(_ task: consuming QueuedTask<Payload>) {
        if task.fairnessBox == nil && spilled.load(ordering: .relaxed) == 0 {
            let stamp = task.enqueuedAt.nanoseconds
            guard let full = ring.push(task, stamp: stamp) else { return }
            pushLocked(full)
            return
        }
        pushLocked(task)
    }

    @usableFromInline
    func pushLocked(_ task: consuming QueuedTask<Payload>) {
        defer {
            // Orders the count above before the producer's read of the waiter count, as the
            // ring's sequentially consistent tail update does on the lock-free path.
            atomicMemoryFence(ordering: .sequentiallyConsistent)
        }
        lock.withLock {
            lockedPushes.add(1, ordering: .relaxed)
            if let key = task.fairness {
                fairness.push(task, key: key)
                keyed.add(1, ordering: .relaxed)
                // A new key may be under its rate: look again at the next pop.
                throttledUntil.store(0, ordering: .sequentiallyConsistent)
            } else {
                overflow.append(task)
                spilled.add(1, ordering: .relaxed)
            }
        }
    }

    /// Removes the next task: lock-free from the ring when no keyed task waits.
    /// Nil when the lane is empty, or its head slot is mid-publication.
    @inlinable @inline(__always)
    func pop() -> QueuedTask<Payload>? {
        if keyed.load(ordering: .relaxed) == 0 {
            if let task = ring.pop() { return task }
            if spilled.load(ordering: .relaxed) == 0 { return nil }
        }
        return popLocked()
    }

    /// The next task under the lane's lock: stride order between the keys and the unkeyed
    /// stream; keys over the queue's per-key rate are skipped unless `ignoringKeyRates`.
    @usableFromInline
    func popLocked(ignoringKeyRates: Bool = false) -> QueuedTask<Payload>? {
        lock.withLock { () -> QueuedTask<Payload>? in
            if !fairness.isEmpty {
                let unkeyedWaiting = ring.count > 0 || !overflow.isEmpty
                if !unkeyedWaiting || !fairness.unkeyedGoesNext() {
                    if let task = popKeyedLocked(ignoringKeyRates: ignoringKeyRates) { return task }
                    // Every key is over its rate: the unkeyed stream goes.
                    guard let task = popUnkeyedLocked() else { return nil }
                    fairness.chargeUnkeyed()
                    return task
                }
                if let task = popUnkeyedLocked() {
                    fairness.chargeUnkeyed()
                    return task
                }
                return popKeyedLocked(ignoringKeyRates: ignoringKeyRates)
            }
            return popUnkeyedLocked()
        }
    }

    /// The next keyed task, skipping keys over their rate; nil (noting when the first is due in
    /// `throttledUntil`) if every key is. Call under `lock`.
    private func popKeyedLocked(ignoringKeyRates: Bool) -> QueuedTask<Payload>? {
        let task: QueuedTask<Payload>?
        if !ignoringKeyRates && keyRates.isActive {
            let now = keyRates.now()
            let keyRates = self.keyRates
            let (chosen, due) = fairness.popKeyed { key, weight, head in
                // An expired task goes without a token: the poller drops it.
                if head.deadlineNanoseconds <= now { return nil }
                return keyRates.take(key, weightThousandths: weight, now: now)
            }
            throttledUntil.store(chosen == nil ? max(due, 1) : 0, ordering: .sequentiallyConsistent)
            task = chosen
        } else {
            task = fairness.popKeyed()
        }
        guard let task else { return nil }
        keyed.add(-1, ordering: .relaxed)
        lockedPops.add(1, ordering: .relaxed)
        return task
    }

    /// Whether keyed tasks may be dispatched now (none is held back by the per-key rate).
    @usableFromInline
    func keyedDue() -> Bool {
        let until = throttledUntil.load(ordering: .sequentiallyConsistent)
        return until == 0 || until <= keyRates.now()
    }

    /// The ring's head, or the overflow's head after refilling the ring from it. Call under `lock`.
    private func popUnkeyedLocked() -> QueuedTask<Payload>? {
        if let task = ring.pop() { return task }
        guard let first = overflow.popFirst() else { return nil }
        var moved = 1
        // Refill while the ring has room; the overflow's order is kept (new unkeyed adds go to
        // the overflow while `spilled` > 0, so nothing younger can slip into the ring meanwhile).
        while let next = overflow.popFirst() {
            if let full = ring.push(next, stamp: next.enqueuedAt.nanoseconds) {
                overflow.prepend(full)
                break
            }
            moved += 1
        }
        spilled.add(-moved, ordering: .relaxed)
        lockedPops.add(1, ordering: .relaxed)
        refills.add(moved - 1, ordering: .relaxed)
        return first
    }

    /// Whether the lane holds a task, or one is being published into its ring (sequentially
    /// consistent reads, for the waiter handshake).
    @inlinable
    var hasPending: Bool {
        ring.hasPending || spilled.load(ordering: .sequentiallyConsistent) > 0
            || (keyed.load(ordering: .sequentiallyConsistent) > 0 && keyedDue())
    }

    /// Tasks that ever entered the lane (a snapshot).
    var entered: Int { ring.pushed + lockedPushes.load(ordering: .relaxed) - refills.load(ordering: .relaxed) }
    /// Tasks that ever left the lane (a snapshot).
    var left: Int { ring.popped + lockedPops.load(ordering: .relaxed) }

    /// Queued tasks (a snapshot).
    var count: Int { ring.count + spilled.load(ordering: .relaxed) + keyed.load(ordering: .relaxed) }

    /// The enqueue time of the oldest task, if any (a snapshot).
    func oldestEnqueueTime() -> UInt64? {
        var oldest = ring.headStamp()
        if spilled.load(ordering: .relaxed) > 0 || keyed.load(ordering: .relaxed) > 0 {
            lock.withLock {
                for candidate in [overflow.first?.enqueuedAt.nanoseconds, fairness.oldestEnqueueTime] {
                    if let candidate { oldest = min(oldest ?? candidate, candidate) }
                }
            }
        }
        return oldest
    }

    /// Per fairness key, the tasks waiting and the enqueue time of the oldest (a snapshot; takes
    /// the lane's lock only when it holds keyed tasks).
    func fairnessKeyBacklog() -> [(key: String, count: Int, oldest: UInt64?)] {
        guard keyed.load(ordering: .relaxed) > 0 else { return [] }
        return lock.withLock { fairness.keyBacklog }
    }

    /// Bytes allocated for this lane (its object, ring buffers, overflow storage).
    var allocatedBytes: Int {
        mallocSize(of: self) + ring.allocatedBytes
    }
}

// The ring is lock-free and Sendable; `overflow` and `fairness` are only touched under `lock`;
// the counters are atomics.
extension PriorityLane: @unchecked Sendable {}
