import Synchronization
import SpoolPrimitives

/// Where pollers of a paused queue (paused, or rate 0) wait for it to resume.
///
/// Locked: pausing is a control operation, and a poller only comes here when the queue's
/// control word says it is paused.
final class PauseGate {
    // All fields are guarded by `lock`.
    private let lock = ThreadLock()
    private var waiting: [UInt64: UnsafeContinuation<Bool, Never>] = [:]
    private var abandoned: Set<UInt64> = []
    private var nextID: UInt64 = 0

    var count: Int { lock.withLock { waiting.count } }

    /// Waits until ``open()`` or `deadline` (timed by the dispatcher's `deadlines`, like a
    /// suspended poll); true if the gate opened. `isOpen` is checked under the lock so that an
    /// `open()` racing with this call is never missed.
    func wait(until deadline: MatchingInstant?, deadlines: PollDeadlines, isOpen: @escaping @Sendable () -> Bool) async -> Bool {
        let id = lock.withLock { () -> UInt64 in nextID += 1; return nextID }
        let timer: PollDeadline? = deadline.map { deadline in
            let entry = PollDeadline(deadline: deadline) { [self] in abandon(id) }
            deadlines.add(entry)
            return entry
        }
        defer { if let timer { deadlines.ended(timer) } }
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Bool, Never>) in
                let outcome: Bool? = lock.withLock {
                    if abandoned.remove(id) != nil { return false }
                    if isOpen() { return true }
                    waiting[id] = continuation
                    return nil
                }
                if let outcome { continuation.resume(returning: outcome) }
            }
        } onCancel: {
            abandon(id)
        }
    }

    private func abandon(_ id: UInt64) {
        let continuation: UnsafeContinuation<Bool, Never>? = lock.withLock {
            if let continuation = waiting.removeValue(forKey: id) { return continuation }
            abandoned.insert(id)
            return nil
        }
        continuation?.resume(returning: false)
    }

    /// Wakes every waiting poller (call after the control word says open).
    func open() {
        let all: [UnsafeContinuation<Bool, Never>] = lock.withLock {
            let all = Array(waiting.values)
            waiting.removeAll()
            abandoned.removeAll()
            return all
        }
        for continuation in all { continuation.resume(returning: true) }
    }
}

/// The parts of a queue that most queues never use, allocated on first use: its rate limiter,
/// pause gate and poller registry.
@usableFromInline
final class QueueControlBlock {
    @usableFromInline let limiter = RateLimiter()
    let gate = PauseGate()
    // Guarded by `lock`.
    private let lock = ThreadLock()
    private var rateLimit: RateLimit?
    private var pollers: [String: TaskPoller] = [:]

    init() {}

    var currentRateLimit: RateLimit? { lock.withLock { rateLimit } }

    func setRateLimit(_ limit: RateLimit?) {
        lock.withLock {
            rateLimit = limit
            if let limit, limit.perSecond > 0 { limiter.set(limit) }
        }
    }

    /// Records `poller` as the latest poller with its identity, forgetting pollers that have not
    /// polled within ``TaskPoller/historyTTL`` of `now`.
    func register(_ poller: TaskPoller, now: MatchingInstant) {
        lock.withLock {
            pollers = pollers.filter { $0.value.isLive(at: now) }
            pollers[poller.identity] = poller
        }
    }

    var registeredPollers: [TaskPoller] { lock.withLock { Array(pollers.values) } }

    /// The latest poller registered with `identity`, if any.
    func registeredPoller(_ identity: String) -> TaskPoller? { lock.withLock { pollers[identity] } }
}

// The gate's fields are guarded by its lock; continuations are resumed outside it.
extension PauseGate: @unchecked Sendable {}
// The limiter is lock-free and the gate Sendable; `rateLimit` and `pollers` are guarded by the lock.
extension QueueControlBlock: @unchecked Sendable {}
