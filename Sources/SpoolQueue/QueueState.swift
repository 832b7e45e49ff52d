import DequeModule
import SpoolMatching
import SpoolLog
import Synchronization
import SpoolPrimitives

/// What the matching core carries for each task in memory.
struct TaskEnvelope: Sendable {
    var payload: [UInt8]
    /// The attempt this delivery is (1 on the first).
    var attempt: UInt32
    /// When the task was first added.
    var addedAt: UInt64
    /// The id of the task's first record.
    var originalID: UInt64
}

typealias MatchedTask = QueuedTask<TaskEnvelope>

/// Five small counters, one per priority (1…5), stored inline.
struct PriorityCounts {
    private var c1: Int32 = 0, c2: Int32 = 0, c3: Int32 = 0, c4: Int32 = 0, c5: Int32 = 0

    subscript(priority: Int) -> Int {
        get {
            switch priority {
            case 1: Int(c1)
            case 2: Int(c2)
            case 3: Int(c3)
            case 4: Int(c4)
            default: Int(c5)
            }
        }
        set {
            switch priority {
            case 1: c1 = Int32(newValue)
            case 2: c2 = Int32(newValue)
            case 3: c3 = Int32(newValue)
            case 4: c4 = Int32(newValue)
            default: c5 = Int32(newValue)
            }
        }
    }
}

/// The tasks of one queue that wait on disk only: their log offsets, per priority, in the
/// order they are to be delivered. 8 bytes a task; the payloads are read back by a refill.
struct ColdBacklog {
    var lanes: [Deque<UInt64>] = Array(repeating: [], count: 5)
    var count = 0

    mutating func push(_ id: UInt64, priority: Int) {
        lanes[priority - 1].append(id)
        count += 1
    }

    /// The highest priority (smallest number) with a task, if any.
    var bestPriority: Int? {
        for p in 1...5 where !lanes[p - 1].isEmpty { return p }
        return nil
    }

    func isEmpty(through priority: Int) -> Bool {
        for p in 1...priority where !lanes[p - 1].isEmpty { return false }
        return true
    }
}

/// The mutable state of one queue, behind its lock.
struct QueueBacklog {
    /// Allocated when the queue first has tasks on disk only; an idle queue has none.
    var cold: ColdBacklog?
    /// Tasks handed to the matching core and not yet delivered, by priority.
    var hot = PriorityCounts()
    var hotTotal = 0
    /// A refill is reading payloads from the log.
    var refilling = false
    /// Bumped by a purge, so that a refill that read tasks before it drops them.
    var generation: UInt32 = 0
    /// Tasks with a log id below this were purged (a task whose add raced a purge is dropped).
    var purgedBelow: UInt64 = 0
    /// Paused by ``TaskStore/pause(_:kind:)``: the queue's tasks wait on disk only (no payload in
    /// memory, and the relocation of pinning tasks can move them).
    var paused = false
    var added = 0
    var dispatched = 0
    var inFlight = 0
    var delayed = 0
    var deadLetters = 0
    var expired = 0
    var rates: RateSample?

    var coldCount: Int { cold?.count ?? 0 }

    /// The lowest priority (largest number) with a task in memory, if any.
    var worstHotPriority: Int? {
        for p in stride(from: 5, through: 1, by: -1) where hot[p] > 0 { return p }
        return nil
    }

    /// A refill is due: tasks wait on disk and either the queue's in-memory window runs low,
    /// or a task on disk has a higher priority than one in memory.
    func needsRefill(lowWater: Int) -> Bool {
        guard let cold, cold.count > 0, !refilling, !paused else { return false }
        if hotTotal < lowWater { return true }
        if let best = cold.bestPriority, let worst = worstHotPriority, best < worst { return true }
        return false
    }
}

/// The last rate sample of a queue (for ``QueueDescription/addRate``).
struct RateSample {
    var at: UInt64
    var added: Int
    var dispatched: Int
    var addRate: Double
    var dispatchRate: Double
}

/// One queue of the store: its matching-core queue and its backlog state.
///
/// An idle queue is this object, its lock and the matching core's two small queue objects of
/// its name: no file, no ring, no lane (see `TaskStoreMemoryTests`).
final class QueueState: Sendable {
    let key: QueueKey
    let matching: TaskQueue<TaskEnvelope>
    let state: LockedValue<QueueBacklog>

    init(key: QueueKey, matching: TaskQueue<TaskEnvelope>) {
        self.key = key
        self.matching = matching
        self.state = LockedValue(QueueBacklog())
    }

    var name: String { key.name }
    var kind: TaskQueueKind { key.kind }
}
