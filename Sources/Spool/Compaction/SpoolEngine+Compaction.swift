import SpoolLog

/// What ``SpoolEngine/compactHistory(directory:configuration:dryRun:)`` did (or would do).
public struct HistoryCompactionSummary: Sendable, Equatable {
    /// The history log's compaction: records and bytes of its sealed segments.
    public var log: CompactionSummary
    /// Runs whose records were kept (open runs, and closed runs within their retention).
    public var runsKept: Int
    /// Closed runs whose retention had ended: their records were dropped.
    public var runsDropped: Int
}

extension TransitionRecord.RunChanges {
    /// Whether these changes close their run. A record holds two runs when a run closes and
    /// another starts with it (continue-as-new, terminate-and-start); once compaction has dropped
    /// the records of the first run, replay finds its closing changes in that record with no
    /// start before them, and skips them (see ``SpoolEngine/compactHistory(directory:configuration:dryRun:)``).
    var closesItsRun: Bool {
        changes.contains { change in
            if case .event(let event) = change { return event.eventType.isClosing }
            return false
        }
    }
}

extension SpoolEngine {
    /// Compacts a stopped engine's history log: drops the records of runs closed longer than
    /// `configuration.closedRunRetention` (and of runs an earlier open already dropped), keeps
    /// every record a kept run's history needs — a record shared by two runs is kept when either
    /// is kept — with its offset.
    ///
    /// Order, for crash safety: the run states are rebuilt (checkpoint, then replay of the log
    /// after it, the rules of `recover()`); a new checkpoint of the kept runs only, with
    /// replay-from at the log's end, is written atomically; then ``Log/compact(below:keeping:)``
    /// swaps the sealed segments (a crash there is resolved at the next open). A crash between the
    /// two leaves every record and a checkpoint that no longer names the expired runs: the next
    /// open from it gives the same runs. Without a checkpoint, full replay sees whole runs only,
    /// except the closing changes of an expired run in a record it shares with the run that
    /// continued it, which replay skips (``TransitionRecord/RunChanges/closesItsRun``). The
    /// checkpoint (with its closed-run table, when the kept closed runs reach
    /// `closedRunTableMergeThreshold`) is replaced atomically; superseded tables are removed after it.
    ///
    /// The active segment is sealed first (``LogConfiguration/sealsActiveSegmentAtOpen``) and
    /// rewritten with the others, so a history smaller than one segment shrinks too; appends
    /// after the compaction start a new segment. The engine must not be running (the log's lock
    /// refuses).
    ///
    /// - Parameters:
    ///   - directory: the engine's data directory (`directory/history`, `directory/checkpoint`).
    ///   - configuration: `closedRunRetention` (nil keeps every closed run), `clock`, `log`.
    ///   - dryRun: plan only, read-only: nothing in the directory is written; `bytesAfter` is an
    ///     estimate without compression.
    ///   - progress: called now and then while the sealed segments are copied.
    /// - Throws: ``SpoolError/Code/storage`` (the log is locked, missing, damaged, or the swap
    ///   failed), ``SpoolError/Code/corruptRecord``, ``SpoolError/Code/io`` (the checkpoint).
    /// Cost: replay of the log after the checkpoint, then one read of the sealed segments.
    public static func compactHistory(directory: String, configuration: SpoolEngineConfiguration = SpoolEngineConfiguration(),
                                      dryRun: Bool = false, progress: CompactionProgress? = nil) throws(SpoolError) -> HistoryCompactionSummary {
        let logDirectory = DataDirectory(directory).history
        let store = CheckpointStore(directory: directory, syscalls: configuration.log.syscalls)
        let retention = try retentionPolicy(directory: directory, configuration: configuration)
        var checkpoint = try store.readCheckpointSkim()
        let now = configuration.clock.now()
        if dryRun {
            do {
                let offline = try OfflineLog.open(directory: logDirectory)
                defer { offline.close() }
                let source = try LogRecordSource(offline: offline)
                let plan = try HistoryCompactionPlan(source, checkpoint: checkpoint.take(), retention: retention, now: now)
                let summary = try source.estimateCompaction(segmentBytes: configuration.log.segmentBytes,
                                                            includingActiveSegment: true) { plan.live.contains($0) }
                return HistoryCompactionSummary(log: summary, runsKept: plan.kept.count, runsDropped: plan.dropped)
            } catch {
                throw SpoolError.wrapping(error, "cannot plan the compaction of \(logDirectory)")
            }
        }
        let log: Log
        var logConfiguration = configuration.log
        logConfiguration.sealsActiveSegmentAtOpen = true
        do { log = try Log.open(directory: logDirectory, configuration: logConfiguration) } catch {
            throw SpoolError(.storage, "cannot open the history log in \(directory)", underlying: error)
        }
        do {
            let source = LogRecordSource(log: log)
            // Taken, so that the plan holds the only reference to the checkpoint's bytes and table.
            var plan = try HistoryCompactionPlan(source, checkpoint: checkpoint.take(), retention: retention, now: now)
            try plan.writeCheckpoint(to: store, replayFrom: log.endOffset, mergeThreshold: configuration.closedRunTableMergeThreshold)
            let summary = try log.compactByOffset(keeping: source.reportingOffsets(progress) { plan.live.contains($0) })
            try log.close()
            return HistoryCompactionSummary(log: summary, runsKept: plan.kept.count, runsDropped: plan.dropped)
        } catch {
            log.abandon()
            throw SpoolError.wrapping(error, "cannot compact \(logDirectory)")
        }
    }
}

extension SpoolEngine {
    /// Bytes of the records the runs within retention need (payload and length of each; batch
    /// headers and indexes not counted), read without opening the log.
    /// - Throws: as ``compactHistory(directory:configuration:dryRun:progress:)``.
    public static func liveHistoryBytes(directory: String, configuration: SpoolEngineConfiguration = SpoolEngineConfiguration()) throws(SpoolError) -> Int {
        let logDirectory = DataDirectory(directory).history
        let checkpoint = try CheckpointStore(directory: directory, syscalls: configuration.log.syscalls).readCheckpointSkim()
        let retention = try retentionPolicy(directory: directory, configuration: configuration)
        do {
            let offline = try OfflineLog.open(directory: logDirectory)
            defer { offline.close() }
            let source = try LogRecordSource(offline: offline)
            let plan = try HistoryCompactionPlan(source, checkpoint: checkpoint, retention: retention,
                                                 now: configuration.clock.now())
            return try source.liveBytes { plan.live.contains($0) }
        } catch {
            throw SpoolError.wrapping(error, "cannot read \(logDirectory)")
        }
    }
}

extension SpoolError {
    static func wrapping(_ error: any Error, _ what: String) -> SpoolError {
        if let error = error as? SpoolError { return error }
        return SpoolError(.storage, what, underlying: error as? LogError)
    }
}

/// Which runs a history compaction keeps, their states, and the offsets of their records.
///
/// It reads the checkpoint with ``CheckpointSkim`` (a closed run is its key, close time and
/// record offsets; its bytes are copied into the new checkpoint or closed-run table) and decodes a run's
/// full state only when replay changes it: after a clean close there is nothing to replay, and
/// planning costs little more than reading the checkpoint once.
struct HistoryCompactionPlan {
    /// The checkpoint read (an empty one when there is none, or it does not fit the log).
    private var skim = CheckpointSkim(decoded: EngineCheckpoint(replayFrom: 0, runs: []))
    private(set) var kept: [CheckpointSkim.Run] = []
    var dropped = 0
    var live: LiveOffsets

    init(_ source: LogRecordSource, checkpoint: CheckpointSkim?, retention: RetentionPolicy, now: Timestamp) throws {
        // Runs in an array, updated in place (a run's state holds many references: copying it
        // through a dictionary and a sort cost more than decoding the checkpoint).
        var runs: [CheckpointSkim.Run] = []
        var replayFrom = source.startOffset
        var skim = CheckpointSkim(decoded: EngineCheckpoint(replayFrom: 0, runs: []))
        func fits(_ replayFrom: UInt64) -> Bool { replayFrom >= source.startOffset && replayFrom <= source.endOffset }
        // The checkpoint when it fits the log (as `loadCheckpoint`); otherwise the whole log.
        if var checkpoint, fits(checkpoint.replayFrom), checkpoint.runs.allSatisfy({ ($0.recordOffsets.last ?? 0) < source.endOffset }) {
            // Moved out, so that removing the dropped runs below does not copy the array.
            runs = checkpoint.runs
            checkpoint.runs = []
            skim = checkpoint
            replayFrom = checkpoint.replayFrom
        }
        var index: [ExecutionKey: Int] = [:]
        if replayFrom < source.endOffset {
            index.reserveCapacity(runs.count)
            for (i, run) in runs.enumerated() { index[run.key] = i }
        }
        try source.forEachRecord(from: replayFrom) { entry in
            let record = try TransitionRecord.decode(entry.payload, context: "history log record at offset \(entry.offset)")
            for change in record.runs {
                let i: Int
                if let existing = index[change.key] {
                    if let last = runs[existing].recordOffsets.last, last >= entry.offset { continue }
                    i = existing
                } else {
                    guard case .event(let first) = change.changes.first, case .workflowExecutionStarted(let started) = first.attributes else {
                        if change.closesItsRun { continue }
                        throw change.key.error(.corruptRecord, "record at offset \(entry.offset) changes a run that was never started")
                    }
                    i = runs.count
                    runs.append(CheckpointSkim.Run(key: change.key, state: ExecutionState(key: change.key, started: started, startTime: first.eventTime),
                                                   closeTime: nil, recordOffsets: []))
                    index[change.key] = i
                }
                // Replay changes this run: its state is needed, and its checkpoint entry is stale.
                var state = try skim.state(of: runs[i])
                for stateChange in change.changes { try state.apply(stateChange) }
                runs[i].closeTime = state.closeTime
                runs[i].state = state
                runs[i].entry = nil
                runs[i].tableIndex = nil
                runs[i].recordOffsets.append(entry.offset)
            }
        }
        live = LiveOffsets(start: source.startOffset, end: source.endOffset)
        // Every record can be rewritten: the compaction seals the active segment first
        // (`sealsActiveSegmentAtOpen`; a dry run plans for the same), so a run past retention is
        // dropped whole. A run an earlier open forgot (past retention, in no checkpoint, before
        // replay-from) is in no plan and loses every record.
        //
        // Retention is judged as a live engine judges it at open (RetentionClock): by the wall
        // clock, but no later than the log's newest time (a run's close, or an open run's start)
        // plus the slack, so that a clock far ahead (a misset clock, faketime) cannot drop the
        // runs that closed last.
        let newest = runs.lazy.compactMap { $0.closeTime ?? $0.state?.startTime }.max()
        let horizon = RetentionClock.bound(now, newestRecord: newest, slack: RetentionClock.slack(retention: retention.shortest))
        let before = runs.count
        runs.removeAll { run in
            guard let limit = retention.retention(for: run.key.namespace), let closed = run.closeTime else { return false }
            return horizon >= closed.advanced(by: limit)
        }
        dropped = before - runs.count
        for i in runs.indices { for offset in runs[i].recordOffsets { live.insert(offset) } }
        kept = runs
        self.skim = skim
    }

    /// Writes the checkpoint of the kept runs, replaying from `replayFrom`: open runs in the
    /// checkpoint file; closed runs there too while they are fewer than `mergeThreshold` and none
    /// came from a closed-run table, else in a new table. Runs unchanged by replay are copied as
    /// bytes (a table's by ``ClosedRunTable/merge(_:old:fresh:)``), never decoded. The table is
    /// written (atomically) before the checkpoint that names it; tables it supersedes are
    /// removed once the checkpoint is durable. Then the old checkpoint's bytes and table are let
    /// go (the table is an 80 MB mapping in `spool bench compact`, no use to the copy that
    /// follows): `kept` keeps its keys and offsets, not their states.
    mutating func writeCheckpoint(to store: CheckpointStore, replayFrom: UInt64, mergeThreshold: Int) throws(SpoolError) {
        var open: [Int] = [], closed: [Int] = []
        var fromTable = false
        for i in kept.indices {
            // A skimmed run without its state is closed (the skim decodes open runs).
            if kept[i].state?.isRunning ?? false { open.append(i) } else { closed.append(i) }
            if kept[i].tableIndex != nil { fromTable = true }
        }
        var inCheckpoint = open + closed
        var reference: EngineCheckpoint.TableReference?
        if !closed.isEmpty && (closed.count >= mergeThreshold || fromTable) {
            var fresh: [ClosedRunTable.Entry] = []
            var copied: [Int] = []
            for i in closed {
                let run = kept[i]
                if let index = run.tableIndex {
                    copied.append(index)
                } else if let state = run.state {
                    fresh.append(ClosedRunTable.entry(EngineCheckpoint.Run(state: state, recordOffsets: run.recordOffsets)))
                } else {
                    // Unchanged in the checkpoint file: its entry is the table's data as it is.
                    fresh.append(ClosedRunTable.Entry(workflowHash: ClosedRunTable.workflowHash(run.key.workflowKey),
                                                      firstRecordOffset: run.recordOffsets[0],
                                                      closeTime: (run.closeTime ?? Timestamp(nanosecondsSinceEpoch: 0)).nanosecondsSinceEpoch,
                                                      data: try skim.encoded(run)))
                }
            }
            fresh.sort { ($0.workflowHash, $0.firstRecordOffset) < ($1.workflowHash, $1.firstRecordOffset) }
            copied.sort()
            let order = ClosedRunTable.mergeOrder(kept: copied, of: skim.table, fresh: fresh)
            reference = try store.writeTable(order, old: skim.table, fresh: fresh, replayFrom: replayFrom)
            inCheckpoint = open
        }
        let capacity = 64 + inCheckpoint.reduce(0) { $0 + (kept[$1].entry?.count ?? 256) }
        let bytes = try EngineCheckpoint.encoded(replayFrom: replayFrom, closedTable: reference, runCount: inCheckpoint.count,
                                                 capacity: capacity) { (w: inout BinaryWriter) throws(SpoolError) in
            for i in inCheckpoint { try skim.write(kept[i], into: &w) }
        }
        try store.write(bytes)
        store.removeClosedRunTables(keeping: reference?.name)
        skim = CheckpointSkim(decoded: EngineCheckpoint(replayFrom: 0, runs: []))
        for i in kept.indices {
            kept[i].entry = nil
            kept[i].tableIndex = nil
        }
    }
}

extension SpoolEngine {
    /// The retention of closed runs offline tools apply: the data directory's namespaces' own,
    /// else `configuration.closedRunRetention`.
    /// - Throws: ``SpoolError/Code/corruptRecord`` when the namespaces file is damaged.
    static func retentionPolicy(directory: String, configuration: SpoolEngineConfiguration) throws(SpoolError) -> RetentionPolicy {
        let namespaces = NamespaceRegistry(directory: directory, syscalls: configuration.log.syscalls)
        try namespaces.load()
        return namespaces.retentionPolicy(fallback: configuration.closedRunRetention)
    }
}
