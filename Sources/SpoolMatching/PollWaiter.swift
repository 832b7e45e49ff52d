import DequeModule
import Synchronization

/// A poller suspended in a partition, waiting for a task.
///
/// State machine (every transition a compare-and-swap, so exactly one party wins):
///
///     arming ──(poller stored its continuation)──▶ waiting ──(producer)──▶ matched
///        │                                            │
///        └──(cancelled before it was armed)──▶ cancelled ◀──(deadline, task cancellation,
///                                                              or the poller took a task itself)
///
/// Whoever moves the node out of `waiting` resumes its continuation, once: the producer that
/// wins `waiting → matched` resumes it with a task; the canceller that wins
/// `waiting → cancelled` resumes it with nil. A producer that loses to a canceller keeps its
/// task and offers it to the next waiter or the backlog, so a task handed to a poller that
/// just gave up is neither lost nor delivered twice.
@usableFromInline
final class PollWaiter<Payload: Sendable> {
    @usableFromInline static var arming: Int { 0 }
    @usableFromInline static var waiting: Int { 1 }
    @usableFromInline static var matched: Int { 2 }
    @usableFromInline static var cancelled: Int { 3 }

    @usableFromInline let state = Atomic<Int>(0)
    /// Written once by the poller before `arming → waiting` (release); read only by the party
    /// that wins the transition out of `waiting` (acquire).
    @usableFromInline var continuation: UnsafeContinuation<QueuedTask<Payload>?, Never>?

    @usableFromInline init() {}

    /// `waiting → matched`; the caller must then resume the continuation with a task.
    @inlinable
    func tryMatch() -> Bool {
        state.compareExchange(expected: Self.waiting, desired: Self.matched, ordering: .acquiringAndReleasing).exchanged
    }

    /// `waiting → cancelled`; the caller must then resume the continuation itself.
    @inlinable
    func tryCancelWaiting() -> Bool {
        state.compareExchange(expected: Self.waiting, desired: Self.cancelled, ordering: .acquiringAndReleasing).exchanged
    }

    @inlinable
    func resume(_ task: QueuedTask<Payload>?) {
        continuation.unsafelyUnwrapped.resume(returning: task)
    }

    @inlinable
    var isCancelled: Bool { state.load(ordering: .acquiring) == Self.cancelled }
}

// The state is atomic; `continuation` is published by the `arming → waiting` release and read
// only after a winning acquire compare-and-swap out of `waiting`.
extension PollWaiter: @unchecked Sendable {}

/// The waiting pollers of a partition: a lock-free ring, and a locked overflow for the pollers
/// beyond its capacity (10,000 long-polling workers on one partition are legal; they just take
/// the slower path).
///
/// Holds live waiters and *tombstones*: waiters that gave up. A tombstone still counts in the
/// partition's balance until someone pops it (see `TaskQueue+Waiting.swift`).
@usableFromInline
final class WaiterQueue<Payload: Sendable> {
    @usableFromInline let ring: MPMCRing<PollWaiter<Payload>>
    @usableFromInline let spilled = Atomic<Int>(0)
    /// Pollers in state `waiting` (for visibility; tombstones excluded).
    @usableFromInline let live = Atomic<Int>(0)
    // Guarded by `lock`.
    private let lock = ThreadLock()
    private var overflow = Deque<PollWaiter<Payload>>()

    @usableFromInline init(capacity: Int) {
        // Unpadded: pollers suspend and resume far more rarely than tasks pass, and a partition
        // keeps its waiter ring for life (256 slots × 16 bytes by default).
        ring = MPMCRing(capacity: capacity, stamped: false, padded: false)
    }

    @inlinable
    func push(_ waiter: PollWaiter<Payload>) {
        if spilled.load(ordering: .relaxed) == 0 && ring.push(waiter) == nil { return }
        pushLocked(waiter)
    }

    @usableFromInline
    func pushLocked(_ waiter: PollWaiter<Payload>) {
        lock.withLock {
            overflow.append(waiter)
            spilled.add(1, ordering: .relaxed)
        }
    }

    /// Pops a waiter that the balance says is there (counted before it was pushed): waits out
    /// the few instructions between a poller counting itself and pushing its node.
    @inlinable
    func popCounted() -> PollWaiter<Payload> {
        var spins = 0
        while true {
            if let waiter = ring.pop() { return waiter }
            if spilled.load(ordering: .relaxed) > 0, let waiter = popLocked() { return waiter }
            backOff(&spins)
        }
    }

    @usableFromInline
    func popLocked() -> PollWaiter<Payload>? {
        lock.withLock {
            if let waiter = ring.pop() { return waiter }
            guard let waiter = overflow.popFirst() else { return nil }
            spilled.add(-1, ordering: .relaxed)
            // Move what fits back into the ring, oldest first.
            var moved = 0
            while let next = overflow.first, ring.push(next) == nil {
                overflow.removeFirst()
                moved += 1
            }
            spilled.add(-moved, ordering: .relaxed)
            return waiter
        }
    }
}

// The ring is lock-free; `overflow` is touched only under `lock`; counters are atomics.
extension WaiterQueue: @unchecked Sendable {}
