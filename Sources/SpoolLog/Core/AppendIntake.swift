import Synchronization
import SpoolPrimitives

/// One append (or flush) on its way from a caller to the writer thread.
final class AppendRequest {
    enum Kind {
        case record([UInt8])
        case records([[UInt8]])
        case flush
    }

    let kind: Kind
    let continuation: UnsafeContinuation<Result<UInt64, LogError>, Never>
    /// The request pushed just before this one (the raw bits of an unmanaged reference, 0 for none).
    var next: UInt = 0

    init(_ kind: Kind, _ continuation: UnsafeContinuation<Result<UInt64, LogError>, Never>) {
        self.kind = kind
        self.continuation = continuation
    }

    /// Payload bytes this request adds to a batch (records and their 4-byte lengths).
    var batchBytes: Int {
        switch kind {
        case .record(let bytes): bytes.count + 4
        case .records(let records): records.reduce(0) { $0 + $1.count + 4 }
        case .flush: 0
        }
    }
}

/// The lock-free hand-off from appending callers (any number of tasks and threads) to the one
/// writer thread: a Treiber stack that callers push onto with one compare-and-swap, and that
/// the writer empties with one exchange and reverses into arrival order.
///
/// Callers never take a lock: one that pushes onto a stack the writer is sleeping on takes the
/// wake-up lock only to signal it. Sleeping is announced through `sleeping` with sequentially
/// consistent operations on both sides, so either the caller sees the writer asleep, or the
/// writer sees the pushed request before it sleeps.
final class AppendIntake {
    private let head = Atomic<UInt>(0)
    private let sleeping = Atomic<Bool>(false)
    /// Callers between their admission check and their push; `close()` waits for them.
    let admitting = Atomic<Int>(0)
    /// Set (before the log's `closing` or `failure`) once the log accepts no more appends.
    let refusing = Atomic<Bool>(false)
    /// Set by `close()` (after ``refusing``): the writer stops once the intake is empty. A log
    /// that only refuses (poisoned) keeps its writer asleep until a request or this comes.
    let stopping = Atomic<Bool>(false)
    /// How many times ``waitForRequests()`` returned: a writer that sleeps returns about once per
    /// push it was woken for, a spinning one millions of times a second.
    let writerWakeups = Atomic<Int>(0)
    private let lock = ThreadLock()
    private let wakeup = ThreadCondition()
    /// How many requests the last ``takeAll()`` returned; used by the writer thread only.
    private var lastTakeCount = 0

    deinit {
        for request in takeAll() {
            request.continuation.resume(returning: .failure(LogError(.closed, "the log was closed")))
        }
    }

    /// Whether requests are waiting to be taken.
    var isEmpty: Bool { head.load(ordering: .sequentiallyConsistent) == 0 }

    func push(_ request: AppendRequest) {
        let raw = UInt(bitPattern: Unmanaged.passRetained(request).toOpaque())
        var current = head.load(ordering: .relaxed)
        while true {
            request.next = current
            let (exchanged, original) = head.weakCompareExchange(
                expected: current, desired: raw, successOrdering: .sequentiallyConsistent, failureOrdering: .relaxed)
            if exchanged { break }
            current = original
        }
        if sleeping.load(ordering: .sequentiallyConsistent) {
            lock.withLock { wakeup.signal() }
        }
    }

    /// Every request pushed so far, oldest first.
    func takeAll() -> [AppendRequest] {
        var raw = head.exchange(0, ordering: .sequentiallyConsistent)
        var requests: [AppendRequest] = []
        // Reserved for the last take's count, so that a take of hundreds is not grown (and copied) eight times.
        requests.reserveCapacity(lastTakeCount)
        defer { lastTakeCount = requests.count }
        while raw != 0 {
            let request = Unmanaged<AppendRequest>.fromOpaque(UnsafeRawPointer(bitPattern: raw)!).takeRetainedValue()
            requests.append(request)
            raw = request.next
        }
        requests.reverse()
        return requests
    }

    /// Blocks the writer until a request is pushed or ``stopping`` is set (re-checked after every ``wake()``).
    /// It takes no closure on purpose: a waiting writer must not keep its log alive.
    func waitForRequests() {
        lock.lock()
        sleeping.store(true, ordering: .sequentiallyConsistent)
        while isEmpty && !stopping.load(ordering: .sequentiallyConsistent) { wakeup.wait(lock) }
        sleeping.store(false, ordering: .sequentiallyConsistent)
        lock.unlock()
        writerWakeups.add(1, ordering: .relaxed)
    }

    /// Wakes the writer so it re-checks its stop condition.
    func wake() {
        lock.withLock { wakeup.signal() }
    }
}

// `head`, `sleeping` and `admitting` are atomics, `lastTakeCount` belongs to the writer thread; requests are handed over through `head` with
// release/acquire (sequentially consistent) ordering, so their fields are written before the push
// and read only by the writer after it takes them.
extension AppendIntake: @unchecked Sendable {}
extension AppendRequest: @unchecked Sendable {}
