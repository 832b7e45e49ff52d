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

/// The lock-free hand-off from appending callers (any number of tasks and threads) to the thread
/// that writes (the writer thread, or with ``routesToSyncers`` a syncer about to sync): a Treiber
/// stack that callers push onto with one compare-and-swap, and that the writing thread empties
/// with one exchange and reverses into arrival order.
///
/// Callers never take a lock: one that pushes onto a stack the writer is sleeping on takes the
/// wake-up lock only to signal it (with syncers that write, the log's pipeline lock to signal an
/// idle syncer, see ``idleSyncers``). Sleeping is announced through `sleeping` with sequentially
/// consistent operations on both sides, so either the caller sees the writer asleep, or the
/// writer sees the pushed request before it sleeps.
///
/// Refusal lives in the stack's head too: its low bit (requests are word-aligned objects, so a
/// pointer never has it) is set once the log accepts no more appends, and a push compares
/// against a head without it. So the push *is* the admission check, one compare-and-swap in
/// all: a request either went onto the stack before the bit was set, where the writer will
/// find it, or is refused. (Before, an admission counter and a separate flag cost every append
/// two more read-modify-writes on the same contended line, and `close()` had to wait out the
/// callers between their check and their push.)
final class AppendIntake {
    /// The newest request's unmanaged reference, 0 for none, `| refusedBit` once refusing.
    private let head = Atomic<UInt>(0)
    private static let refusedBit: UInt = 1
    private let sleeping = Atomic<Bool>(false)
    #if DEBUG
    /// Requests pushed so far (debug builds only, for tests that must know a request is in the
    /// intake before they let the thread that takes it go on).
    private let pushes = Atomic<Int>(0)
    var pushCountForTesting: Int { pushes.load(ordering: .sequentiallyConsistent) }
    #endif
    /// Set before the log's threads start when its syncers take and write requests themselves
    /// (``Log/syncersWrite``): a push then never wakes the writer thread.
    var routesToSyncers = false
    /// Syncers waiting with no deadline (kept by them under the log's pipeline lock, read by
    /// pushes): a push wakes one when there is one. A syncer counts itself before it looks at the
    /// intake a last time, and a push is in the intake before it reads this count: of the two, one
    /// sees the other (sequentially consistent), so no request waits for a syncer that sleeps on.
    /// Every other syncer has a sync in flight or a deadline, and looks at the intake when it ends.
    let idleSyncers = Atomic<Int>(0)
    /// Set by `close()` (after ``refuse()``): the writer stops once the intake is empty. A log
    /// that only refuses (poisoned) keeps its writer asleep until a request or this comes.
    let stopping = Atomic<Bool>(false)
    /// How many times ``waitForRequests()`` returned: a writer that sleeps returns about once per
    /// push it was woken for, a spinning one millions of times a second.
    let writerWakeups = Atomic<Int>(0)
    private let lock = ThreadLock()
    private let wakeup = ThreadCondition()
    /// Set by ``wake()``, cleared when the writer returns from ``waitForRequests()``. Guarded by `lock`.
    private var wakeRequested = false
    /// How many requests the last ``takeAll()`` returned; used under the log's `writeLock` only.
    private var lastTakeCount = 0

    deinit {
        for request in takeAll() {
            request.continuation.resume(returning: .failure(LogError(.closed, "the log was closed")))
        }
    }

    /// Whether requests are waiting to be taken.
    var isEmpty: Bool { head.load(ordering: .sequentiallyConsistent) & ~Self.refusedBit == 0 }

    /// From now on every ``push(_:)`` returns false. Requests already pushed stay for the writer.
    /// Called (under the log's `pipelineLock`) before the log records why it refuses
    /// (`closing`, `failure`), so a refused caller that takes that lock finds the reason.
    func refuse() {
        head.bitwiseOr(Self.refusedBit, ordering: .sequentiallyConsistent)
    }

    /// Pushes `request` for the writer, or returns false (taking nothing) once ``refuse()`` was called.
    func push(_ request: AppendRequest) -> Bool {
        var current = head.load(ordering: .relaxed)
        if current & Self.refusedBit != 0 { return false }
        let raw = UInt(bitPattern: Unmanaged.passRetained(request).toOpaque())
        while true {
            request.next = current
            let (exchanged, original) = head.weakCompareExchange(
                expected: current, desired: raw, successOrdering: .sequentiallyConsistent, failureOrdering: .relaxed)
            if exchanged { break }
            current = original
            if current & Self.refusedBit != 0 {
                Unmanaged<AppendRequest>.fromOpaque(UnsafeRawPointer(bitPattern: raw)!).release()
                return false
            }
        }
        #if DEBUG
        pushes.add(1, ordering: .sequentiallyConsistent)
        #endif
        // With syncers that write (`routesToSyncers`) the writer thread is never woken: `Log.submit`
        // wakes an idle syncer instead, if there is one.
        if !routesToSyncers && sleeping.load(ordering: .sequentiallyConsistent) {
            lock.withLock { wakeup.signal() }
        }
        return true
    }

    /// Every request pushed so far, oldest first. Keeps the refused bit.
    func takeAll() -> [AppendRequest] {
        var raw = head.bitwiseAnd(Self.refusedBit, ordering: .sequentiallyConsistent).oldValue & ~Self.refusedBit
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
    /// With ``routesToSyncers`` the requests are the syncers' to take, so it waits for ``wake()``
    /// or ``stopping`` only, and does not race the syncers for what a push leaves in the intake.
    /// It takes no closure on purpose: a waiting writer must not keep its log alive.
    func waitForRequests() {
        lock.lock()
        sleeping.store(true, ordering: .sequentiallyConsistent)
        while !wakeRequested && (routesToSyncers || isEmpty) && !stopping.load(ordering: .sequentiallyConsistent) {
            wakeup.wait(lock)
        }
        wakeRequested = false
        sleeping.store(false, ordering: .sequentiallyConsistent)
        lock.unlock()
        writerWakeups.add(1, ordering: .relaxed)
    }

    /// Wakes the writer so it re-checks its stop condition and takes what the intake holds.
    func wake() {
        lock.withLock {
            wakeRequested = true
            wakeup.signal()
        }
    }
}

// `head`, `sleeping` and `idleSyncers` are atomics, `routesToSyncers` is set before the log's threads
// start, `wakeRequested` is guarded by `lock`, `lastTakeCount` is used under the log's `writeLock`;
// requests are handed over through `head` with release/acquire (sequentially consistent) ordering,
// so their fields are written before the push and read only by the thread that takes them.
extension AppendIntake: @unchecked Sendable {}
extension AppendRequest: @unchecked Sendable {}
