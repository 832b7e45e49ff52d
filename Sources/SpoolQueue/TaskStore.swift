#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolMatching
import Synchronization
import SpoolPrimitives

/// Durable task queues: SpoolMatching's dispatcher in front, one SpoolLog behind.
///
/// ```swift
/// let store = try TaskStore.open(directory: "/var/lib/app/tasks")
/// let id = try await store.add(Array("hello".utf8), to: "emails", kind: .activity)  // durable now
/// if let task = try await store.poll("emails", kind: .activity, timeout: .seconds(60)) {
///     … work …
///     try store.complete(task.id)
/// }
/// try await store.close()
/// ```
///
/// - **Queues** are created on first use by name; each name has a workflow and an activity
///   queue. An idle queue costs a few hundred bytes and no file.
/// - **Add** appends one record to the log and returns its offset — the task id — once the
///   record is acknowledged under the log's ``Durability``. Then the task is handed to a
///   waiting poller, or queued in memory, or (past ``TaskStoreConfiguration/memoryBudgetBytes``)
///   left on disk as an 8-byte position and read back in batches.
/// - **Delivery is at least once.** A delivered task is in flight until ``complete(_:)`` or
///   ``fail(_:reason:)``; past ``TaskStoreConfiguration/visibilityTimeout`` it is delivered
///   again. A failure is retried after an exponential backoff, up to
///   ``TaskStoreConfiguration/maxAttempts``, then dead-lettered.
/// - **Completion** is recorded in memory at once and written to the log by a background
///   writer that puts every completion gathered during one append into one record (group
///   commit): a crash before that record is durable delivers the task again. ``flush()``
///   waits until every completion so far is on stable storage.
/// - **Reclamation**: whole segments below the ack level (the first log offset that may
///   hold a live task) are deleted every ``TaskStoreConfiguration/checkpointInterval``, after
///   the ack level is written to the `checkpoint` file; reopen replays only from there.
/// - **Online compaction** rewrites the log's sealed segments without the records a reopen no
///   longer needs, in the background, when ``TaskStoreConfiguration/onlineCompaction`` finds
///   enough of them dead (``compactOnline(force:)``).
/// - **Reopen** restores every task that was added and not completed — pending, in flight,
///   waiting out a backoff, or dead-lettered — in priority order, first in first out within
///   a priority, and the pause state and rate limit of every queue.
///
/// Files: `directory/log/` (the log's segments) and `directory/checkpoint`. One process owns
/// the directory at a time (the log's lock): a second open throws ``QueueError/Code/directoryLocked``.
public final class TaskStore: Sendable {
    /// The store's directory.
    public let directory: String
    /// The settings the store was opened with.
    public let configuration: TaskStoreConfiguration
    /// The clock that stamps tasks and times visibility timeouts, backoffs and deadlines.
    public let clock: MatchingClock

    let log: Log
    let dispatcher: Dispatcher<TaskEnvelope>
    let registry = LockedValue<[QueueKey: QueueState]>([:])
    let ledger: LockedValue<Ledger>
    /// Records read by the replay at open (tests check it starts at the ack level).
    let replayedRecords = Atomic<Int>(0)
    /// What the open found and did (set once, by the open).
    let recoveryState = LockedValue<TaskStoreRecoveryReport?>(nil)
    /// Queues paused or rate limited (the rest are in the default state).
    let controls = LockedValue<[QueueKey: QueueControlState]>([:])
    let lifecycle = LockedValue(Lifecycle())
    /// Set once the store is closed or failed (so that the hot path checks one atomic, not a lock).
    let unusable = Atomic<Bool>(false)
    /// Payload bytes of the tasks in the matching core's window.
    let windowBytes = Atomic<Int>(0)
    /// The earliest instant at which a visibility deadline or retry may be due.
    let nextDue = Atomic<UInt64>(.max)
    let expiredTotal = Atomic<Int>(0)
    let openedAt: UInt64
    let expiryRelay: ExpiryRelay

    struct Lifecycle {
        var closed = false
        var failure: QueueError?
        var maintenance: Task<Void, Never>?
        var checkpointing = false
        var lastCheckpoint: StoreCheckpoint?
        // Online compaction (TaskStore+OnlineCompaction.swift). A compaction and a deletion of
        // acknowledged segments never wait for each other (both need the log's maintenance lock):
        // whichever comes second skips its turn.
        var compactor: Task<Void, Never>?
        var compacting = false
        var deletingSegments = false
        var compactionPacer: CompactionPacer?
        var compactionStatistics = OnlineCompactionStatistics()
        /// The log's end and the durable ack level at the last measure that changed nothing.
        var lastCompactionMeasure: (end: UInt64, ackLevel: UInt64)?
    }

    init(directory: String, configuration: TaskStoreConfiguration, clock: MatchingClock, log: Log,
         dispatcher: Dispatcher<TaskEnvelope>, relay: ExpiryRelay) {
        self.directory = directory
        self.configuration = configuration
        self.clock = clock
        self.log = log
        self.dispatcher = dispatcher
        self.expiryRelay = relay
        self.ledger = LockedValue(Ledger(bucketShift: configuration.ackBucketShift))
        self.openedAt = clock.now().nanoseconds
    }

    /// Where the log lives inside a store directory (see `DataDirectory.StoreDirectory`).
    public static var logSubdirectory: String { DataDirectory.storeLogName }

    /// Opens (creating when needed) the store in `directory` and restores every task that was
    /// added and not completed. Creates `directory` with mode 0700 when it does not exist (its
    /// parent must exist), and marks it as a task store (its `kind` file; a store made before
    /// markers gets one now).
    ///
    /// With `configuration.log.access = .readOnly` the open writes nothing at all, so that a
    /// store on a read-only file system, or another user's, can be inspected: `directory` must
    /// exist, no marker is written, the log is read without repairing it (see
    /// ``LogAccess/readOnly``), a damaged checkpoint is ignored where it lies, no background
    /// checkpoint, retry or deletion runs and ``close()`` writes nothing. Listing, describing,
    /// peeking and polling work; calls that would write (add, complete, fail, pause…) throw
    /// ``QueueError/Code/log`` whose underlying `LogError` has the code `readOnly`.
    ///
    /// Cost: the log's own recovery (see `Log.open`), then a replay of the records from the
    /// checkpointed ack level to the end — not of the whole history.
    /// - Throws: ``QueueError/Code/invalidConfiguration``; ``QueueError/Code/directoryMissing``
    ///   when the parent does not exist or a path component is not a directory;
    ///   ``QueueError/Code/directoryLocked`` when another process has the store open;
    ///   ``QueueError/Code/invalidArgument`` when `directory` is another kind of Spool directory
    ///   (an engine's data directory, a log; the message says which and what to do), nothing written;
    ///   ``QueueError/Code/corruptRecord`` when a log record does not decode (a damaged
    ///   `checkpoint` is not an error: the store is rebuilt from the log, with a warning to
    ///   ``TaskStoreConfiguration/logger`` and in ``recoveryReport``);
    ///   ``QueueError/Code/log`` for the log's failures.
    public static func open(directory: String, configuration: TaskStoreConfiguration = TaskStoreConfiguration(),
                            clock: MatchingClock = .system) throws(QueueError) -> TaskStore {
        try configuration.validate()
        guard !directory.isEmpty else { throw QueueError(.invalidArgument, "the task store directory path is empty") }
        let syscalls = configuration.log.syscalls
        let layout = DataDirectory.StoreDirectory(directory)
        do {
            // Refuses an engine's data directory or a log directory before anything is written in it.
            if configuration.isReadOnly {
                try DataDirectory.examine(layout.path, as: .taskStore)
            } else {
                try DataDirectory.claim(layout.path, as: .taskStore, allowingForeign: true, syscalls: syscalls)
            }
        } catch {
            switch error.code {
            case .wrongDirectoryKind, .foreignDirectory:
                throw QueueError(.invalidArgument, error.message, path: layout.path, underlying: error)
            case .notADirectory:
                throw QueueError(.directoryMissing, "exists and is not a directory", path: layout.path)
            case .directoryMissing:
                let problem = configuration.isReadOnly ? DataDirectory.missingMessage : "its parent directory does not exist"
                throw QueueError(.directoryMissing, problem, path: layout.path, underlying: error.underlying)
            default:
                throw QueueError(.log, "cannot create the task store directory", path: layout.path, underlying: error)
            }
        }

        let log: Log
        do { log = try Log.open(directory: layout.log, configuration: configuration.log) } catch {
            throw .log(error, "cannot open the queue log")
        }
        let relay = ExpiryRelay()
        var dispatcherConfiguration = configuration.dispatcher
        let userHandler = dispatcherConfiguration.onExpired
        dispatcherConfiguration.onExpired = { expired in
            relay.forward(expired)
            userHandler?(expired)
        }
        let store: TaskStore
        do {
            let dispatcher = try Dispatcher<TaskEnvelope>(configuration: dispatcherConfiguration, clock: clock)
            store = TaskStore(directory: layout.path, configuration: configuration, clock: clock, log: log, dispatcher: dispatcher, relay: relay)
        } catch {
            try? log.close()
            throw .matching(error)
        }
        relay.install { [weak store] expired in store?.handleExpired(expired) }
        do {
            // A checkpoint that cannot be trusted is ignored, never a reason to refuse: the log
            // holds every task (see StoreCheckpointAssessment).
            let aheadMayBePowerLoss = !log.recovery.cleanShutdown && configuration.log.durability != .sync
            let (checkpoint, assessment) = StoreCheckpoint.assess(directory: layout.path, syscalls: syscalls, logEnd: log.endOffset,
                                                                  aheadMayBePowerLoss: aheadMayBePowerLoss)
            try store.recover(from: checkpoint, trustingAckLevel: assessment.damage == nil, assessment: assessment)
        } catch {
            log.abandon()
            throw error
        }
        // A reader changes nothing: no checkpoints, retries, relocations or deletions.
        if !configuration.isReadOnly {
            store.startMaintenance()
            store.startOnlineCompaction()
        }
        return store
    }

    /// Waits for every completion so far to be written, writes a final checkpoint (deleting the
    /// fully acknowledged segments), and closes the log cleanly so that the next open replays
    /// only from the ack level. Calls made after `close` throw ``QueueError/Code/closed``; polls
    /// already waiting are not interrupted (cancel them, or give them timeouts).
    /// Calling `close()` twice is harmless.
    /// - Throws: ``QueueError/Code/log`` when a final write fails (the store is closed anyway).
    public func close() async throws(QueueError) {
        let maintenance: Task<Void, Never>? = lifecycle.withLock { state in
            if state.closed { return nil }
            state.closed = true
            unusable.store(true, ordering: .releasing)
            defer { state.maintenance = nil }
            return state.maintenance ?? Task {}
        }
        guard let maintenance else { return }
        maintenance.cancel()
        await maintenance.value
        await stopOnlineCompaction()
        var firstError: QueueError?
        await waitForAckWriter()
        if lifecycle.withLock({ $0.failure }) == nil && !configuration.isReadOnly {
            do { _ = try writeCheckpoint() } catch { firstError = error }
        }
        do { try log.close() } catch {
            if firstError == nil { firstError = .log(error, "cannot close the queue log") }
        }
        if let firstError { throw firstError }
    }

    /// Stops without writing anything more — what a killed process leaves behind (tests).
    package func abandon() {
        let maintenance: Task<Void, Never>? = lifecycle.withLock { state in
            if state.closed { return nil }
            state.closed = true
            unusable.store(true, ordering: .releasing)
            defer { state.maintenance = nil }
            return state.maintenance
        }
        maintenance?.cancel()
        let (compactor, pacer) = lifecycle.withLock { ($0.compactor, $0.compactionPacer) }
        pacer?.cancel()
        compactor?.cancel()
        // Waits for a compaction in progress to stop or finish its swap.
        log.abandon()
    }

    deinit {
        if !lifecycle.withLock({ $0.closed }) { abandon() }
    }

    /// Throws when the store is closed or its log failed.
    @inline(__always)
    func checkUsable() throws(QueueError) {
        if !unusable.load(ordering: .acquiring) { return }
        let problem: QueueError? = lifecycle.withLock { state in
            if let failure = state.failure { return failure }
            return state.closed ? QueueError.closedStore() : nil
        }
        if let problem { throw problem }
    }

    /// Remembers the first failure of a background write; later calls throw it.
    func recordFailure(_ error: QueueError) {
        lifecycle.withLock { if $0.failure == nil { $0.failure = error } }
        unusable.store(true, ordering: .releasing)
    }

    // MARK: Queues

    /// The queue of `kind` named `name`, created on first use. Keep the handle on a hot path:
    /// calls through it skip the name lookup.
    /// - Throws: ``QueueError/Code/invalidQueueName`` for an empty name, one over 1000 UTF-8 bytes, or
    ///   one with a control character (see `TaskQueueName.validate`);
    ///   ``QueueError/Code/closed``.
    public func queue(_ name: String, kind: TaskQueueKind) throws(QueueError) -> DurableTaskQueue {
        try checkUsable()
        return DurableTaskQueue(store: self, state: try queueState(name, kind: kind))
    }

    /// The queue's state, created on first use. `recorded`: the name was read back from the log
    /// or the checkpoint, so it is held only to the checks names passed when it was written
    /// (``TaskQueueName/validateRecorded(_:)``); a caller's name gets every check.
    func queueState(_ name: String, kind: TaskQueueKind, recorded: Bool = false) throws(QueueError) -> QueueState {
        do {
            if recorded { try TaskQueueName.validateRecorded(name) } else { try TaskQueueName.validate(name) }
        } catch { throw .matching(error) }
        let key = QueueKey(name: name, kind: kind)
        if let existing = registry.withLock({ $0[key] }) { return existing }
        let matching: TaskQueue<TaskEnvelope>
        do { matching = try dispatcher.queue(recorded: name, kind: kind) } catch { throw .matching(error) }
        return registry.withLock { registry in
            if let existing = registry[key] { return existing }
            let state = QueueState(key: key, matching: matching)
            registry[key] = state
            return state
        }
    }

    func existingQueueState(_ name: String, kind: TaskQueueKind) -> QueueState? {
        registry.withLock { $0[QueueKey(name: name, kind: kind)] }
    }

    /// The offset of the first record that may still hold a live task: the ack level that the
    /// next checkpoint writes.
    public var ackLevel: UInt64 {
        ledger.withLock { $0.ackLevel(endOffset: log.endOffset) }
    }

    /// The queue log's counters since open (fdatasyncs, records and bytes written): how many
    /// adds and completions shared each group commit.
    public var logStatistics: LogStatistics { log.statistics }

    /// Tasks dropped since open because their schedule-to-start deadline passed.
    public var expiredCount: Int { expiredTotal.load(ordering: .relaxed) }

    /// Payload bytes held in memory by the queues' windows (bounded by
    /// ``TaskStoreConfiguration/memoryBudgetBytes`` plus one refill batch per polled queue).
    public var inMemoryPayloadBytes: Int { windowBytes.load(ordering: .relaxed) }
}

/// Forwards the dispatcher's expiry callbacks to the store, which is created after the dispatcher.
final class ExpiryRelay: Sendable {
    private let handler = LockedValue<(@Sendable (ExpiredTask) -> Void)?>(nil)

    func install(_ body: @escaping @Sendable (ExpiredTask) -> Void) { handler.withLock { $0 = body } }
    func forward(_ expired: ExpiredTask) { handler.withLock { $0 }?(expired) }
}
