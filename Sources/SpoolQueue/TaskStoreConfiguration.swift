import Logging
import SpoolLog
import SpoolMatching
import SpoolPrimitives

/// Settings of a ``TaskStore``. Every value is checked by ``TaskStore/open(directory:configuration:clock:)``,
/// which throws ``QueueError/Code/invalidConfiguration`` naming the field that is out of range.
public struct TaskStoreConfiguration: Sendable {
    /// The queue log's settings, durability first: ``TaskStore/add(_:to:kind:options:)`` returns once
    /// the task is acknowledged under `log.durability`. Default: a bare log's: `.sync`, 128 MiB
    /// segments, one `fdatasync` in flight at a time (``LogConfiguration/concurrentSyncs`` 1). A
    /// task store's syncer threads share the cores with its pollers and completions: on a 2-core
    /// machine one syncer gave about a quarter more tasks/s than three in `spool bench queue`
    /// (medians of 7 alternating runs: 73k against 59k).
    public var log = LogConfiguration()
    /// The matching core's settings (partitions, ring sizes). Its `onExpired` is chained after
    /// the store's own handling of expired tasks.
    public var dispatcher: DispatcherConfiguration = DispatcherConfiguration()
    /// Where the store reports what it repaired by itself (a damaged checkpoint it rebuilt from
    /// the log, at open) as warnings. Default: label `spool.queue`.
    public var logger = Logger(label: "spool.queue")
    /// A task delivered by ``TaskStore/poll(_:kind:timeout:poller:)`` and neither completed nor
    /// failed within this time is redelivered (at-least-once). Default 30 s.
    public var visibilityTimeout: Duration = .seconds(30)
    /// Deliveries a task gets before it moves to the dead-letter queue: a task whose attempt
    /// number reaches this and then fails (or times out) is dead-lettered. Default 5.
    public var maxAttempts: Int = 5
    /// The delay before the second attempt of a failed task. Default 1 s.
    public var retryInitialInterval: Duration = .seconds(1)
    /// Each further retry waits this many times longer than the previous one. Default 2.
    public var retryBackoffCoefficient: Double = 2
    /// The longest delay between retries. Default 100 s.
    public var retryMaximumInterval: Duration = .seconds(100)
    /// Payload bytes the store keeps in memory across all queues (the matching core's window).
    /// Tasks beyond it wait as 8-byte log positions and are read back in batches of
    /// ``refillBatchSize`` when a queue's window runs low. Default 64 MiB.
    ///
    /// The bound is soft by at most one refill batch per queue being polled: a queue with fewer
    /// than ``refillBatchSize`` tasks in memory is always refilled, so no poller waits while its
    /// queue has tasks on disk.
    public var memoryBudgetBytes: Int = 64 << 20
    /// Tasks read back from the log per refill. Default 256.
    public var refillBatchSize: Int = 256
    /// How often the ack level is checkpointed and fully acknowledged segments are deleted. Default 1 s.
    public var checkpointInterval: Duration = .seconds(1)

    /// When the log has at least this many segments and the oldest is kept alive only by a few
    /// dead letters, retries waiting out a backoff, or tasks waiting on disk (a paused queue's),
    /// the background checkpoint copies them to the head of the log so that the segment can be
    /// deleted. Default 4.
    public var relocationSegmentThreshold: Int = 4
    /// When and how fast the store compacts its log while it runs (see ``OnlineCompactionPolicy``
    /// and ``TaskStore/compactOnline(force:)``). On by default: rewriting only starts once the
    /// sealed segments hold at least 8 MiB and 25% of dead records, at most 64 MiB/s.
    public var onlineCompaction = OnlineCompactionPolicy()
    /// log2 of the log offsets per ack-level bucket: the ack level moves in steps of this many
    /// offsets. 16 (65,536 records, a few MiB of log) is fine against 128 MiB segments; tests
    /// with tiny segments lower it.
    var ackBucketShift = 16

    /// The defaults described on each property.
    public init() {}

    /// Whether the store only reads its directory (``log``'s `access` is `.readOnly`).
    var isReadOnly: Bool { log.access == .readOnly }

    /// The defaults with the given log durability.
    public init(durability: Durability) {
        log.durability = durability
    }

    func validate() throws(QueueError) {
        func fail(_ field: String, _ value: Any, _ rule: String) -> QueueError {
            QueueError(.invalidConfiguration, "\(field) = \(value) is invalid: \(rule)")
        }
        guard visibilityTimeout > .zero else { throw fail("visibilityTimeout", visibilityTimeout, "must be positive") }
        guard maxAttempts >= 1, maxAttempts <= 1_000_000 else { throw fail("maxAttempts", maxAttempts, "must be between 1 and 1000000") }
        guard retryInitialInterval >= .zero else { throw fail("retryInitialInterval", retryInitialInterval, "must not be negative") }
        guard retryBackoffCoefficient.isFinite, retryBackoffCoefficient >= 1 else {
            throw fail("retryBackoffCoefficient", retryBackoffCoefficient, "must be a finite number ≥ 1")
        }
        guard retryMaximumInterval >= retryInitialInterval else {
            throw fail("retryMaximumInterval", retryMaximumInterval, "must be at least retryInitialInterval")
        }
        guard memoryBudgetBytes >= 0 else { throw fail("memoryBudgetBytes", memoryBudgetBytes, "must not be negative") }
        guard refillBatchSize >= 1, refillBatchSize <= 65_536 else {
            throw fail("refillBatchSize", refillBatchSize, "must be between 1 and 65536")
        }
        guard checkpointInterval > .zero else { throw fail("checkpointInterval", checkpointInterval, "must be positive") }
        guard relocationSegmentThreshold >= 2 else {
            throw fail("relocationSegmentThreshold", relocationSegmentThreshold, "must be at least 2")
        }
        if let (field, value, rule) = onlineCompaction.problem { throw fail("onlineCompaction." + field, value, rule) }
        guard (0...40).contains(ackBucketShift) else { throw fail("ackBucketShift", ackBucketShift, "must be between 0 and 40") }
        do { try dispatcher.validate() } catch { throw .matching(error) }
    }

    /// The backoff before attempt `attempt + 1`, after attempt `attempt` (≥ 1) failed.
    func retryDelay(afterAttempt attempt: Int) -> Duration {
        let initial = Double(retryInitialInterval.nanoseconds)
        let maximum = Double(retryMaximumInterval.nanoseconds)
        var delay = initial
        var step = 1
        while step < attempt && delay < maximum {
            delay *= retryBackoffCoefficient
            step += 1
        }
        return .nanoseconds(Int64(min(delay, maximum)))
    }
}

extension Duration {
    /// Whole nanoseconds, saturating.
    var nanoseconds: Int64 { saturatingNanoseconds }
}
