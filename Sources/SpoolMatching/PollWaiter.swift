import DequeModule
import Synchronization
import SpoolPrimitives

/// A poller suspended in a partition, waiting for a task.
///
/// State machine (every transition out of `waiting` a compare-and-swap, so exactly one party
/// wins):
///
///     arming ──(poller stored its continuation)──▶ waiting ◀──(no task after all)──┐
///        │                                          │   │                          │
///        │                                          │   └──(hold)──▶ held ─────────┘
///        │                                          │                 │
///        └──(cancelled before armed)──▶ cancelled ◀─┘ (deadline,      └──(task found)──▶ matched
///                                                     task cancellation)
///
/// `held` is a short exclusive claim: a producer that popped the node, or whoever registers it
/// and sees a task in the lanes, holds it while it takes a task; with one it moves the node to
/// `matched` and resumes the continuation with the task, without one it puts the node back to
/// `waiting`. A canceller that finds the node held waits for that (a few instructions), so a
/// task handed to a poller that just gave up goes to the next poller or stays queued: the
/// holder takes the task only after it has won the node, and resumes it only with a task.
/// The canceller that wins `waiting → cancelled` resumes the continuation with nil.
@usableFromInline
final class PollWaiter<Payload: Sendable> {
    @usableFromInline static var arming: Int { 0 }
    @usableFromInline static var waiting: Int { 1 }
    @usableFromInline static var matched: Int { 2 }
    @usableFromInline static var cancelled: Int { 3 }
    @usableFromInline static var held: Int { 4 }

    @usableFromInline let state = Atomic<Int>(0)
    /// Written once by the poller before `arming → waiting` (release); read only by the party
    /// that wins the transition out of `waiting` (acquire).
    @usableFromInline var continuation: UnsafeContinuation<QueuedTask<Payload>?, Never>?

    @usableFromInline init() {}

    /// `waiting → held`, waiting out another holder; false if the node is matched or cancelled
    /// (a tombstone). The holder must then call ``finish(with:)`` or ``unhold()``.
    @inlinable
    func hold() -> Bool {
        var spins = 0
        while true {
            let (exchanged, current) = state.compareExchange(expected: Self.waiting, desired: Self.held, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            if current != Self.held { return false }
            backOff(&spins)
        }
    }

    /// `held → waiting`: the holder found no task.
    @inlinable
    func unhold() {
        state.store(Self.waiting, ordering: .releasing)
    }

    /// `held → matched`, and resumes the poller with `task`.
    @inlinable
    func finish(with task: consuming QueuedTask<Payload>) {
        state.store(Self.matched, ordering: .releasing)
        continuation.unsafelyUnwrapped.resume(returning: task)
    }

    /// `waiting → cancelled`, waiting out a holder; the caller must then resume the
    /// continuation itself. False if the node was matched (or cancelled) first.
    @inlinable
    func tryCancelWaiting() -> Bool {
        var spins = 0
        while true {
            let (exchanged, current) = state.compareExchange(expected: Self.waiting, desired: Self.cancelled, ordering: .acquiringAndReleasing)
            if exchanged { return true }
            if current != Self.held { return false }
            backOff(&spins)
        }
    }

    @inlinable
    func resume(_ task: QueuedTask<Payload>?) {
        continuation.unsafelyUnwrapped.resume(returning: task)
    }

    /// Whether the node is a tombstone (its poller was resumed).
    @inlinable
    var isTombstone: Bool {
        let current = state.load(ordering: .acquiring)
        return current == Self.cancelled || current == Self.matched
    }
}

// The state is atomic; `continuation` is published by the `arming → waiting` release and read
// only by the party that wins `waiting → held` or `waiting → cancelled` (acquire).
extension PollWaiter: @unchecked Sendable {}

/// The waiting pollers of a partition: a lock-free ring, and a locked overflow for the pollers
/// beyond its capacity (10,000 long-polling workers on one partition are legal; they just take
/// the slower path).
///
/// Holds live waiters and *tombstones*: waiters that gave up or took a task themselves. A
/// tombstone still counts in the partition's `waiting` until someone pops it (see
/// `TaskQueue+Waiting.swift`).
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

    /// Pops a waiter that `waiting` says is there (counted before it was pushed): waits out
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
