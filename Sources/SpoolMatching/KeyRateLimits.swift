#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import SpoolPrimitives

/// The per-fairness-key rate limit of one queue (Temporal's `fairness_keys_rate_limit_default`):
/// every fairness key may be dispatched at most `rate × weight` times per second, each key with
/// its own token bucket (GCRA, burst 1), shared by all the queue's partitions and priorities.
///
/// Lanes consult it under their own lock when they choose a keyed task (see
/// `FairnessScheduler.popKeyed(admit:)`): a key over its rate is skipped and the next key in
/// stride order goes instead. A task whose schedule-to-start deadline has passed is let through
/// without a token (the poller drops it), so an expired task takes no token. Unkeyed tasks are
/// not limited by it.
@usableFromInline
final class KeyRateLimits: @unchecked Sendable {
    let context: DispatcherContext
    /// Set while a rate is configured (then every keyed pop looks at the buckets).
    let active = Atomic<Bool>(false)
    private let lock = ThreadLock()
    // Guarded by `lock`.
    private var rate: RateLimit?
    /// Each key's theoretical arrival time (nanoseconds).
    private var arrivals: [String: UInt64] = [:]

    /// How late a token may be taken and still keep its key's schedule (nanoseconds).
    static var lateness: UInt64 { 10_000_000 }

    /// Keys remembered before idle ones (whose bucket is full again) are forgotten.
    static var pruneThreshold: Int { 4096 }

    init(context: DispatcherContext) { self.context = context }

    var isActive: Bool { active.load(ordering: .acquiring) }

    func now() -> UInt64 { context.clock.preciseNow().nanoseconds }

    var currentRate: RateLimit? { lock.withLock { rate } }

    /// Bytes allocated: the object, its lock, and the buckets of keys seen under a rate.
    var allocatedBytes: Int {
        mallocSize(of: self) + mallocSize(of: lock) + MemoryLayout<pthread_mutex_t>.size
            + lock.withLock { arrivals.capacity * (MemoryLayout<String>.stride + MemoryLayout<UInt64>.stride) }
    }

    /// Sets the rate per key of weight 1 (0: keyed tasks are held back; nil: no limit). Buckets carry over.
    func set(_ limit: RateLimit?) {
        lock.withLock {
            rate = limit
            if limit == nil { arrivals.removeAll() }
        }
        active.store(limit != nil, ordering: .releasing)
    }

    /// Takes a token for `key` (weight in thousandths) at `now` and returns nil, or returns the
    /// instant (nanoseconds) its next token is due without taking one (`UInt64.max`: never, at rate 0).
    func take(_ key: String, weightThousandths: UInt64, now: UInt64) -> UInt64? {
        lock.withLock { () -> UInt64? in
            guard let rate else { return nil }
            guard rate.perSecond > 0 else { return .max }
            let perSecond = rate.perSecond * Double(max(1, weightThousandths)) / 1000
            let interval = UInt64(max(1, (1e9 / perSecond).rounded()))
            let tolerance = interval &* UInt64(max(0, rate.burst - 1))
            let arrival = arrivals[key] ?? 0
            // A token taken a little after it was due (a poller woken late, the coarse clock)
            // keeps the key's schedule, so lateness does not slow the key down; a key idle for
            // longer starts a new schedule. Tokens are never earlier than the schedule.
            let late = now > arrival ? now - arrival : 0
            let start = late <= min(interval, Self.lateness) ? arrival : now
            let allowed = max(now, start > tolerance ? start - tolerance : 0)
            if allowed > now { return allowed }
            if arrivals.count >= Self.pruneThreshold && arrivals[key] == nil {
                arrivals = arrivals.filter { $0.value > now }
            }
            arrivals[key] = start &+ interval
            return nil
        }
    }
}
