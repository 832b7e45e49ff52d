import SpoolLog

extension TaskStore {
    /// Compacts a closed store's log: keeps the records a reopen still needs and drops the rest.
    ///
    /// Kept: every task record at or after the checkpoint's ack level that no acks record, retry,
    /// dead letter or purge supersedes (pending tasks, retries waiting out a backoff, dead
    /// letters), and every control record at or after the ack level (pause, resume, rate limits,
    /// purges: the control state as of the ack level is in the checkpoint). Dropped: everything
    /// below the ack level, acks records, acknowledged and purged task records. Records keep
    /// their offsets, so task ids stay valid and a reopen restores the same tasks in the same
    /// order; sealed segments wholly below the ack level are deleted. The rules are those of
    /// replay (`TaskStore+Recovery.swift`); `aCompactedStoreRestoresTheSameTasks` holds them together.
    ///
    /// The active segment is sealed first (``LogConfiguration/sealsActiveSegmentAtOpen``) and
    /// rewritten with the sealed ones (see ``Log/compact(below:keeping:)`` for the crash-safe
    /// swap), so a store smaller than one segment shrinks too. The store must not be open: the log's lock
    /// makes this fail with the log's `directoryLocked` while it is.
    ///
    /// - Parameters:
    ///   - directory: the store's directory (its log is in `directory/log`).
    ///   - dryRun: plan only, through a read-only handle: nothing in the directory is written, and
    ///     the summary's `bytesAfter` is an estimate without compression.
    ///   - progress: called now and then while the sealed segments are copied, with offsets done
    ///     and the offsets to do.
    /// - Returns: what was (or would be) kept and dropped.
    /// - Throws: ``QueueError/Code/log`` (locked, missing, damaged, I/O), ``QueueError/Code/corruptRecord``
    ///   (a damaged `checkpoint` is not an error: every record is judged from the log instead).
    /// Cost: one read of the records after the ack level to plan, one of the sealed segments to copy.
    public static func compact(directory: String, configuration: TaskStoreConfiguration = TaskStoreConfiguration(),
                               dryRun: Bool = false, progress: CompactionProgress? = nil) throws(QueueError) -> CompactionSummary {
        let logDirectory = DataDirectory.StoreDirectory(directory).log
        // A damaged checkpoint is no reason to refuse; without it every record is judged from the log.
        let checkpoint = try? StoreCheckpoint.read(directory: directory, syscalls: configuration.log.syscalls)
        if dryRun {
            let offline: OfflineLog
            do { offline = try OfflineLog.open(directory: logDirectory) } catch { throw .log(error, "cannot open the queue log") }
            defer { offline.close() }
            do {
                let source = try LogRecordSource(offline: offline)
                let live = try liveRecords(source, checkpoint: checkpoint, path: logDirectory)
                return try source.estimateCompaction(segmentBytes: configuration.log.segmentBytes,
                                                     includingActiveSegment: true) { live.contains($0) }
            } catch let error as LogError {
                throw .log(error, "cannot read the queue log")
            } catch let error as QueueError {
                throw error
            } catch {
                throw QueueError(.log, "cannot read the queue log: \(error)", path: logDirectory)
            }
        }
        let log: Log
        var logConfiguration = configuration.log
        logConfiguration.sealsActiveSegmentAtOpen = true
        do { log = try Log.open(directory: logDirectory, configuration: logConfiguration) } catch {
            throw .log(error, "cannot open the queue log")
        }
        do {
            let source = LogRecordSource(log: log)
            let live = try liveRecords(source, checkpoint: checkpoint, path: logDirectory)
            let summary = try log.compactByOffset(keeping: source.reportingOffsets(progress) { live.contains($0) })
            try log.close()
            return summary
        } catch {
            // A failed swap poisoned the log, or reading failed: nothing more is written; the next
            // open finishes or discards the swap.
            log.abandon()
            if let error = error as? QueueError { throw error }
            if let error = error as? LogError { throw .log(error, "cannot compact the queue log") }
            throw QueueError(.log, "cannot compact the queue log: \(error)", path: logDirectory)
        }
    }

    /// Bytes of the records a reopen needs (payload and length of each; batch headers and indexes
    /// not counted), read without opening the log: the floor a compaction approaches.
    /// - Throws: as ``compact(directory:configuration:dryRun:progress:)``.
    public static func liveBytes(directory: String, configuration: TaskStoreConfiguration = TaskStoreConfiguration()) throws(QueueError) -> Int {
        let logDirectory = DataDirectory.StoreDirectory(directory).log
        // A damaged checkpoint is no reason to refuse; without it every record is judged from the log.
        let checkpoint = try? StoreCheckpoint.read(directory: directory, syscalls: configuration.log.syscalls)
        do {
            let offline = try OfflineLog.open(directory: logDirectory)
            defer { offline.close() }
            let source = try LogRecordSource(offline: offline)
            let live = try liveRecords(source, checkpoint: checkpoint, path: logDirectory)
            return try source.liveBytes { live.contains($0) }
        } catch let error as QueueError {
            throw error
        } catch let error as LogError {
            throw .log(error, "cannot read the queue log")
        } catch {
            throw QueueError(.log, "cannot read the queue log: \(error)", path: logDirectory)
        }
    }

    /// The offsets of the records a reopen needs: replay's rules, keeping offsets instead of
    /// building queues.
    static func liveRecords(_ source: LogRecordSource, checkpoint: StoreCheckpoint?, path: String) throws -> LiveOffsets {
        // Replay starts here (see `recover(from:)`). An ack level past the end is a lost unsynced
        // tail or a damaged checkpoint (see StoreCheckpointAssessment): keeping every record from
        // the log's start is right for both, where trusting it would drop every task.
        let ackLevel = checkpoint.map { $0.ackLevel > source.endOffset ? 0 : $0.ackLevel } ?? 0
        return try liveRecords(source, ackLevel: ackLevel, path: path)
    }

    /// The offsets of the records a replay from `ackLevel` needs, in `[ackLevel, source.endOffset)`.
    ///
    /// `honoringPurgesBelow`: purge records at or past it do not drop the tasks they purge (they
    /// stay live). An online compaction passes the store's ack level in memory: a purge below it
    /// has been applied in memory (its append's retain is released only then), so no refill can
    /// still read the tasks it drops; one above it may not have been. Acks records and
    /// replacements need no such care: a task leaves memory before its acks record or its
    /// replacement is appended. Records past `source.endOffset` are read too (a log that is
    /// being appended to): they drop what they ack, and are never compaction candidates.
    static func liveRecords(_ source: LogRecordSource, ackLevel: UInt64, honoringPurgesBelow purgeLimit: UInt64 = .max,
                            path: String) throws -> LiveOffsets {
        let start = max(ackLevel, source.startOffset)
        var live = LiveOffsets(start: start, end: source.endOffset)
        var acked = LiveOffsets(start: start, end: source.endOffset)
        // Per queue, its task records in order (for purges), and whether each is a dead letter.
        var queues: [QueueKey: [(id: UInt64, dead: Bool)]] = [:]
        try source.forEachRecord(from: start) { record in
            func corrupt(_ what: String) -> QueueError {
                QueueError(.corruptRecord, "the record at offset \(record.offset) \(what); the queue log was written by something else or is damaged",
                           taskID: record.offset, path: path)
            }
            switch record.payload.first.flatMap(RecordType.init(rawValue:)) {
            case .task:
                guard let task = TaskRecord(decoding: record.payload, includingPayload: false) else { throw corrupt("is not a valid task record") }
                if let replaced = task.replaces { acked.insert(replaced) }
                queues[QueueKey(name: task.queue, kind: task.kind), default: []].append((record.offset, task.deadLetterReason != nil))
            case .acks:
                guard let ids = AcksRecord.decode(record.payload) else { throw corrupt("is not a valid acks record") }
                for id in ids { acked.insert(id) }
            case .control:
                guard let control = ControlRecord(decoding: record.payload) else { throw corrupt("is not a valid control record") }
                live.insert(record.offset)
                if case .purge(let inFlight, let deadLetters) = control.operation, record.offset < purgeLimit {
                    let keep = Set(inFlight)
                    let purged = record.offset
                    queues[QueueKey(name: control.queue, kind: control.kind)]?.removeAll {
                        $0.id < purged && ($0.dead ? deadLetters : !keep.contains($0.id))
                    }
                }
            case nil:
                throw corrupt("has an unknown type")
            }
        }
        for tasks in queues.values {
            for task in tasks where !acked.contains(task.id) { live.insert(task.id) }
        }
        return live
    }
}
