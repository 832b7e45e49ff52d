import Synchronization

/// A worker's handle for polling one queue: its identity, and the maximum rate at which it
/// accepts tasks, enforced before hand-over (the worker is not given a task it would have to
/// buffer). The queue lists the pollers it has seen with their last poll time.
///
/// Get one from ``TaskQueue/poller(identity:maxTasksPerSecond:)`` and reuse it for every poll:
/// registration takes a lock, polls through the handle do not.
public final class TaskPoller: Sendable {
    /// The worker's identity, as shown by ``TaskQueue/describe()``.
    public let identity: String
    /// The worker's own rate limit, if any.
    public let maxTasksPerSecond: Double?
    @usableFromInline let limiter: RateLimiter?
    @usableFromInline let lastPollNanoseconds = Atomic<UInt64>(0)
    @usableFromInline let dispatched = Atomic<Int>(0)
    /// The partition this poller waits in (pollers are spread round-robin).
    @usableFromInline let partitionHint: Int

    init(identity: String, maxTasksPerSecond: Double?, partitionHint: Int) {
        self.identity = identity
        self.maxTasksPerSecond = maxTasksPerSecond
        self.partitionHint = partitionHint
        limiter = maxTasksPerSecond.map { RateLimiter(RateLimit(perSecond: $0)) }
    }

    /// How long a poller stays listed after its last poll (Temporal matching's `pollerHistoryTTL`,
    /// 5 minutes): ``TaskQueue/describe()`` leaves out pollers that have not polled for longer.
    public static let historyTTL: Duration = .seconds(300)

    /// Whether the poller has polled within ``historyTTL`` of `now`.
    public func isLive(at now: MatchingInstant) -> Bool { now.duration(since: lastPoll) < Self.historyTTL }

    /// The last time this poller polled.
    public var lastPoll: MatchingInstant { MatchingInstant(nanoseconds: lastPollNanoseconds.load(ordering: .relaxed)) }
    /// Tasks handed to this poller.
    public var dispatchedCount: Int { dispatched.load(ordering: .relaxed) }
}
