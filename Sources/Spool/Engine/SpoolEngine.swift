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
    let timers: TimerQueue
    let longPollDeadlines: LongPollDeadlines
    private let dispatchers = LockedValue<[String: Dispatcher<TaskReference>]>([:])
    private let timerLoop = LockedValue<Task<Void, Never>?>(nil)
    private let isClosed = Atomic<Bool>(false)
    let checkpointStore: CheckpointStore
    /// Queries waiting for a worker (in memory only: queries write nothing).
    let queries = QueryRegistry()
    let metrics = EngineMetrics()
    let checkpointGate = AsyncSemaphore(permits: 1)
    let appendsSinceCheckpoint = Atomic<Int>(0)
    private let recoveryReport = LockedValue<EngineRecoveryReport?>(nil)

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
            let report = try engine.recover()
            engine.recoveryReport.withLock { $0 = report }
        } catch {
            log.abandonQuietly()
            throw error
        }
        if configuration.firesTimersAutomatically { engine.startTimerLoop() }
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
        await stopTimerLoop()
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
            timers.stop()
            log.abandon()
        }
        await stopTimerLoop()
    }

    func checkOpen() throws(SpoolError) {
        if isClosed.load(ordering: .acquiring) { throw SpoolError(.closed, "the engine was closed") }
    }

    // MARK: Matching

    /// The namespace's dispatcher (one per namespace, created on first use).
    func dispatcher(_ namespace: String) -> Dispatcher<TaskReference> {
        dispatchers.withLock { dispatchers in
            if let existing = dispatchers[namespace] { return existing }
            do {
                let created = try Dispatcher<TaskReference>(clock: clock.matchingClock)
                dispatchers[namespace] = created
                return created
            } catch {
                // Only a bad DispatcherConfiguration throws, and the default one is valid: a bug here.
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
        guard let workflow = try? dispatcher.queue(recorded: state.taskQueue, kind: .workflow),
              let activity = try? dispatcher.queue(recorded: state.taskQueue, kind: .activity) else { return nil }
        return RunTaskQueues(name: state.taskQueue, workflow: workflow, activity: activity)
    }

    func queue(namespace: String, name: String, kind: TaskQueueKind) throws(SpoolError) -> TaskQueue<TaskReference> {
        do {
            return try dispatcher(namespace).queue(name, kind: kind)
        } catch {
            throw SpoolError(.invalidArgument, "task queue '\(name)': \(error.message)", namespace: namespace)
        }
    }

    // MARK: Transitions

    /// Locks the run `execution` names (its current run if the run id is empty) and returns it.
    /// The caller must `unlock()` its gate.
    /// - Throws: ``SpoolError/Code/notFound``.
    func lockRun(namespace: String, execution: WorkflowExecution) async throws(SpoolError) -> ExecutionHandle {
        guard let handle = registry.handle(namespace: namespace, execution: execution) else {
            throw SpoolError(.notFound, "no such workflow execution", namespace: namespace,
                             workflowID: execution.workflowID, runID: execution.runID)
        }
        await handle.gate.acquire()
        guard !handle.isRemoved else {
            handle.gate.release()
            throw handle.key.error(.notFound, "no such workflow execution")
        }
        return handle
    }

    /// Makes transitions durable with one log append, then publishes their states, hands their
    /// new tasks to the matcher and arms their timers. The callers hold the runs' gates.
    /// - Throws: ``SpoolError/Code/storage`` when the append fails (nothing is published);
    ///   ``SpoolError/Code/invalidArgument`` when the record is larger than the log accepts.
    func commit(_ runs: [(handle: ExecutionHandle, transition: Transition)]) async throws(SpoolError) {
        try await commit(runs.map { CommittedRun(handle: $0.handle, transition: $0.transition) })
    }

    /// Commits one run's transition (the usual case): as `commit(_:)` with one run.
    func commit(_ handle: ExecutionHandle, _ transition: Transition) async throws(SpoolError) {
        try await commit([CommittedRun(handle: handle, transition: transition)])
    }

    /// A run and its transition, as `commit` carries them: a struct, not a tuple. Reading a
    /// field of an array element of tuple type copied the whole tuple through the runtime's
    /// generic tuple witness (callgrind: 8 such copies per commit, ~6% of all instructions of a
    /// one-activity workflow).
    struct CommittedRun {
        let handle: ExecutionHandle
        let transition: Transition
    }

    private func commit(_ runs: [CommittedRun]) async throws(SpoolError) {
        let encoded = Self.encodeRecord(runs)
        let offset: UInt64
        let appendStarted = ContinuousClock.now
        do {
            offset = try await log.append(encoded)
        } catch {
            let underlying = error
            if underlying.code == .closed { throw SpoolError(.closed, "the engine was closed", underlying: underlying) }
            if underlying.code == .recordTooLarge {
                // Refused before it was written: nothing changed, and the log is still usable.
                throw SpoolError(.invalidArgument, "the transition's payloads are too large for one log record",
                                 namespace: runs.first?.handle.key.namespace, workflowID: runs.first?.handle.key.workflowID,
                                 runID: runs.first?.handle.key.runID, underlying: underlying)
            }
            throw SpoolError(.storage, "the history log refused the append; reopen the engine",
                             namespace: runs.first?.handle.key.namespace, workflowID: runs.first?.handle.key.workflowID,
                             runID: runs.first?.handle.key.runID, underlying: underlying)
        }
        metrics.appendLatency.recordNanoseconds((ContinuousClock.now - appendStarted).nanoseconds)
        publishCommitted(runs, recordOffset: offset)
    }

    /// The record of `runs`' changes, encoded.
    private static func encodeRecord(_ runs: [CommittedRun]) -> [UInt8] {
        var recordRuns: [TransitionRecord.RunChanges] = []
        recordRuns.reserveCapacity(runs.count)
        for index in runs.indices { recordRuns.append(.init(key: runs[index].handle.key, changes: runs[index].transition.changes)) }
        return TransitionRecord(runs: recordRuns).encoded()
    }

    /// After the append at `recordOffset` is durable: counts it, publishes the runs' states and
    /// arms their effects.
    private func publishCommitted(_ runs: [CommittedRun], recordOffset offset: UInt64) {
        metrics.transitions.increment()
        var eventsWritten = 0
        for index in runs.indices {
            for change in runs[index].transition.changes where change.isWrittenEvent { eventsWritten += 1 }
        }
        metrics.eventsWritten.increment(by: eventsWritten)
        if let every = configuration.checkpointEveryRecords,
           appendsSinceCheckpoint.add(1, ordering: .relaxed).newValue == every {
            Task { [weak self] in
                do { try await self?.checkpoint() } catch {
                    self?.logger.error("a periodic checkpoint failed", metadata: ["error": "\(error)"])
                }
            }
        }
        for index in runs.indices {
            runs[index].handle.publish(runs[index].transition.state, changes: runs[index].transition.changes, recordOffset: offset)
            armEffects(of: runs[index].transition.changes, state: runs[index].transition.state, queues: runs[index].handle.taskQueues)
            // One atomic load when no query waits (nearly always).
            if !queries.isEmpty { queriesAfterTransition(runs[index].transition.state) }
        }
    }

    /// Hands the tasks a transition created to the matcher and arms the timers it needs.
    func armEffects(of changes: [StateChange], state: ExecutionState, queues: RunTaskQueues?) {
        let key = state.key
        for change in changes {
            switch change {
            case .event(let event):
                if event.eventType.isClosing {
                    metrics.workflowClosed(event.eventType)
                    if let retention = configuration.closedRunRetention {
                        timers.schedule(.retention, for: key, at: event.eventTime.advanced(by: retention))
                    }
                }
                switch event.attributes {
                case .workflowExecutionStarted(let a):
                    metrics.workflowsStarted.increment()
                    if let timeout = a.workflowRunTimeout {
                        timers.schedule(.workflowRunTimeout, for: key, at: event.eventTime.advanced(by: timeout))
                    }
                case .workflowTaskScheduled:
                    if let task = state.workflowTask, task.scheduledEventID == event.eventID, task.startedEventID == 0 {
                        dispatchOrDelayWorkflowTask(task, state: state, queues: queues)
                    }
                case .workflowTaskStarted:
                    if let task = state.workflowTask, task.startedEventID == event.eventID {
                        timers.schedule(.workflowTaskStartToClose(scheduledEventID: task.scheduledEventID, startedEventID: event.eventID),
                                        for: key, at: event.eventTime.advanced(by: task.startToCloseTimeout))
                    }
                case .activityTaskScheduled:
                    if let activity = state.activities[event.eventID] {
                        armScheduleToClose(activity, key: key)
                        // An eagerly started activity went to the worker in the response, not to the queue.
                        if !activity.isStarted { dispatchActivityTask(activity, key: key, queues: queues) }
                    }
                case .timerStarted(let a):
                    if let timer = state.timers[a.timerID], timer.startedEventID == event.eventID {
                        timers.schedule(.userTimer(timerID: a.timerID, startedEventID: event.eventID), for: key, at: timer.fireTime)
                    }
                default:
                    break
                }
            case let .activityStarted(scheduledEventID, attempt, _, _, _):
                if let activity = state.activities[scheduledEventID], activity.attempt == attempt, activity.isStarted {
                    armStartedActivity(activity, key: key)
                }
            case let .activityRetryScheduled(scheduledEventID, attempt, time, _):
                if let activity = state.activities[scheduledEventID], activity.attempt == attempt {
                    timers.schedule(.activityRetry(scheduledEventID: scheduledEventID, attempt: attempt), for: key, at: time)
                }
            default:
                break
            }
        }
    }

    /// Dispatches a scheduled workflow task, or sets a timer for the end of its backoff.
    func dispatchOrDelayWorkflowTask(_ task: WorkflowTaskInfo, state: ExecutionState, queues: RunTaskQueues?) {
        if let time = task.dispatchTime, time > clock.now() {
            timers.schedule(.workflowTaskDispatch(scheduledEventID: task.scheduledEventID), for: state.key, at: time)
        } else {
            dispatchWorkflowTask(task, state: state, queues: queues)
        }
    }

    /// Puts a workflow task on its queue: the run's own (`queues`, resolved when the run was
    /// made) without a lookup, a sticky queue by name.
    func dispatchWorkflowTask(_ task: WorkflowTaskInfo, state: ExecutionState, queues: RunTaskQueues?) {
        let reference = TaskReference(key: state.key, scheduledEventID: task.scheduledEventID, attempt: task.attempt)
        do {
            let queued = QueuedTask(id: UInt64(task.scheduledEventID), payload: reference)
            if let queues, queues.name == task.taskQueue {
                try queues.workflow.add(queued)
            } else {
                try dispatcher(state.key.namespace).add(queued, to: task.taskQueue, kind: .workflow)
            }
            metrics.workflowTasksDispatched.increment()
        } catch {
            logger.error("cannot queue workflow task", metadata: ["run": "\(state.key)", "error": "\(error)"])
        }
        if task.isSticky, let timeout = state.stickyScheduleToStartTimeout {
            timers.schedule(.workflowTaskScheduleToStart(scheduledEventID: task.scheduledEventID), for: state.key,
                            at: task.scheduledTime.advanced(by: timeout))
        }
    }

    /// Puts an activity task on its queue: the run's own activity queue without a lookup, another
    /// one by name.
    func dispatchActivityTask(_ activity: ActivityInfo, key: ExecutionKey, queues: RunTaskQueues?) {
        let reference = TaskReference(key: key, scheduledEventID: activity.scheduledEventID, attempt: activity.attempt)
        do {
            let queued = QueuedTask(id: UInt64(activity.scheduledEventID), payload: reference)
            if let queues, queues.name == activity.attributes.taskQueue {
                try queues.activity.add(queued)
            } else {
                try dispatcher(key.namespace).add(queued, to: activity.attributes.taskQueue, kind: .activity)
            }
            metrics.activityTasksDispatched.increment()
        } catch {
            logger.error("cannot queue activity task", metadata: ["run": "\(key)", "error": "\(error)"])
        }
        if let timeout = activity.attributes.scheduleToStartTimeout {
            timers.schedule(.activityScheduleToStart(scheduledEventID: activity.scheduledEventID, attempt: activity.attempt),
                            for: key, at: activity.attemptScheduledTime.advanced(by: timeout))
        }
    }

    func armScheduleToClose(_ activity: ActivityInfo, key: ExecutionKey) {
        if let timeout = activity.attributes.scheduleToCloseTimeout {
            timers.schedule(.activityScheduleToClose(scheduledEventID: activity.scheduledEventID), for: key,
                            at: activity.scheduledTime.advanced(by: timeout))
        }
    }

    func armStartedActivity(_ activity: ActivityInfo, key: ExecutionKey) {
        guard let started = activity.startedTime else { return }
        timers.schedule(.activityStartToClose(scheduledEventID: activity.scheduledEventID, attempt: activity.attempt), for: key,
                        at: started.advanced(by: activity.attributes.startToCloseTimeout))
        if let heartbeat = activity.attributes.heartbeatTimeout {
            let last = max(started, activity.lastHeartbeatTime ?? started)
            timers.schedule(.activityHeartbeat(scheduledEventID: activity.scheduledEventID, attempt: activity.attempt), for: key,
                            at: last.advanced(by: heartbeat))
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
