#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// The time closed-run retention is judged by: the wall clock, bounded at open by the log's own
/// newest event time (plus a slack), advanced by the time that really passes while the engine
/// runs (a monotonic clock), and never going backward.
///
/// `now() = max(previous now(), min(wall clock, base + monotonic time since open))`, where
/// `base = min(wall clock at open, newest event time in the log at open + slack)` and `slack`
/// is the retention less a day (less half the retention when that is under two days): see
/// ``slack(retention:)``.
///
/// - A wall clock that is ahead at open (a misset clock, `faketime`) cannot expire a run whose
///   close is among the newest records, however far ahead it is: such a run closed less than
///   `slack` < retention before the base. At worst it expires runs that closed more than a day
///   (retention − slack) before the newest record.
/// - The slack is what lets downtime count: a store reopened after being down for up to
///   `slack` has its retention applied as if the wall clock were right.
/// - A wall clock that jumps ahead or back while the engine runs does not move retention: the
///   monotonic clock does not jump, and `now()` never goes backward, so a jump back cannot bring
///   a dropped run back or date a new expiry before an old one.
///
/// With a manual ``EngineClock`` the manual clock is the monotonic clock too.
final class RetentionClock: Sendable {
    private let clock: EngineClock
    private let slack: Duration
    private let newestRecord = Atomic<Int64>(Int64.min)
    private let base = Atomic<Int64>(Int64.min)
    private let monotonicAtStart = Atomic<Int64>(0)
    private let horizon = Atomic<Int64>(Int64.min)

    init(clock: EngineClock, retention: Duration?) {
        self.clock = clock
        self.slack = Self.slack(retention: retention)
    }

    /// How far past the log's newest event time the wall clock is believed at open: the
    /// retention less a day, or less half of it when it is under two days.
    static func slack(retention: Duration?) -> Duration {
        guard let retention, retention > .zero else { return .zero }
        let day = Duration.seconds(24 * 3600)
        return retention < day * 2 ? retention / 2 : retention - day
    }

    /// Notes, while the log is replayed, that it holds an event of time `time`.
    func observe(_ time: Timestamp) {
        var current = newestRecord.load(ordering: .relaxed)
        while time.nanosecondsSinceEpoch > current {
            let (exchanged, original) = newestRecord.compareExchange(expected: current, desired: time.nanosecondsSinceEpoch,
                                                                     ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    /// Fixes the base once the log is replayed: from here on ``now()`` advances with the
    /// monotonic clock. A log without events starts at the wall clock (it has nothing to expire).
    func start() {
        let newest = newestRecord.load(ordering: .relaxed)
        let bounded = Self.bound(clock.now(), newestRecord: newest == Int64.min ? nil : Timestamp(nanosecondsSinceEpoch: newest), slack: slack)
        base.store(bounded.nanosecondsSinceEpoch, ordering: .relaxed)
        monotonicAtStart.store(monotonicNanoseconds(), ordering: .relaxed)
    }

    /// The wall clock `wall`, but no later than the newest event time the log holds plus
    /// `slack` (see ``slack(retention:)``); the wall clock itself when the log holds no event.
    /// What ``start()`` takes as its base, and what offline compaction judges retention by.
    static func bound(_ wall: Timestamp, newestRecord: Timestamp?, slack: Duration) -> Timestamp {
        guard let newestRecord else { return wall }
        return min(wall, newestRecord.advanced(by: slack))
    }

    /// The retention horizon: runs closed at least `retention` before it are past retention.
    func now() -> Timestamp {
        let elapsed = max(0, monotonicNanoseconds().subtractingReportingOverflow(monotonicAtStart.load(ordering: .relaxed)).partialValue)
        let start = base.load(ordering: .relaxed)
        let measured = start == Int64.min ? Int64.min : start.addingReportingOverflow(elapsed).overflow ? Int64.max : start + elapsed
        let bounded = min(clock.now().nanosecondsSinceEpoch, measured)
        var current = horizon.load(ordering: .relaxed)
        while bounded > current {
            let (exchanged, original) = horizon.compareExchange(expected: current, desired: bounded, ordering: .relaxed)
            if exchanged { return Timestamp(nanosecondsSinceEpoch: bounded) }
            current = original
        }
        return Timestamp(nanosecondsSinceEpoch: current)
    }

    /// A clock that does not jump with the wall clock: the manual clock in tests, else
    /// `CLOCK_BOOTTIME` (which, unlike `CLOCK_MONOTONIC`, counts a suspended machine's time).
    private func monotonicNanoseconds() -> Int64 {
        if let manual = clock.manual { return Int64(clamping: manual.now().nanoseconds) }
        var time = timespec()
        clock_gettime(CLOCK_BOOTTIME, &time)
        return Int64(time.tv_sec) &* 1_000_000_000 &+ Int64(time.tv_nsec)
    }
}
