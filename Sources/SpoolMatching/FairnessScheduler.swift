import DequeModule

/// Stride scheduling among the fairness keys of one priority lane, and the lane's unkeyed
/// tasks as one more stream of weight 1.
///
/// Every active key has a *pass*; the key with the lowest pass goes next and its pass grows
/// by `stride / weight`, so over any window keys are served in proportion to their weights.
/// A key that becomes active starts at the current virtual time (the pass of the last key
/// served), so an idle key cannot bank credit and then burst.
///
/// Not lock-free: the lane's lock guards it (tasks with keys take the lane's locked path).
struct FairnessScheduler<Payload: Sendable> {
    final class KeyQueue {
        let key: String
        /// In thousandths (``FairnessKey/weightThousandths``): the unkeyed stream is 1000.
        var weight: UInt64
        var pass: UInt64
        var order: UInt64
        var tasks = Deque<QueuedTask<Payload>>()

        init(key: String, weight: UInt64, pass: UInt64, order: UInt64) {
            self.key = key
            self.weight = weight
            self.pass = pass
            self.order = order
        }
    }

    static var stride: UInt64 { 1 << 24 }

    /// Active keys (those with tasks), by key.
    private var active: [String: KeyQueue] = [:]
    /// Active keys as a binary min-heap on (pass, order).
    private var heap: [KeyQueue] = []
    private var virtualTime: UInt64 = 0
    private var arrivals: UInt64 = 0
    /// The pass of the unkeyed stream.
    private(set) var defaultPass: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }

    mutating func push(_ task: QueuedTask<Payload>, key: FairnessKey) {
        let weight = max(1, key.weightThousandths)
        if let queue = active[key.key] {
            queue.weight = weight
            queue.tasks.append(task)
            return
        }
        arrivals += 1
        let queue = KeyQueue(key: key.key, weight: weight, pass: virtualTime, order: arrivals)
        queue.tasks.append(task)
        active[key.key] = queue
        heap.append(queue)
        siftUp(heap.count - 1)
    }

    /// Each active key's tasks and the enqueue time of its oldest (a key's tasks are in arrival order).
    var keyBacklog: [(key: String, count: Int, oldest: UInt64?)] {
        heap.map { ($0.key, $0.tasks.count, $0.tasks.first?.enqueuedAt.nanoseconds) }
    }

    /// The pass of the key that would go next.
    var nextKeyPass: UInt64? { heap.first?.pass }

    /// Whether the unkeyed stream, when it has tasks, goes before the next key.
    mutating func unkeyedGoesNext() -> Bool {
        defaultPass = max(defaultPass, virtualTime)
        guard let next = heap.first else { return true }
        return defaultPass <= next.pass
    }

    /// Charges the unkeyed stream for one task it dispatched.
    mutating func chargeUnkeyed() {
        virtualTime = defaultPass
        defaultPass += Self.stride
    }

    mutating func popKeyed() -> QueuedTask<Payload>? {
        guard let queue = heap.first, let task = queue.tasks.popFirst() else { return nil }
        virtualTime = queue.pass
        queue.pass += Self.stride * 1000 / queue.weight
        if queue.tasks.isEmpty {
            active[queue.key] = nil
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                siftDown(0)
            }
        } else {
            siftDown(0)
        }
        return task
    }

    /// ``popKeyed()`` for a queue with a per-key rate limit: keys are tried in stride order and
    /// `admit` is asked for each key's next task; it returns nil to let the task go (having taken
    /// the key's token) or the instant its key's next token is due, and the key is skipped.
    /// Returns the task, or nil and the earliest instant a skipped key becomes due.
    mutating func popKeyed(admit: (_ key: String, _ weightThousandths: UInt64, _ head: borrowing QueuedTask<Payload>) -> UInt64?)
        -> (task: QueuedTask<Payload>?, due: UInt64) {
        var skipped: [KeyQueue] = []
        var due = UInt64.max
        var task: QueuedTask<Payload>?
        while let queue = heap.first {
            guard let head = queue.tasks.first else { break }
            if let at = admit(queue.key, queue.weight, head) {
                due = min(due, at)
                skipped.append(removeFirst())
                continue
            }
            task = popKeyed()
            break
        }
        for queue in skipped {
            heap.append(queue)
            siftUp(heap.count - 1)
        }
        return (task, due)
    }

    /// Removes the heap's root (a key that keeps its tasks and pass), for ``popKeyed(admit:)``.
    private mutating func removeFirst() -> KeyQueue {
        let first = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
        return first
    }

    /// The earliest enqueue time among keyed tasks.
    var oldestEnqueueTime: UInt64? {
        heap.compactMap { $0.tasks.first?.enqueuedAt.nanoseconds }.min()
    }

    /// Every keyed task, removed.
    mutating func removeAll() -> [QueuedTask<Payload>] {
        var tasks: [QueuedTask<Payload>] = []
        while let task = popKeyed() { tasks.append(task) }
        return tasks
    }

    private func before(_ a: KeyQueue, _ b: KeyQueue) -> Bool {
        a.pass != b.pass ? a.pass < b.pass : a.order < b.order
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard before(heap[child], heap[parent]) else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count && before(heap[left], heap[smallest]) { smallest = left }
            if right < heap.count && before(heap[right], heap[smallest]) { smallest = right }
            guard smallest != parent else { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
