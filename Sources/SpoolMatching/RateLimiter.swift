import Synchronization

/// A lock-free rate limiter: the generic cell rate algorithm (GCRA), whose whole state is one
/// atomic *theoretical arrival time* (TAT) advanced by compare-and-swap.
///
/// With emission interval `T = 1 s / rate` and tolerance `τ = T × (burst − 1)`, a token is
/// available at `now` iff `max(TAT, now) − τ ≤ now`; taking it sets `TAT = max(TAT, now) + T`.
/// Over any window of length `W` at most `W / T + burst` tokens are taken.
@usableFromInline
final class RateLimiter: Sendable {
    @usableFromInline let interval = Atomic<UInt64>(0)
    @usableFromInline let tolerance = Atomic<UInt64>(0)
    @usableFromInline let theoreticalArrival = Atomic<UInt64>(0)

    init() {}

    init(_ limit: RateLimit) { set(limit) }

    /// Applies a new rate (perSecond > 0); the TAT carries over.
    func set(_ limit: RateLimit) {
        let nanos = limit.perSecond > 0 ? UInt64(max(1, (1e9 / limit.perSecond).rounded())) : 0
        interval.store(nanos, ordering: .releasing)
        tolerance.store(nanos &* UInt64(max(0, limit.burst - 1)), ordering: .releasing)
    }

    /// Takes a token if one is available at `now`.
    @usableFromInline
    func tryAcquire(now: UInt64) -> Bool {
        reserve(now: now, notAfter: now) != nil
    }

    /// Takes the next token and returns when it may be used (`now` if at once), or nil without
    /// taking it if that is later than `notAfter`.
    @usableFromInline
    func reserve(now: UInt64, notAfter: UInt64?) -> UInt64? {
        let interval = self.interval.load(ordering: .acquiring)
        guard interval > 0 else { return now }
        let tolerance = self.tolerance.load(ordering: .acquiring)
        var arrival = theoreticalArrival.load(ordering: .relaxed)
        while true {
            let start = max(arrival, now)
            let allowed = max(now, start > tolerance ? start - tolerance : 0)
            if let notAfter, allowed > notAfter { return nil }
            let (exchanged, original) = theoreticalArrival.weakCompareExchange(
                expected: arrival, desired: start &+ interval, successOrdering: .acquiringAndReleasing, failureOrdering: .relaxed)
            if exchanged { return allowed }
            arrival = original
        }
    }

    /// Moves the next token to no earlier than one interval after `now` (with the burst's
    /// tolerance), unless it is already later: the interval then runs from when the last token
    /// was actually used rather than from when it was granted.
    func restart(from now: UInt64) {
        let interval = self.interval.load(ordering: .acquiring)
        guard interval > 0 else { return }
        let earliest = now &+ interval
        var arrival = theoreticalArrival.load(ordering: .relaxed)
        while arrival < earliest {
            let (exchanged, original) = theoreticalArrival.weakCompareExchange(
                expected: arrival, desired: earliest, successOrdering: .acquiringAndReleasing, failureOrdering: .relaxed)
            if exchanged { return }
            arrival = original
        }
    }

    /// Gives back a token taken by ``reserve(now:notAfter:)`` that was not used.
    @usableFromInline
    func refund() {
        let interval = self.interval.load(ordering: .acquiring)
        guard interval > 0 else { return }
        var arrival = theoreticalArrival.load(ordering: .relaxed)
        while arrival >= interval {
            let (exchanged, original) = theoreticalArrival.weakCompareExchange(
                expected: arrival, desired: arrival - interval, successOrdering: .acquiringAndReleasing, failureOrdering: .relaxed)
            if exchanged { return }
            arrival = original
        }
    }
}
