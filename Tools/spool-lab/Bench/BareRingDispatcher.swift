#if canImport(Glibc)
import Glibc
#endif
import SpoolMatching
import Synchronization

/// A reference point for `spool bench dispatch --implementations ring`, not a dispatcher to
/// use: a bare Vyukov ring of tasks, with slots padded to cache lines as in SpoolMatching,
/// and nothing else (no priorities, waiters, deadlines, cancellation, rate limits or
/// partitions). A poll that finds the ring empty does not suspend; it yields and looks again.
///
/// It answers one question: how fast can any design built on one shared FIFO ring hand tasks
/// between the two cores of this machine, under the same harness? Every such hand-off moves
/// the slot's cache line to the poller's core and the ring's head and tail lines between the
/// cores that pop and push.
final class BareRingDispatcher: BenchDispatchQueue, @unchecked Sendable {
    private static let slotStride = 64
    private let mask: Int
    /// Slot i: its sequence number (Vyukov's turn counter) at byte 0, the task at byte 8.
    private let slots: UnsafeMutableRawPointer
    /// The head (next pop) at byte 0 and the tail (next push) at byte 128: separate lines.
    private let indexes: UnsafeMutableRawPointer

    /// `capacity` is rounded up to a power of two.
    init(capacity: Int) {
        precondition(8 + MemoryLayout<QueuedTask<UInt64>>.stride <= Self.slotStride)
        var size = 2
        while size < capacity { size <<= 1 }
        mask = size - 1
        slots = .allocate(byteCount: size * Self.slotStride, alignment: 64)
        for i in 0..<size {
            (slots + i * Self.slotStride).bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(i))
        }
        indexes = .allocate(byteCount: 256, alignment: 64)
        indexes.bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0))
        (indexes + 128).bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0))
    }

    deinit {
        while pop() != nil {}
        slots.deallocate()
        indexes.deallocate()
    }

    private var head: UnsafeMutablePointer<Atomic<Int>> { indexes.assumingMemoryBound(to: Atomic<Int>.self) }
    private var tail: UnsafeMutablePointer<Atomic<Int>> { (indexes + 128).assumingMemoryBound(to: Atomic<Int>.self) }

    private func sequence(_ position: Int) -> UnsafeMutablePointer<Atomic<Int>> {
        (slots + ((position & mask) &* Self.slotStride)).assumingMemoryBound(to: Atomic<Int>.self)
    }

    private func task(_ position: Int) -> UnsafeMutablePointer<QueuedTask<UInt64>> {
        (slots + ((position & mask) &* Self.slotStride &+ 8)).assumingMemoryBound(to: QueuedTask<UInt64>.self)
    }

    func add(_ task: consuming QueuedTask<UInt64>) throws {
        var position = tail.pointee.load(ordering: .relaxed)
        while true {
            let difference = sequence(position).pointee.load(ordering: .acquiring) &- position
            if difference == 0 {
                let (exchanged, current) = tail.pointee.weakCompareExchange(
                    expected: position, desired: position &+ 1, successOrdering: .relaxed, failureOrdering: .relaxed)
                if exchanged {
                    self.task(position).initialize(to: task)
                    sequence(position).pointee.store(position &+ 1, ordering: .releasing)
                    return
                }
                position = current
            } else if difference < 0 {
                // The bench's flow control keeps the ring far from full, so this slot's previous
                // task was claimed by a poller that has not released the slot yet (its thread was
                // preempted between the two steps): wait for it.
                sched_yield()
                position = tail.pointee.load(ordering: .relaxed)
            } else {
                position = tail.pointee.load(ordering: .relaxed)
            }
        }
    }

    private func pop() -> QueuedTask<UInt64>? {
        var position = head.pointee.load(ordering: .relaxed)
        while true {
            let difference = sequence(position).pointee.load(ordering: .acquiring) &- (position &+ 1)
            if difference == 0 {
                let (exchanged, current) = head.pointee.weakCompareExchange(
                    expected: position, desired: position &+ 1, successOrdering: .relaxed, failureOrdering: .relaxed)
                if exchanged {
                    let task = self.task(position).move()
                    sequence(position).pointee.store(position &+ mask &+ 1, ordering: .releasing)
                    return task
                }
                position = current
            } else if difference < 0 {
                return nil
            } else {
                position = head.pointee.load(ordering: .relaxed)
            }
        }
    }

    func poll() async -> QueuedTask<UInt64>? {
        while !Task.isCancelled {
            if let task = pop() { return task }
            await Task.yield()
        }
        return nil
    }
}
