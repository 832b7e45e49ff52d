#if canImport(Glibc)
import Glibc
#endif
import Logging
import SpoolLog

/// What the last open found and did, for tests and operators.
public struct EngineRecoveryReport: Hashable, Sendable {
    /// Whether a valid checkpoint was loaded.
    public var usedCheckpoint: Bool
    /// Why a checkpoint file was ignored (unreadable, damaged, not matching the log), if one was.
    public var ignoredCheckpoint: String?
    /// Where a directory found in the checkpoint file's place was moved (`checkpoint.damaged`), so
    /// that checkpoints can be written again; nil when nothing was moved.
    public var movedCheckpoint: String? = nil
    /// Runs restored from the checkpoint: those in its file and those in its closed-run table.
    public var runsFromCheckpoint: Int
    /// Log records decoded (those after the checkpoint, or all of them without one).
    public var recordsReplayed: Int
    /// Runs known after open: in memory, plus the closed runs of the checkpoint's closed-run
    /// table (not decoded; those whose retention has ended are counted until the next merge
    /// leaves them out).
    public var runs: Int
    /// Open runs among them.
    public var openRuns: Int
    /// Closed runs dropped because their retention had ended.
    public var droppedRuns: Int = 0
}

extension SpoolEngine {
    /// Loads the checkpoint, replays the log after it into the registry, then re-queues every
    /// pending task and re-arms every timer of the open runs. Runs are rebuilt with
    /// ``ExecutionState/apply(_:)``, the code the live path uses, so the rebuilt state is the
    /// state the process had at its last durable append.
    func recover() throws(SpoolError) -> EngineRecoveryReport {
        var report = EngineRecoveryReport(usedCheckpoint: false, ignoredCheckpoint: nil, runsFromCheckpoint: 0,
                                          recordsReplayed: 0, runs: 0, openRuns: 0)
        var runs: [ExecutionKey: EngineCheckpoint.Run] = [:]
        var replayFrom = log.startOffset
        // Closed runs of the checkpoint's table stay encoded; the registry loads them when asked.
        var closedRuns: ClosedRuns?
        if let (checkpoint, table) = try loadCheckpoint(&report) {
            for run in checkpoint.runs { runs[run.state.key] = run }
            replayFrom = checkpoint.replayFrom
            report.usedCheckpoint = true
            report.runsFromCheckpoint = runs.count + (table?.count ?? 0)
            closedRuns = table.map { ClosedRuns(table: $0, retention: { [namespaceRegistry, configuration] in namespaceRegistry.retentionPolicy(fallback: configuration.closedRunRetention) }, clock: retentionClock, timers: timers, logger: logger) }
        }
        var reader = log.reader(from: replayFrom, releasingPagesBehind: true)
        while true {
            let entry: LogRecord?
            do {
                entry = try reader.next()
            } catch {
                throw SpoolError(.storage, "reading the history log failed", underlying: error)
            }
            guard let entry else { break }
            report.recordsReplayed += 1
            let record = try TransitionRecord.decode(entry.payload, context: "history log record at offset \(entry.offset)")
            for change in record.runs {
                var run: EngineCheckpoint.Run
                var existing = runs[change.key]
                if existing == nil, let closedRuns {
                    existing = try closedRuns.table.runs(of: change.key.workflowKey).first { $0.run.state.key == change.key }?.run
                }
                if let existing {
                    // Already in the checkpoint's state of this run.
                    if let last = existing.recordOffsets.last, last >= entry.offset { continue }
                    run = existing
                } else {
                    guard case .event(let first) = change.changes.first, case .workflowExecutionStarted(let started) = first.attributes else {
                        // The end of a run whose earlier records compaction dropped, in the record it
                        // shares with the run that continued it (SpoolEngine+Compaction.swift).
                        if change.closesItsRun { continue }
                        throw change.key.error(.corruptRecord, "record at offset \(entry.offset) changes a run that was never started")
                    }
                    run = EngineCheckpoint.Run(state: ExecutionState(key: change.key, started: started, startTime: first.eventTime),
                                               recordOffsets: [])
                }
                for stateChange in change.changes {
                    if let event = stateChange.writtenEvent { retentionClock.observe(event.eventTime) }
                    do {
                        try run.state.apply(stateChange)
                    } catch {
                        var error = error
                        error.message += " (history log record at offset \(entry.offset))"
                        throw error
                    }
                }
                run.recordOffsets.append(entry.offset)
                runs[change.key] = run
            }
        }
        // Retention is judged by the log's own times, not the wall clock alone (RetentionClock):
        // a clock far ahead at open must not drop runs whose records are the newest in the log.
        for run in runs.values { retentionClock.observe(run.state.closeTime ?? run.state.startTime) }
        if let closedRuns {
            for index in 0..<closedRuns.table.count { retentionClock.observe(closedRuns.table.closeTime(at: index)) }
        }
        retentionClock.start()
        // A workflow id's current run is its newest: the one whose first record is last (in
        // memory or in the closed-run table).
        let now = retentionClock.now()
        // The table's runs are the visibility index's base rows, loaded from its visibility
        // section before any run is indexed (runs replay changed replace theirs below).
        var indexedTable = false
        if let closedRuns {
            do {
                indexedTable = try visibility.loadBase(closedRuns.table) { visibilityHorizon(namespace: $0, now: now) }
            } catch {
                logger.error("the closed-run table's visibility section is damaged: its runs are indexed by decoding them", metadata: ["error": "\(error)"])
            }
        }
        for run in runs.values.sorted(by: { ($0.recordOffsets.first ?? 0) < ($1.recordOffsets.first ?? 0) }) {
            let key = run.state.key
            if let retention = closedRunRetention(for: key.namespace), let closed = run.state.closeTime {
                if now >= closed.advanced(by: retention) {
                    // Past its retention: dropped. It is the newest run of its workflow id so far, so
                    // the id has no current run unless a newer one (later in this loop) takes it.
                    registry.withShard(of: key.workflowKey) { shard in shard.currentRuns[key.workflowKey] = nil }
                    report.droppedRuns += 1
                    continue
                }
                timers.schedule(.retention, for: key, at: closed.advanced(by: retention))
            }
            let handle = ExecutionHandle(state: run.state, creating: false, recordOffsets: run.recordOffsets,
                                         taskQueues: run.state.isRunning ? runTaskQueues(of: run.state) : nil)
            let newerOnDisk = closedRuns?.newestFirstRecordOffset(of: key.workflowKey).map { $0 > (run.recordOffsets.first ?? 0) } ?? false
            registry.withShard(of: key.workflowKey) { shard in
                shard.runs[key] = handle
                if !newerOnDisk { shard.currentRuns[key.workflowKey] = key.runID }
            }
            visibility.update(run.state)
            report.runs += 1
            if run.state.isRunning {
                report.openRuns += 1
                restoreEffects(of: run.state, handle: handle)
            }
        }
        if let closedRuns {
            // A table without a visibility section (written before it existed) is indexed when a
            // List or Count first needs it, so that open does not decode its runs.
            if !indexedTable { visibility.pendingTable.withLock { $0 = true } }
            registry.install(closedRuns)
            report.runs += closedRuns.table.count
        }
        return report
    }

    /// The close time at or before which runs of `namespace` are past their retention at `now`
    /// (nil when they are kept), for the visibility index's base rows.
    func visibilityHorizon(namespace: String, now: Timestamp) -> Int64? {
        guard let retention = closedRunRetention(for: namespace) else { return nil }
        let horizon = now.nanosecondsSinceEpoch.subtractingReportingOverflow(retention.nanoseconds)
        return horizon.overflow ? nil : horizon.partialValue
    }

    /// The checkpoint and its closed-run table, if there is a valid one that fits this log. A
    /// damaged or foreign one (either file) is ignored (the whole log is replayed instead, which
    /// gives the same state) and reported.
    private func loadCheckpoint(_ report: inout EngineRecoveryReport) throws(SpoolError) -> (EngineCheckpoint, ClosedRunTable?)? {
        do throws(SpoolError) {
            guard let (checkpoint, table) = try checkpointStore.readCheckpoint() else { return nil }
            let tableFits = table.map { table in (0..<table.count).allSatisfy { table.firstRecordOffset(at: $0) < log.endOffset } } ?? true
            guard checkpoint.replayFrom >= log.startOffset, checkpoint.replayFrom <= log.endOffset, tableFits,
                  checkpoint.runs.allSatisfy({ ($0.recordOffsets.last ?? 0) < log.endOffset }) else {
                throw SpoolError(.corruptRecord, "it names log offsets the log does not hold (log \(log.startOffset)..<\(log.endOffset), "
                                 + "replay from \(checkpoint.replayFrom))")
            }
            try checkCheckpointBelongsToLog(checkpoint)
            return (checkpoint, table)
        } catch {
            // Whatever is wrong with it — even a file that cannot be read, or a directory in its
            // place — the log holds every run: replay it all rather than refuse to open.
            report.ignoredCheckpoint = error.message
            var metadata: Logger.Metadata = ["path": "\(checkpointStore.path)", "reason": "\(error.message)"]
            if DataDirectory.isDirectory(checkpointStore.path) && !configuration.isReadOnly {
                report.movedCheckpoint = AtomicFile.moveAside(checkpointStore.path, in: directory, syscalls: configuration.log.syscalls)
                if let moved = report.movedCheckpoint { metadata["movedTo"] = "\(moved)" }
            }
            logger.warning("ignoring the engine checkpoint; replaying the whole log", metadata: metadata)
            return nil
        }
    }

    /// Throws when the checkpoint is not this log's: another store's checkpoint whose offsets happen
    /// to lie inside this log would be trusted, and the runs of this log it does not name (every
    /// one before its replay-from) would be hidden. Its newest and its oldest run are looked up
    /// where it says their records are: each record there must change that run. Two reads of the
    /// log, whatever the number of runs; a checkpoint written by this log always passes (compaction
    /// rewrites it with the offsets it keeps).
    private func checkCheckpointBelongsToLog(_ checkpoint: EngineCheckpoint) throws(SpoolError) {
        let withRecords = checkpoint.runs.filter { !$0.recordOffsets.isEmpty }
        let samples = [withRecords.max { $0.recordOffsets.last! < $1.recordOffsets.last! }.map { ($0.state.key, $0.recordOffsets.last!) },
                       withRecords.min { $0.recordOffsets.first! < $1.recordOffsets.first! }.map { ($0.state.key, $0.recordOffsets.first!) }]
        for case let (key, offset)? in samples {
            let names: Bool
            do {
                let record = try TransitionRecord.decode(try log.read(at: offset), context: "history log record at offset \(offset)")
                names = record.runs.contains { $0.key == key }
            } catch {
                names = false
            }
            guard names else {
                throw SpoolError(.corruptRecord, "it says the record at log offset \(offset) changes run \(key.workflowID)/\(key.runID), "
                                 + "but the log's record there does not: the checkpoint is not this log's")
            }
        }
    }

    /// Re-queues the pending tasks of an open run and re-arms its timers.
    func restoreEffects(of state: ExecutionState, handle: ExecutionHandle) {
        let key = state.key
        let now = clock.now()
        if let expiration = state.runExpirationTime { timers.schedule(.workflowRunTimeout, for: key, at: expiration) }
        if let time = state.firstWorkflowTaskTime { timers.schedule(.firstWorkflowTask, for: key, at: time) }
        if let task = state.workflowTask {
            if let started = task.startedTime {
                timers.schedule(.workflowTaskStartToClose(scheduledEventID: task.scheduledEventID, startedEventID: task.startedEventID),
                                for: key, at: started.advanced(by: task.startToCloseTimeout))
            } else {
                dispatchOrDelayWorkflowTask(task, state: state, queues: handle.taskQueues)
            }
        }
        for activity in state.activities.values.sorted(by: { $0.scheduledEventID < $1.scheduledEventID }) {
            armScheduleToClose(activity, key: key)
            if activity.isStarted {
                armStartedActivity(activity, key: key)
            } else if activity.attemptScheduledTime > now {
                timers.schedule(.activityRetry(scheduledEventID: activity.scheduledEventID, attempt: activity.attempt), for: key,
                                at: activity.attemptScheduledTime)
            } else {
                dispatchActivityTask(activity, key: key, queues: handle.taskQueues)
            }
        }
        for timer in state.timers.values.sorted(by: { $0.startedEventID < $1.startedEventID }) {
            timers.schedule(.userTimer(timerID: timer.timerID, startedEventID: timer.startedEventID), for: key, at: timer.fireTime)
        }
    }

    /// Writes a checkpoint, so that the next open replays only the log after it. Transitions go
    /// on meanwhile (each run in memory is read under its gate, one at a time). The engine does
    /// this on ``close()`` and after every ``SpoolEngineConfiguration/checkpointEveryRecords`` appends.
    ///
    /// Cost: the encoded state of every open run and of the runs closed since the last closed-run
    /// table, written and fsynced once. When those closed runs reach
    /// ``SpoolEngineConfiguration/closedRunTableMergeThreshold`` they are merged with the table
    /// into a new one (a sequential rewrite of every closed run) and leave memory.
    /// - Throws: ``SpoolError/Code/io`` when a file cannot be written; ``SpoolError/Code/storage``
    ///   when the log cannot be flushed.
    public func checkpoint() async throws(SpoolError) {
        await checkpointGate.acquire()
        defer { checkpointGate.release() }
        let started = ContinuousClock.now
        defer { metrics.checkpointLatency.recordNanoseconds((ContinuousClock.now - started).nanoseconds) }
        // Read before visiting the runs: every record below it is reflected in the runs visited.
        let replayFrom = log.endOffset
        let closedRuns = registry.closedRuns.withLock { $0 }
        var open: [EngineCheckpoint.Run] = []
        var closed: [EngineCheckpoint.Run] = []
        var closedHandles: [ExecutionHandle] = []
        for handle in registry.allHandles() {
            await handle.gate.acquire()
            if !handle.isRemoved && handle.isVisible {
                let offsets = handle.historyOrOffsets.offsets
                let state = handle.state
                if let first = offsets.first {
                    if state.isRunning {
                        open.append(EngineCheckpoint.Run(state: state, recordOffsets: offsets))
                    } else if closedRuns?.contains(state.key.workflowKey, firstRecordOffset: first) != true {
                        // Closed since the table was written (one loaded from the table is in it already).
                        closed.append(EngineCheckpoint.Run(state: state, recordOffsets: offsets))
                        closedHandles.append(handle)
                    }
                }
            }
            handle.gate.release()
        }
        // With .none or .interval durability, records the checkpoint reflects must be on disk before it is.
        do {
            try await log.flush()
        } catch {
            throw SpoolError(.storage, "the history log could not be flushed for a checkpoint", underlying: error)
        }
        let merged = try checkpointStore.writeCheckpoint(
            replayFrom: replayFrom, open: open, closed: closed, table: closedRuns?.table,
            mergeThreshold: configuration.closedRunTableMergeThreshold, retention: retentionPolicy.longest, now: retentionClock.now())
        if let merged {
            // The merged runs are on disk in the new table: look them up there, drop them from memory.
            let installed = ClosedRuns(table: merged, retention: { [namespaceRegistry, configuration] in namespaceRegistry.retentionPolicy(fallback: configuration.closedRunRetention) }, clock: retentionClock, timers: timers, logger: logger)
            registry.install(installed)
            registry.evict(closedHandles)
            // The new table's runs become the visibility index's base rows (the old table's
            // mapping and the rows of the runs just merged are let go).
            let now = retentionClock.now()
            do {
                _ = try visibility.rebase(merged, expiredBefore: { visibilityHorizon(namespace: $0, now: now) },
                                          isInMemory: { [registry] key in registry.shard(key.workflowKey).withLock { $0.runs[key] != nil } })
            } catch {
                logger.error("the new closed-run table's visibility section does not decode: the index keeps its rows", metadata: ["error": "\(error)"])
            }
        }
        appendsSinceCheckpoint.store(0, ordering: .relaxed)
    }
}
