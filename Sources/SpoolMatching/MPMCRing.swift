import Synchronization

/// A bounded multi-producer multi-consumer FIFO ring (Dmitry Vyukov's): each slot carries a
/// sequence number that says whose turn it is, so a push or a pop is one compare-and-swap on
/// the tail or head index plus one release store on the slot.
///
/// Layout: the slot sequences, the slot values and the head/tail indexes live in separate
/// allocations (a struct holding an atomic and a payload side by side is a real race under
/// TSan), and head and tail are 64 bytes apart so producers and consumers do not share a
/// cache line. An optional stamp per slot (the enqueue time of a task) can be read by
/// visibility code without touching the value.
///
/// Progress: a push that has reserved its slot but not yet published it holds up pops of that
/// one slot (they report "empty" and the caller retries or backs off). This is the ring's only
/// non-lock-free window and it is a few instructions long.
@usableFromInline
final class MPMCRing<Element> {
    @usableFromInline let mask: Int
    @usableFromInline let sequences: UnsafeMutablePointer<Atomic<Int>>
    @usableFromInline let values: UnsafeMutablePointer<Element>
    @usableFromInline let stamps: UnsafeMutablePointer<Atomic<UInt64>>?
    /// `indexes[0]` is the head (next pop), `indexes[8]` the tail (next push).
    @usableFromInline let indexes: UnsafeMutablePointer<Atomic<Int>>

    /// `capacity` is rounded up to a power of two (at least 2).
    @usableFromInline
    init(capacity: Int, stamped: Bool) {
        var size = 2
        while size < capacity { size <<= 1 }
        mask = size - 1
        sequences = .allocate(capacity: size)
        for i in 0..<size { (sequences + i).initialize(to: Atomic(i)) }
        values = .allocate(capacity: size)
        if stamped {
            let stamps = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: size)
            for i in 0..<size { (stamps + i).initialize(to: Atomic(0)) }
            self.stamps = stamps
        } else {
            stamps = nil
        }
        indexes = .allocate(capacity: 16)
        for i in 0..<16 { (indexes + i).initialize(to: Atomic(0)) }
    }

    deinit {
        // Drop the values still queued.
        var head = indexes[0].load(ordering: .acquiring)
        let tail = indexes[8].load(ordering: .acquiring)
        while head != tail {
            if sequences[head & mask].load(ordering: .acquiring) == head + 1 { (values + (head & mask)).deinitialize(count: 1) }
            head += 1
        }
        sequences.deinitialize(count: mask + 1)
        sequences.deallocate()
        values.deallocate()
        if let stamps {
            stamps.deinitialize(count: mask + 1)
            stamps.deallocate()
        }
        indexes.deinitialize(count: 16)
        indexes.deallocate()
    }

    @usableFromInline var capacity: Int { mask + 1 }

    /// Queued values (exact when quiescent; a snapshot under concurrency).
    @usableFromInline var count: Int {
        let head = indexes[0].load(ordering: .acquiring)
        let tail = indexes[8].load(ordering: .acquiring)
        return max(0, min(tail - head, mask + 1))
    }

    /// Pushes ever reserved (the tail index); with ``popped`` it gives the lane's counters for free.
    var pushed: Int { indexes[8].load(ordering: .relaxed) }
    /// Pops ever done (the head index).
    var popped: Int { indexes[0].load(ordering: .relaxed) }

    /// Appends `element`; false when the ring is full (the element is not consumed).
    @inlinable
    func push(_ element: Element, stamp: UInt64 = 0) -> Bool {
        var position = indexes[8].load(ordering: .relaxed)
        while true {
            let index = position & mask
            let sequence = sequences[index].load(ordering: .acquiring)
            let difference = sequence &- position
            if difference == 0 {
                let (exchanged, current) = indexes[8].weakCompareExchange(
                    expected: position, desired: position &+ 1, successOrdering: .relaxed, failureOrdering: .relaxed)
                if exchanged {
                    (values + index).initialize(to: element)
                    if let stamps { stamps[index].store(stamp, ordering: .relaxed) }
                    sequences[index].store(position &+ 1, ordering: .releasing)
                    return true
                }
                position = current
            } else if difference < 0 {
                return false
            } else {
                position = indexes[8].load(ordering: .relaxed)
            }
        }
    }

    /// Removes the oldest element; nil when the ring is empty or its head slot is not yet published.
    @inlinable
    func pop() -> Element? {
        var position = indexes[0].load(ordering: .relaxed)
        while true {
            let index = position & mask
            let sequence = sequences[index].load(ordering: .acquiring)
            let difference = sequence &- (position &+ 1)
            if difference == 0 {
                let (exchanged, current) = indexes[0].weakCompareExchange(
                    expected: position, desired: position &+ 1, successOrdering: .relaxed, failureOrdering: .relaxed)
                if exchanged {
                    let element = (values + index).move()
                    sequences[index].store(position &+ mask &+ 1, ordering: .releasing)
                    return element
                }
                position = current
            } else if difference < 0 {
                return nil
            } else {
                position = indexes[0].load(ordering: .relaxed)
            }
        }
    }

    /// The stamp of the element at the head, if one is published (a racy snapshot for visibility:
    /// it may belong to an element popped an instant later).
    func headStamp() -> UInt64? {
        guard let stamps else { return nil }
        let position = indexes[0].load(ordering: .acquiring)
        let index = position & mask
        guard sequences[index].load(ordering: .acquiring) == position &+ 1 else { return nil }
        return stamps[index].load(ordering: .relaxed)
    }
}

// Slots are handed between threads by the release store and acquire load of their sequence
// number: a value is written before its slot is published and read only by the one thread
// that won the head compare-and-swap for it.
extension MPMCRing: @unchecked Sendable {}
