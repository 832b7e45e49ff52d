import HeapModule

/// A min-heap of items by deadline, the one structure behind every timeout in Spool: the
/// engine's durable timers, its history long-polls and the matching core's poll deadlines.
/// Items with equal deadlines come out in the order they went in, so that two timeouts of one
/// run falling due at the same instant always fire in the same order.
///
/// A value type without a lock: its owner guards it (a ``LockedValue``, or the lock of a
/// lock-free structure's slow path). Insert and pop are O(log n).
///
/// Everything is `@inlinable`, so that each owner gets a copy specialized for its item type:
/// unspecialized, every sift of the heap copied entries through value witnesses (measured:
/// `spool bench queue` spent 10–13% more CPU per task with the poll deadlines' heap generic).
/// It is `public`, not `package`: Swift 6.3 did not specialize `@inlinable package` code in
/// other modules (the calls went to the generic entry points). SpoolPrimitives is no product,
/// so `public` here reaches no further than `package` would.
public struct DeadlineHeap<Deadline: Comparable, Item> {
    @usableFromInline
    struct Entry: Comparable {
        @usableFromInline var deadline: Deadline
        /// Ties in deadline come up in insertion order.
        @usableFromInline var sequence: UInt64
        @usableFromInline var item: Item

        @inlinable
        init(deadline: Deadline, sequence: UInt64, item: Item) {
            self.deadline = deadline
            self.sequence = sequence
            self.item = item
        }

        @inlinable
        static func < (a: Entry, b: Entry) -> Bool {
            a.deadline < b.deadline || (a.deadline == b.deadline && a.sequence < b.sequence)
        }

        @inlinable
        static func == (a: Entry, b: Entry) -> Bool { a.sequence == b.sequence }
    }

    @usableFromInline var heap = Heap<Entry>()
    @usableFromInline var nextSequence: UInt64 = 0

    @inlinable
    public init() {}

    /// How many items are waiting.
    @inlinable
    public var count: Int { heap.count }

    /// Whether no item is waiting.
    @inlinable
    public var isEmpty: Bool { heap.isEmpty }

    /// The earliest deadline, or `nil` when empty.
    @inlinable
    public var earliestDeadline: Deadline? { heap.min?.deadline }

    /// Adds `item`, due at `deadline`.
    @inlinable
    public mutating func insert(_ item: Item, at deadline: Deadline) {
        heap.insert(Entry(deadline: deadline, sequence: nextSequence, item: item))
        nextSequence &+= 1
    }

    /// Removes and returns the items due at `now` (deadline ≤ `now`), earliest first.
    @inlinable
    public mutating func popDue(at now: Deadline) -> [Item] {
        var due: [Item] = []
        while let first = heap.min, first.deadline <= now { due.append(heap.removeMin().item) }
        return due
    }

    /// Drops every item for which `isGarbage` returns true, in O(n): for owners that leave items
    /// of ended waits in the heap rather than search for them, and sweep them all at once.
    @inlinable
    public mutating func removeAll(where isGarbage: (Item) -> Bool) {
        heap = Heap(heap.unordered.filter { !isGarbage($0.item) })
    }
}

extension DeadlineHeap: Sendable where Deadline: Sendable, Item: Sendable {}
extension DeadlineHeap.Entry: Sendable where Deadline: Sendable, Item: Sendable {}
