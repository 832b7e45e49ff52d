import Logging
import SpoolLog

/// The settings of a ``SpoolEngine``.
public struct SpoolEngineConfiguration: Sendable {
    /// The time source of event times, timeouts, retries and timers. Default: the system clock.
    public var clock: EngineClock = .system
    /// The log's settings (durability, segment size). Default: `.sync`, every transition
    /// fdatasync'ed before its call returns (concurrent calls share one fdatasync).
    public var log = LogConfiguration(durability: .sync)
    /// Whether a background task fires due timers. Tests that drive a manual clock turn it off
    /// and call ``SpoolEngine/fireDueTimers()`` after each advance, so that every timer's effect
    /// is durable when that call returns.
    public var firesTimersAutomatically = true
    /// The workflow task start-to-close timeout of starts that name none (Temporal: 10 s).
    public var defaultWorkflowTaskTimeout: Duration = .seconds(10)
    /// The backoff of workflow tasks that keep failing or timing out: attempt 2 goes out at
    /// once, attempt *n* ≥ 3 after `backoff(afterAttempt: n − 2)` (default 1 s, doubling, at
    /// most 10 minutes). Only the intervals and coefficient are used.
    public var workflowTaskRetryPolicy = RetryPolicy(initialInterval: .seconds(1), backoffCoefficient: 2,
                                                     maximumInterval: .seconds(600))
    /// How long a closed run stays after it closed (described, listed, its history readable, its
    /// workflow id taken for reuse policies); then it is dropped and its records become garbage
    /// for log compaction. Nil keeps closed runs for ever. Default 7 days.
    public var closedRunRetention: Duration? = .seconds(7 * 24 * 3600)
    /// A checkpoint is written after this many appends (and on ``SpoolEngine/close()``), so an
    /// open after a crash replays at most about this many records. Nil: only on close.
    public var checkpointEveryRecords: Int? = 100_000
    /// How many runs closed since the last closed-run table a checkpoint keeps in its own file
    /// (decoded at every open) before it merges them into a new table (loaded at open without
    /// decoding a run; the merge rewrites the table, a sequential copy of every closed run).
    /// Lower: faster opens, more merge writes. Default 20,000.
    public var closedRunTableMergeThreshold = 20_000
    /// When and how fast the engine compacts its history log while it runs: the records of runs
    /// dropped by their retention (``closedRunRetention``) go, as ``SpoolEngine/compactHistory(directory:configuration:dryRun:progress:)``
    /// drops them offline. See ``OnlineCompactionPolicy`` and ``SpoolEngine/compactHistoryOnline(force:)``.
    /// On by default (8 MiB and 25% of dead records in the sealed segments, at most 64 MiB/s).
    public var onlineCompaction = OnlineCompactionPolicy()
    /// Where the engine reports what it cannot return to a caller (a timer whose transition failed).
    public var logger = Logger(label: "spool.engine")
    /// Partitions per task queue (1…64) unless its durable settings name another count
    /// (``SpoolEngine/updateTaskQueueConfig(_:)``). Default 4, like Temporal: polls and adds of
    /// a busy queue spread over them, and tasks are forwarded to a partition where a poller waits.
    public var taskQueuePartitions = 4

    /// The default settings.
    public init() {}

    /// Whether the engine only reads its directory (``log``'s `access` is `.readOnly`).
    var isReadOnly: Bool { log.access == .readOnly }
}
