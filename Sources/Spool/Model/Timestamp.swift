#if canImport(Glibc)
import Glibc
#endif
import SpoolMatching
import SpoolPrimitives

/// A point in wall-clock time: nanoseconds since the Unix epoch (UTC), as Temporal's
/// `google.protobuf.Timestamp` fields (`eventTime`, `startTime`, …) carry it.
///
/// Deadlines of durable timers are stored as timestamps, so that a timer set before a crash
/// fires at the right moment (or at once, late) after the process restarts.
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Nanoseconds since 1970-01-01T00:00:00Z.
    public var nanosecondsSinceEpoch: Int64

    /// The timestamp `nanosecondsSinceEpoch` nanoseconds after the epoch.
    public init(nanosecondsSinceEpoch: Int64) { self.nanosecondsSinceEpoch = nanosecondsSinceEpoch }

    /// The timestamp `duration` later (earlier for a negative duration), saturating.
    public func advanced(by duration: Duration) -> Timestamp {
        Timestamp(nanosecondsSinceEpoch: nanosecondsSinceEpoch.addingSaturating(duration.nanoseconds))
    }

    /// The time from `earlier` to this timestamp (negative when `earlier` is later).
    public func duration(since earlier: Timestamp) -> Duration {
        .nanoseconds(nanosecondsSinceEpoch.subtractingSaturating(earlier.nanosecondsSinceEpoch))
    }

    public static func < (a: Timestamp, b: Timestamp) -> Bool { a.nanosecondsSinceEpoch < b.nanosecondsSinceEpoch }

    public var description: String {
        let seconds = nanosecondsSinceEpoch / 1_000_000_000
        let fraction = (nanosecondsSinceEpoch % 1_000_000_000 + 1_000_000_000) % 1_000_000_000
        var text = String(fraction / 1_000_000)
        while text.count < 3 { text = "0" + text }
        return "\(seconds).\(text)s"
    }
}

/// The engine's time source: the system's real-time clock, or a ``ManualMatchingClock`` that
/// tests move by hand so that every timeout, retry and timer is tested without sleeping.
///
/// A manual clock's instants are read as nanoseconds since the Unix epoch. The engine hands the
/// same clock to its task dispatcher, so poll timeouts follow it too.
public struct EngineClock: Sendable {
    let manual: ManualMatchingClock?

    /// `CLOCK_REALTIME`: event times and timer deadlines survive restarts.
    public static var system: EngineClock { EngineClock(manual: nil) }

    /// A clock that moves only when `clock` is advanced.
    public static func manual(_ clock: ManualMatchingClock) -> EngineClock { EngineClock(manual: clock) }

    /// The current time.
    public func now() -> Timestamp {
        if let manual { return Timestamp(nanosecondsSinceEpoch: Int64(clamping: manual.now().nanoseconds)) }
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Timestamp(nanosecondsSinceEpoch: Int64(time.tv_sec) &* 1_000_000_000 &+ Int64(time.tv_nsec))
    }

    /// The clock the task dispatcher uses for poll deadlines.
    var matchingClock: MatchingClock { manual.map { .manual($0) } ?? .system }

    /// `time` on the dispatcher's clock, for a task's enqueue time and schedule-to-start
    /// deadline: the same nanoseconds for a manual clock; for the system clock, the monotonic
    /// instant that lies as far from the monotonic now as `time` lies from the real-time now
    /// (clamped at the monotonic clock's start, the boot: an age that began before it shows as
    /// the time since boot).
    func matchingInstant(_ time: Timestamp) -> MatchingInstant {
        if manual != nil { return MatchingInstant(nanoseconds: UInt64(clamping: time.nanosecondsSinceEpoch)) }
        let monotonic = MatchingClock.system.now().nanoseconds
        let ahead = time.nanosecondsSinceEpoch.subtractingReportingOverflow(now().nanosecondsSinceEpoch)
        if ahead.overflow { return MatchingInstant(nanoseconds: time.nanosecondsSinceEpoch < 0 ? 0 : .max) }
        if ahead.partialValue >= 0 {
            let (sum, overflow) = monotonic.addingReportingOverflow(UInt64(ahead.partialValue))
            return MatchingInstant(nanoseconds: overflow ? .max : sum)
        }
        let behind = ahead.partialValue.magnitude
        return MatchingInstant(nanoseconds: monotonic > behind ? monotonic - behind : 0)
    }

    /// The engine time of `instant` on the dispatcher's clock (a poller's last poll): the inverse
    /// of ``matchingInstant(_:)``.
    func timestamp(_ instant: MatchingInstant) -> Timestamp {
        if manual != nil { return Timestamp(nanosecondsSinceEpoch: Int64(clamping: instant.nanoseconds)) }
        let behind = Int64(clamping: MatchingClock.system.now().nanoseconds) &- Int64(clamping: instant.nanoseconds)
        return Timestamp(nanosecondsSinceEpoch: now().nanosecondsSinceEpoch &- behind)
    }

    /// Suspends until `deadline`; throws `CancellationError` when the calling task is cancelled.
    func sleep(until deadline: Timestamp) async throws {
        if let manual {
            try await MatchingClock.manual(manual).sleep(until: MatchingInstant(nanoseconds: UInt64(max(0, deadline.nanosecondsSinceEpoch))))
            return
        }
        let remaining = deadline.duration(since: now())
        if remaining > .zero { try await Task.sleep(for: remaining) }
    }
}

extension Duration {
    /// Whole nanoseconds, saturating at ±Int64.max.
    var nanoseconds: Int64 { saturatingNanoseconds }
}

extension Int64 {
    func addingSaturating(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }

    func subtractingSaturating(_ other: Int64) -> Int64 {
        let (difference, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other < 0 ? .max : .min) : difference
    }
}
