#if canImport(Glibc)
import Glibc
#endif
import Logging
import SpoolLog
import SpoolMatching
import Synchronization
import SpoolPrimitives

/// The embedded workflow engine: workflow executions with their event histories, workflow and
/// activity tasks matched to pollers, timeouts, retries, heartbeats and durable timers, all on
/// one append-only log (`DIR/history`).
///
/// ```swift
/// let engine = try SpoolEngine.open(directory: "/var/lib/app/spool")
/// let run = try await engine.startWorkflowExecution(.init(workflowID: "order-1", workflowType: "order", taskQueue: "orders"))
/// if let task = try await engine.pollWorkflowTaskQueue(taskQueue: "orders", identity: "worker-1") { … }
/// try await engine.close()
/// ```
///
/// Every state transition of a run is one log append of one record holding its new events and
/// state changes; the call that caused it returns once the append is durable, and the tasks it
/// created reach pollers only then. Transitions of one run are serialised by the run's gate;
/// transitions of different runs proceed concurrently and share fdatasyncs (group commit).
/// Opening a directory replays the log and restores every run, task, timer and buffered event.
public final class SpoolEngine: Sendable {
    /// The data directory, without trailing slashes.
    public let directory: String
    /// The settings the engine was opened with.
    public let configuration: SpoolEngineConfiguration
    let log: Log
    let clock: EngineClock
    /// The clock closed-run retention follows: never backward, bounded by the log's event times
    /// at open and by the time measured since (``RetentionClock``).
    let retentionClock: RetentionClock
    let registry = ExecutionRegistry()
    /// Postings and status counts of every visible run, kept with the published states (VisibilityIndex.swift).
    let visibility = VisibilityIndex()
    let timers: TimerQueue
    let longPollDeadlines: LongPollDeadlines
    private let dispatchers = LockedValue<[String: Dispatcher<TaskReference>]>([:])
    /// The default namespace's dispatcher once made, read without the lock and the hash of the
    /// name: nearly every call names that namespace, three lookups a workflow.
    private let defaultDispatcher = AtomicLazyReference<Dispatcher<TaskReference>>()
    private let timerLoop = LockedValue<Task<Void, Never>?>(nil)
    private let isClosed = Atomic<Bool>(false)
    let checkpointStore: CheckpointStore
    /// The registered namespaces and their search attributes (the data directory's `namespaces` file).
    let namespaceRegistry: NamespaceRegistry
    /// Queries waiting for a worker (in memory only: queries write nothing).
    let queries = QueryRegistry()
    /// Updates in flight (in memory until accepted, as in Temporal).
    let updates = UpdateRegistry()
    /// Cross-run work in flight (a child's close to its parent, parent close policies, signals
    /// and cancel requests to other workflows); see SpoolEngine+ExternalRequests.
    let relatedRunWork = RelatedRunWork()
    let metrics = EngineMetrics()
    let checkpointGate = AsyncSemaphore(permits: 1)
    /// The history log's online compaction (SpoolEngine+OnlineCompaction.swift).
    let onlineCompaction = OnlineHistoryCompaction()
    let appendsSinceCheckpoint = Atomic<Int>(0)
    private let recoveryReport = LockedValue<EngineRecoveryReport?>(nil)
    /// Task queue settings (durable, `DIR/task-queues`) and pollers' rates.
    let taskQueueSettings = TaskQueueSettings()
    /// When this engine opened: describe's add and dispatch rates are averages since then.
    let openedAt: Timestamp

    /// What opening the directory found: whether a checkpoint was used, how many records were replayed.
    public var recovery: EngineRecoveryReport? { recoveryReport.withLock { $0 } }
    var logger: Logger { configuration.logger }

    private init(directory: String, configuration: SpoolEngineConfiguration, log: Log) {
        self.directory = directory
        self.configuration = configuration
        self.log = log
        self.clock = configuration.clock
        self.retentionClock = RetentionClock(clock: configuration.clock, retention: configuration.closedRunRetention)
        self.longPollDeadlines = LongPollDeadlines(clock: configuration.clock)
        self.timers = TimerQueue(clock: configuration.clock)
        self.checkpointStore = CheckpointStore(directory: directory, syscalls: configuration.log.syscalls)
        self.namespaceRegistry = NamespaceRegistry(directory: directory, syscalls: configuration.log.syscalls)
        self.openedAt = configuration.clock.now()
    }

    /// Opens (creating it, mode 0700, if needed) the engine's data directory and recovers:
    /// replays the log, restores every run with its pending workflow task, activities, timers
    /// and buffered events, puts pending tasks back on their queues, and re-arms every timer
    /// (one whose time passed while the process was down fires at once).
    ///
    /// Cost: with a checkpoint (written on ``close()`` and periodically), decoding its open runs
    /// and the runs closed since its closed-run table was written, reading and checksumming that
    /// table without decoding a run, and replaying the log after the checkpoint; without one, or
    /// when it is damaged, every record of the log is decoded once.
    /// The directory is marked as a data directory (its `kind` file) at creation, or at the first
    /// open of one made before markers.
    ///
    /// With `configuration.log.access = .readOnly` the open writes nothing at all: the directory
    /// must exist, no marker is written, the log is read without repairing it (see
    /// ``LogAccess/readOnly``), a damaged checkpoint is ignored where it lies, no timer fires and
    /// ``close()`` writes no checkpoint. Calls that would append (start, signal, task
    /// completions…) fail with ``SpoolError/Code/storage`` whose underlying `LogError` has the
    /// code `readOnly`. Readers should also set ``SpoolEngineConfiguration/closedRunRetention``
    /// to nil, so that they show every run the log holds.
    /// - Throws: ``SpoolError/Code/invalidArgument`` when `directory` is another kind of Spool
    ///   directory (a task store, a log; the message says which and what to do), nothing written;
    ///   ``SpoolError/Code/io`` when the directory cannot be created, ``SpoolError/Code/storage``
    ///   when the log cannot be opened (another process holds it: the underlying `LogError` says so),
    ///   ``SpoolError/Code/corruptRecord`` when a record cannot be decoded or does not fit its run.
    public static func open(directory: String, configuration: SpoolEngineConfiguration = SpoolEngineConfiguration()) throws(SpoolError) -> SpoolEngine {
        guard !directory.isEmpty else { throw SpoolError(.invalidArgument, "the data directory path is empty") }
        guard (1...64).contains(configuration.taskQueuePartitions) else {
            throw SpoolError(.invalidArgument, "taskQueuePartitions must be 1…64 (got \(configuration.taskQueuePartitions))")
        }
        if let (field, value, rule) = configuration.onlineCompaction.problem {
            throw SpoolError(.invalidArgument, "onlineCompaction.\(field) = \(value) is invalid: \(rule)")
        }
        let layout = DataDirectory(directory)
        var configuration = configuration
        do {
            // Refuses a task store's or a log's directory before anything is written in it.
            if configuration.isReadOnly {
                // A reader writes nothing: no timers fire, no checkpoint is written at close.
                configuration.firesTimersAutomatically = false
                try DataDirectory.examine(layout.path, as: .engine)
            } else {
                try DataDirectory.claim(layout.path, as: .engine, allowingForeign: true, syscalls: configuration.log.syscalls)
            }
        } catch where error.code == .wrongDirectoryKind || error.code == .foreignDirectory {
            throw SpoolError(.invalidArgument, "\(layout): \(error.message)", underlying: error)
        } catch {
            let doing = configuration.isReadOnly ? "read" : "create, examine or mark"
            throw SpoolError(.io, "cannot \(doing) the data directory \(layout): \(error.message)", underlying: error)
        }
        let log: Log
        do {
            log = try Log.open(directory: layout.history, configuration: configuration.log)
        } catch {
            throw SpoolError(.storage, "cannot open the history log in \(layout)", underlying: error)
        }
        let engine = SpoolEngine(directory: layout.path, configuration: configuration, log: log)
        do {
            try engine.namespaceRegistry.load()
            // Before the backlog is rebuilt: partitions apply only to queues not used yet.
            try engine.loadTaskQueueSettings()
            let report = try engine.recover()
            engine.recoveryReport.withLock { $0 = report }
            // Runs in namespaces never registered (stores from before registration): their
            // namespaces exist, with default settings, so the runs stay reachable.
            engine.namespaceRegistry.adopt(Set(engine.registry.allHandles().map(\.key.namespace)))
            // Cross-run work a crash cut short is done again (each step is idempotent).
            if !configuration.isReadOnly { engine.reconcileRelatedRuns() }
        } catch {
            log.abandonQuietly()
            throw error
        }
        if configuration.firesTimersAutomatically { engine.startTimerLoop() }
        engine.startOnlineCompaction()
        return engine
    }

    /// Stops the timer loop, writes a checkpoint (so the next open replays nothing) and closes
    /// the log (syncing it and writing its clean-shutdown marker). Calls made afterwards throw
    /// ``SpoolError/Code/closed``; pollers already waiting return when their timeout passes.
    /// - Throws: ``SpoolError/Code/io`` when the checkpoint cannot be written (the log is still
    ///   closed; the next open replays it); ``SpoolError/Code/storage`` when the log's final sync fails.
    public func close() async throws(SpoolError) {
        guard !isClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        queries.failAll(SpoolError(.closed, "the engine was closed before a worker answered the query"))
        updates.failAll(SpoolError(.closed, "the engine was closed before the update completed; update again with the same id"))
        await stopTimerLoop()
        await stopOnlineCompaction()
        var checkpointError: SpoolError?
        if !configuration.isReadOnly {
            do { try await checkpoint() } catch { checkpointError = error }
        }
        do { try log.close() } catch { throw SpoolError(.storage, "closing the history log failed", underlying: error) }
        if let checkpointError { throw checkpointError }
    }

    /// Drops the engine as a killed process would: no final sync, no clean-shutdown marker.
    /// Data already acknowledged is on disk; the next open recovers by replaying the log.
    package func abandon() async {
        if !isClosed.exchange(true, ordering: .acquiringAndReleasing) {
            queries.failAll(SpoolError(.closed, "the engine was closed before a worker answered the query"))
            updates.failAll(SpoolError(.closed, "the engine was closed before the update completed; update again with the same id"))
            timers.stop()
            onlineCompaction.state.withLock { $0.pacer?.cancel() }
            // Waits for a compaction in progress to stop or finish its swap.
            log.abandon()
        }
        await stopTimerLoop()
        await stopOnlineCompaction()
    }

    func checkOpen() throws(SpoolError) {
        if isClosed.load(ordering: .acquiring) { throw SpoolError(.closed, "the engine was closed") }
    }

    // MARK: Matching

    /// The namespace's dispatcher (one per namespace, created on first use).
    func dispatcher(_ namespace: String) -> Dispatcher<TaskReference> {
        let isDefault = namespace == defaultNamespace
        if isDefault, let made = defaultDispatcher.load() { return made }
        let found = namespacedDispatcher(namespace)
        return isDefault ? defaultDispatcher.storeIfNil(found) : found
    }

    private func namespacedDispatcher(_ namespace: String) -> Dispatcher<TaskReference> {
        dispatchers.withLock { dispatchers in
            if let existing = dispatchers[namespace] { return existing }
            do {
                var settings = DispatcherConfiguration()
                settings.partitions = configuration.taskQueuePartitions
                let created = try Dispatcher<TaskReference>(configuration: settings, clock: clock.matchingClock)
                dispatchers[namespace] = created
                return created
            } catch {
                // Only a bad DispatcherConfiguration throws, and open checked the partitions: a bug here.
                preconditionFailure("the default dispatcher configuration was refused: \(error)")
            }
        }
    }

    func validateQueueName(_ name: String, what: String) throws(SpoolError) {
        do {
            try TaskQueueName.validate(name)
        } catch {
            throw SpoolError(.invalidArgument, "\(what) '\(IdentifierText.shown(name))' is not a valid task queue name: \(error.message)")
        }
    }

    /// The queues of `state`'s task queue, for its handle; nil when the name is refused (the run's
    /// start validated it, so only a damaged record gets here, and dispatch then reports it).
    func runTaskQueues(of state: ExecutionState) -> RunTaskQueues? {
        let dispatcher = dispatcher(state.key.namespace)
        // A recorded name: held to the rules it was written under, so a run started before
        // control characters were refused is still dispatched.
        guard let queues = try? dispatcher.queues(recorded: state.taskQueue) else { return nil }
        return RunTaskQueues(name: state.taskQueue, workflow: queues.workflow, activity: queues.activity)
    }

    func queue(namespace: String, name: String, kind: TaskQueueKind) throws(SpoolError) -> TaskQueue<TaskReference> {
        try checkNamespace(namespace)
        do {
            return try dispatcher(namespace).queue(name, kind: kind)
        } catch {
            throw SpoolError(.invalidArgument, "task queue '\(name)': \(error.message)", namespace: namespace)
        }
    }

    // MARK: History

    /// The run's events: from memory for an open run that has been read, else from its records
    /// in the log (then kept in memory while the run is open).
    /// - Throws: ``SpoolError/Code/storage`` when the log cannot be read; ``SpoolError/Code/corruptRecord``.
    func history(of handle: ExecutionHandle) throws(SpoolError) -> [HistoryEvent] {
        let (cached, offsets, version) = handle.historyOrOffsets
        if let cached { return cached }
        var events: [HistoryEvent] = []
        for offset in offsets {
            let bytes: [UInt8]
            do {
                bytes = try log.read(at: offset)
            } catch {
                throw handle.key.error(.storage, "cannot read the history record at log offset \(offset)").with(underlying: error)
            }
            let record = try TransitionRecord.decode(bytes, context: "history log record at offset \(offset)")
            for run in record.runs where run.key == handle.key {
                events.append(contentsOf: run.changes.compactMap(\.writtenEvent))
            }
        }
        handle.cacheHistory(events, version: version)
        return events
    }

    // MARK: Timer loop

    private func startTimerLoop() {
        let task = Task { [weak self] in
            while let engine = self {
                await engine.fireDueTimers()
                guard await engine.timers.sleep() else { return }
            }
        }
        timerLoop.withLock { $0 = task }
    }

    private func stopTimerLoop() async {
        timers.stop()
        let task = timerLoop.withLock { loop -> Task<Void, Never>? in
            defer { loop = nil }
            return loop
        }
        await task?.value
    }
}

extension Log {
    /// Releases a log that failed to recover, without marking it clean.
    func abandonQuietly() { abandon() }
}
