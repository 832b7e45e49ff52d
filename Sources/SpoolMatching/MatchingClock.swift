#if canImport(Glibc)
import Glibc
#endif
import Synchronization
import SpoolPrimitives

/// A point in time on a ``MatchingClock``: nanoseconds since an arbitrary origin.
public struct MatchingInstant: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// Nanoseconds since the clock's origin.
    public var nanoseconds: UInt64

    /// The instant `nanoseconds` after the clock's origin.
    @inlinable public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    /// The instant `duration` later (earlier for a negative one), saturating at the origin.
    @inlinable
    public func advanced(by duration: Duration) -> MatchingInstant {
        let delta = duration.matchingNanoseconds
        if delta >= 0 { return MatchingInstant(nanoseconds: nanoseconds &+ UInt64(delta)) }
        let back = UInt64(-delta)
        return MatchingInstant(nanoseconds: nanoseconds > back ? nanoseconds - back : 0)
    }

    /// The time from `earlier` to this instant, zero if `earlier` is later.
    @inlinable
    public func duration(since earlier: MatchingInstant) -> Duration {
        nanoseconds > earlier.nanoseconds ? .nanoseconds(Int64(nanoseconds - earlier.nanoseconds)) : .zero
    }

    /// Whether `a` comes before `b` on the clock.
    @inlinable public static func < (a: MatchingInstant, b: MatchingInstant) -> Bool { a.nanoseconds < b.nanoseconds }
    /// The nanoseconds since the origin, such as `1500000000ns`.
    public var description: String { "\(nanoseconds)ns" }
}

extension Duration {
    /// Whole nanoseconds, saturating at ±Int64.max.
    @inlinable
    var matchingNanoseconds: Int64 { saturatingNanoseconds }
}

/// The time source of a ``Dispatcher``: the system's monotonic clock, or a ``ManualMatchingClock``
/// that tests advance by hand so that deadlines, ages and rate limits are checked without
/// wall-clock time.
///
/// The system clock is `CLOCK_MONOTONIC_COARSE` (a few nanoseconds to read, resolution of a
/// scheduler tick, typically 1–4 ms): it stamps every added task, so it must be cheap, and
/// schedule-to-start deadlines and backlog ages need no finer resolution.
public struct MatchingClock: Sendable {
    @usableFromInline let manual: ManualMatchingClock?

    @usableFromInline init(manual: ManualMatchingClock?) { self.manual = manual }

    /// The system's monotonic clock.
    public static var system: MatchingClock { MatchingClock(manual: nil) }

    /// A clock that moves only when `clock` is advanced.
    public static func manual(_ clock: ManualMatchingClock) -> MatchingClock { MatchingClock(manual: clock) }

    /// The current instant.
    @inlinable @inline(__always)
    public func now() -> MatchingInstant {
        if let manual { return manual.now() }
        return Self.systemNow()
    }

    /// The current instant from the precise monotonic clock (same origin as ``now()``, which
    /// may lag it by a scheduler tick). Rate limiters read it: a grant stamped with the coarse
    /// clock could come up to a tick early in real time, letting a 1-second window hold one
    /// task more than the rate.
    @usableFromInline
    func preciseNow() -> MatchingInstant {
        if let manual { return manual.now() }
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return MatchingInstant(nanoseconds: UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec))
    }

    @inlinable @inline(__always)
    static func systemNow() -> MatchingInstant {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &time)
        return MatchingInstant(nanoseconds: UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec))
    }

    /// Suspends until `deadline` on this clock; throws `CancellationError` when the task is cancelled.
    public func sleep(until deadline: MatchingInstant) async throws {
        if let manual {
            try await manual.sleep(until: deadline)
            return
        }
        let now = self.now()
        guard deadline > now else { return }
        // The coarse clock may lag the precise one by a tick; sleeping one tick more never wakes early.
        try await Task.sleep(for: deadline.duration(since: now) + .milliseconds(4))
    }
}

/// A clock for tests: it starts at `start` and moves only through ``advance(by:)`` or ``set(to:)``,
/// which also wake the sleepers whose deadline has come.
public final class ManualMatchingClock: Sendable {
    private let nanoseconds: Atomic<UInt64>
    private let sleepers = SleeperList()

    /// Creates a clock reading `start`.
    public init(start: MatchingInstant = MatchingInstant(nanoseconds: 1_000_000_000)) {
        nanoseconds = Atomic(start.nanoseconds)
    }

    /// The current instant.
    @inlinable @inline(__always)
    public func now() -> MatchingInstant { MatchingInstant(nanoseconds: load()) }

    @usableFromInline func load() -> UInt64 { nanoseconds.load(ordering: .acquiring) }

    /// Moves the clock forward by `duration` and wakes every sleeper whose deadline has come.
    public func advance(by duration: Duration) {
        let delta = UInt64(max(0, duration.matchingNanoseconds))
        let now = nanoseconds.add(delta, ordering: .acquiringAndReleasing).newValue
        sleepers.wake(upTo: now)
    }

    /// Sets the clock to `instant` if that is later than now, and wakes due sleepers.
    public func set(to instant: MatchingInstant) {
        var current = nanoseconds.load(ordering: .relaxed)
        while current < instant.nanoseconds {
            let (exchanged, original) = nanoseconds.compareExchange(
                expected: current, desired: instant.nanoseconds, ordering: .acquiringAndReleasing)
            if exchanged { break }
            current = original
        }
        sleepers.wake(upTo: nanoseconds.load(ordering: .acquiring))
    }

    /// The number of tasks sleeping on this clock (tests wait for it to settle before advancing).
    public var sleeperCount: Int { sleepers.count }

    func sleep(until deadline: MatchingInstant) async throws {
        try await sleepers.sleep(until: deadline.nanoseconds) { [self] in load() }
    }
}

/// The sleepers of a manual clock, under a lock (a test clock: nothing here is on a hot path).
final class SleeperList {
    // All fields are guarded by `lock`.
    private let lock = ThreadLock()
    private var waiting: [UInt64: (deadline: UInt64, continuation: UnsafeContinuation<Void, any Error>)] = [:]
    private var cancelledEarly: Set<UInt64> = []
    private var nextID: UInt64 = 0

    var count: Int { lock.withLock { waiting.count } }

    func sleep(until deadline: UInt64, now: @escaping () -> UInt64) async throws {
        let id = lock.withLock { () -> UInt64 in nextID += 1; return nextID }
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                let outcome: Int = lock.withLock {
                    if cancelledEarly.remove(id) != nil { return 2 }
                    if now() >= deadline { return 1 }
                    waiting[id] = (deadline, continuation)
                    return 0
                }
                if outcome == 1 { continuation.resume() }
                if outcome == 2 { continuation.resume(throwing: CancellationError()) }
            }
        } onCancel: {
            let continuation: UnsafeContinuation<Void, any Error>? = lock.withLock {
                if let entry = waiting.removeValue(forKey: id) { return entry.continuation }
                cancelledEarly.insert(id)
                return nil
            }
            continuation?.resume(throwing: CancellationError())
        }
    }

    func wake(upTo now: UInt64) {
        let due: [UnsafeContinuation<Void, any Error>] = lock.withLock {
            let ids = waiting.filter { $0.value.deadline <= now }.map(\.key)
            return ids.compactMap { waiting.removeValue(forKey: $0)?.continuation }
        }
        for continuation in due { continuation.resume() }
    }
}

// Every field of a sleeper list is guarded by its lock; continuations are resumed outside it.
extension SleeperList: @unchecked Sendable {}
