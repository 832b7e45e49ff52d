import DequeModule
import SpoolMatching

/// Tasks whose ids carry this bit were added with ``TaskStore/addRecordedElsewhere(_:to:kind:options:)``:
/// they have no record in the queue log (their id is the caller's, tagged), are never counted
/// in the ack level, and their completion writes nothing.
let externalIDBit: UInt64 = 1 << 63

@inline(__always) func isExternal(_ id: UInt64) -> Bool { id & externalIDBit != 0 }

/// A task in the matching core's window.
struct HotEntry {
    let queue: QueueState
    var priority: UInt8
    var addedAt: UInt64
    var bytes: Int32
}

/// A task delivered to a poller and not yet completed or failed.
struct InFlightEntry {
    let queue: QueueState
    var priority: UInt8
    var attempt: UInt32
    /// The visibility deadline (clock nanoseconds).
    var deadline: UInt64
    /// Set by the one `fail` or visibility-timeout handler that took the task, so that no
    /// other can take it or complete it meanwhile.
    var retrying = false
    /// For a task recorded elsewhere, the task itself (the queue log has no copy of it).
    var retained: MatchedTask?
}

/// A task waiting out a retry backoff.
struct DelayedEntry {
    let queue: QueueState
    var priority: UInt8
    var due: UInt64
    var retained: MatchedTask?
}

/// A dead letter.
struct DeadEntry {
    let queue: QueueState
    var priority: UInt8
    var retained: MatchedTask?
    var reason: String?
}

/// Store-wide bookkeeping behind one lock: which log offsets are still live (for the ack
/// level), and the tasks in memory, in flight, delayed or dead.
///
/// The ack level is kept by *buckets* of 2¹⁶ offsets: each counts the live tasks whose record
/// is in it, plus appends in progress whose offset will be at least its start. The ack level
/// is the start of the first non-zero bucket (or the log's end when there is none): every task
/// record below it is acknowledged, so segments below it can be deleted and reopen can start
/// there. An update is an array index, not a search; memory is 4 bytes per 65,536 offsets.
struct Ledger {
    /// log2 of the offsets per bucket (``TaskStoreConfiguration/ackBucketShift``).
    let bucketShift: UInt64

    init(bucketShift: Int) { self.bucketShift = UInt64(bucketShift) }

    var bucketBase: UInt64 = 0
    var buckets: Deque<Int32> = []
    var hot: [UInt64: HotEntry] = [:]
    var inFlight: [UInt64: InFlightEntry] = [:]
    var delayed: [UInt64: DelayedEntry] = [:]
    /// Delayed ids ordered by due time.
    var delayedOrder: Deque<(due: UInt64, id: UInt64)> = []
    var dead: [UInt64: DeadEntry] = [:]
    /// The earliest visibility deadline in flight (a lower bound: completions do not raise it).
    var nextVisibilityDeadline: UInt64 = .max

    // The ack writer.
    var pendingAcks: [UInt64] = []
    var ackWriterRunning = false
    var ackBatchesIssued: UInt64 = 0
    var ackBatchesDone: UInt64 = 0
    var flushWaiters: [(target: UInt64, continuation: CheckedContinuation<Void, Never>)] = []

    mutating func retain(_ offset: UInt64) { retain(offset, count: 1) }

    /// Counts `count` live tasks in the bucket of `offset` (a replay's tally, in one update).
    mutating func retain(_ offset: UInt64, count: Int32) {
        if isExternal(offset) || count == 0 { return }
        let bucket = offset >> bucketShift
        if buckets.isEmpty {
            bucketBase = bucket
            buckets.append(count)
            return
        }
        if bucket < bucketBase {
            buckets.insert(contentsOf: repeatElement(0, count: Int(bucketBase - bucket)), at: 0)
            bucketBase = bucket
        }
        let index = Int(bucket - bucketBase)
        if index >= buckets.count { buckets.append(contentsOf: repeatElement(0, count: index - buckets.count + 1)) }
        buckets[index] += count
    }

    mutating func release(_ offset: UInt64) {
        if isExternal(offset) { return }
        let bucket = offset >> bucketShift
        guard bucket >= bucketBase, bucket - bucketBase < UInt64(buckets.count) else {
            assertionFailure("release of an offset that was not retained")
            return
        }
        buckets[Int(bucket - bucketBase)] -= 1
        while let first = buckets.first, first == 0 {
            buckets.removeFirst()
            bucketBase += 1
        }
        if buckets.isEmpty { bucketBase = 0 }
    }

    /// Every task record below the returned offset is acknowledged.
    func ackLevel(endOffset: UInt64) -> UInt64 {
        buckets.isEmpty ? endOffset : min(bucketBase << bucketShift, endOffset)
    }

    mutating func insertDelayed(_ id: UInt64, _ entry: DelayedEntry) {
        delayed[id] = entry
        var low = 0, high = delayedOrder.count
        while low < high {
            let mid = (low + high) / 2
            if delayedOrder[mid].due <= entry.due { low = mid + 1 } else { high = mid }
        }
        delayedOrder.insert((entry.due, id), at: low)
    }

    /// The earliest instant at which something is due (a visibility deadline or a retry).
    var nextDue: UInt64 {
        min(nextVisibilityDeadline, delayedOrder.first?.due ?? .max)
    }
}
