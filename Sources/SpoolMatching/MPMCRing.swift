import Synchronization

/// A bounded multi-producer multi-consumer FIFO ring (Dmitry Vyukov's): each slot carries a
/// sequence number that says whose turn it is, so a push or a pop is one compare-and-swap on
/// the tail or head index plus one release store on the slot.
///
/// Layout: one allocation of slots, each `[sequence | stamp | value]`, so a push or a pop
/// touches one slot's cache line(s) rather than one line in each of three arrays. With
/// `padded`, a slot's stride is rounded up to whole 64-byte cache lines: two producers (or two
/// consumers) working on neighbouring slots then never write the same line (in the unpadded
/// layout eight sequence numbers shared a line, and every push or pop of a neighbour bounced
/// it between cores). The sequence and the stamp are atomics at their own addresses, the value
/// a plain value beside them, written only by the thread that reserved the slot before it
/// publishes the sequence, and read only by the thread that won the slot after it acquires it.
/// The head and tail indexes live in their own allocation, 64 bytes apart, so producers and
/// consumers do not share a cache line. The stamp (the enqueue time of a task) can be read by
/// visibility code without touching the value.
///
/// Progress: a push that has reserved its slot but not yet published it holds up pops of that
/// one slot (they report "empty" and the caller retries or backs off). This is the ring's only
/// non-lock-free window and it is a few instructions long.
@usableFromInline
final class MPMCRing<Element> {
    @usableFromInline let mask: Int
    /// `capacity` slots of `slotStride` bytes: sequence (`Atomic<Int>`) at 0, stamp
    /// (`Atomic<UInt64>`, stamped rings only) at 8, the value at `valueOffset`.
    @usableFromInline let slots: UnsafeMutableRawPointer
    @usableFromInline let slotStride: Int
    @usableFromInline let valueOffset: Int
    @usableFromInline let stamped: Bool
    /// `indexes[0]` is the head (next pop), `indexes[8]` the tail (next push).
    @usableFromInline let indexes: UnsafeMutablePointer<Atomic<Int>>

    @usableFromInline static var slotAlignment: Int { max(64, MemoryLayout<Element>.alignment) }

    /// `capacity` is rounded up to a power of two (at least 2). `stamped` keeps a stamp per
    /// slot for ``headStamp()``; `padded` gives each slot whole cache lines (for rings that
    /// producers and consumers hit from several cores at once).
    @usableFromInline
    init(capacity: Int, stamped: Bool, padded: Bool) {
        var size = 2
        while size < capacity { size <<= 1 }
        mask = size - 1
        let alignment = max(8, MemoryLayout<Element>.alignment)
        let offset = ((stamped ? 16 : 8) + alignment - 1) & ~(alignment - 1)
        let unpadded = offset + MemoryLayout<Element>.stride
        valueOffset = offset
        slotStride = padded ? (unpadded + 63) & ~63 : (unpadded + alignment - 1) & ~(alignment - 1)
        slots = .allocate(byteCount: size * slotStride, alignment: Self.slotAlignment)
        for i in 0..<size {
            (slots + i * slotStride).bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(i))
            if stamped { (slots + i * slotStride + 8).bindMemory(to: Atomic<UInt64>.self, capacity: 1).initialize(to: Atomic(0)) }
            _ = (slots + i * slotStride + offset).bindMemory(to: Element.self, capacity: 1)
        }
        self.stamped = stamped
        indexes = allocateCacheAlignedCells(count: 16)
    }

    deinit {
        // Drop the values still queued.
        var head = indexes[0].load(ordering: .acquiring)
        let tail = indexes[8].load(ordering: .acquiring)
        while head != tail {
            if sequence(head & mask).pointee.load(ordering: .acquiring) == head + 1 { value(head & mask).deinitialize(count: 1) }
            head += 1
        }
        for i in 0...mask {
            sequence(i).deinitialize(count: 1)
            if stamped { stamp(i).deinitialize(count: 1) }
        }
        slots.deallocate()
        deallocateCacheAlignedCells(indexes, count: 16)
    }

    @inlinable @inline(__always)
    func sequence(_ index: Int) -> UnsafeMutablePointer<Atomic<Int>> {
        (slots + (index &* slotStride)).assumingMemoryBound(to: Atomic<Int>.self)
    }

    @inlinable @inline(__always)
    func stamp(_ index: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        (slots + (index &* slotStride &+ 8)).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    @inlinable @inline(__always)
    func value(_ index: Int) -> UnsafeMutablePointer<Element> {
        (slots + (index &* slotStride &+ valueOffset)).assumingMemoryBound(to: Element.self)
    }

    @usableFromInline var capacity: Int { mask + 1 }

    /// Bytes allocated for this ring: its object, slots and indexes.
    var allocatedBytes: Int {
        mallocSize(of: self) + capacity * slotStride + 16 * MemoryLayout<Atomic<Int>>.stride
    }

    /// Queued values (exact when quiescent; a snapshot under concurrency).
    @usableFromInline var count: Int {
        let head = indexes[0].load(ordering: .acquiring)
        let tail = indexes[8].load(ordering: .acquiring)
        return max(0, min(tail - head, mask + 1))
    }

    /// Whether a push has reserved a slot that no pop has taken yet (published or still being
    /// published): sequentially consistent, for the waiter handshake (see ``push(_:stamp:)``).
    @inlinable
    var hasPending: Bool {
        let tail = indexes[8].load(ordering: .sequentiallyConsistent)
        return tail &- indexes[0].load(ordering: .sequentiallyConsistent) > 0
    }

    /// Pushes ever reserved (the tail index); with ``popped`` it gives the lane's counters for free.
    var pushed: Int { indexes[8].load(ordering: .relaxed) }
    /// Pops ever done (the head index).
    var popped: Int { indexes[0].load(ordering: .relaxed) }

    /// Appends `element`, moving it into its slot (no copy); when the ring is full, gives it
    /// back.
    @inlinable
    func push(_ element: consuming Element, stamp: UInt64 = 0) -> Element? {
        var position = indexes[8].load(ordering: .relaxed)
        while true {
            let index = position & mask
            let sequence = self.sequence(index)
            let difference = sequence.pointee.load(ordering: .acquiring) &- position
            if difference == 0 {
                // Sequentially consistent: a task queue's producer then reads the partition's
                // waiter count, and a registering poller, after counting itself, reads this
                // index (`hasPending`): a Dekker handshake in which one side sees the other.
                let (exchanged, current) = indexes[8].weakCompareExchange(
                    expected: position, desired: position &+ 1, successOrdering: .sequentiallyConsistent, failureOrdering: .relaxed)
                if exchanged {
                    value(index).initialize(to: element)
                    if stamped { self.stamp(index).pointee.store(stamp, ordering: .relaxed) }
                    sequence.pointee.store(position &+ 1, ordering: .releasing)
                    return nil
                }
                position = current
            } else if difference < 0 {
                return element
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
            let sequence = self.sequence(index)
            let difference = sequence.pointee.load(ordering: .acquiring) &- (position &+ 1)
            if difference == 0 {
                let (exchanged, current) = indexes[0].weakCompareExchange(
                    expected: position, desired: position &+ 1, successOrdering: .relaxed, failureOrdering: .relaxed)
                if exchanged {
                    let element = value(index).move()
                    sequence.pointee.store(position &+ mask &+ 1, ordering: .releasing)
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
        guard stamped else { return nil }
        let position = indexes[0].load(ordering: .acquiring)
        let index = position & mask
        guard sequence(index).pointee.load(ordering: .acquiring) == position &+ 1 else { return nil }
        return stamp(index).pointee.load(ordering: .relaxed)
    }
}

// Slots are handed between threads by the release store and acquire load of their sequence
// number: a value is written before its slot is published and read only by the one thread
// that won the head compare-and-swap for it.
extension MPMCRing: @unchecked Sendable {}

/// `count` atomics set to 0 starting on a cache line, so that nothing else on the heap shares
/// their first line.
@usableFromInline
func allocateCacheAlignedCells(count: Int) -> UnsafeMutablePointer<Atomic<Int>> {
    let cells = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Atomic<Int>>.stride, alignment: 64)
        .bindMemory(to: Atomic<Int>.self, capacity: count)
    for i in 0..<count { (cells + i).initialize(to: Atomic(0)) }
    return cells
}

/// Frees what ``allocateCacheAlignedCells(count:)`` returned.
@usableFromInline
func deallocateCacheAlignedCells(_ cells: UnsafeMutablePointer<Atomic<Int>>, count: Int) {
    cells.deinitialize(count: count)
    UnsafeMutableRawPointer(cells).deallocate()
}
