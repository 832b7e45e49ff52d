import SpoolLog
import SpoolMatching
import SpoolPrimitives

extension TaskStore {
    /// Runs one round of online compaction now: measures the log's live bytes and, when
    /// ``TaskStoreConfiguration/onlineCompaction`` says so (or `force`), rewrites its sealed
    /// segments without the records a reopen no longer needs — or, when the dead records are in
    /// the active segment, asks the log to roll it so that the next round can. The background
    /// loop calls this every ``OnlineCompactionPolicy/checkInterval``; calling it is for tests
    /// and tools.
    ///
    /// Adds, polls and completions go on meanwhile. The records judged live are those of the
    /// offline ``compact(directory:configuration:dryRun:progress:)`` — replay's rules — from the
    /// ack level of the last checkpoint this store wrote (none yet: from the log's start),
    /// judged from the log itself, not from memory: a task completed in memory whose acks record
    /// is not yet appended is kept, and dropped by a later round. Only segments sealed when the
    /// round began are rewritten: a record appended meanwhile is never a candidate. The swap is
    /// the log's crash-safe one (``Log/compactByOffset(below:keeping:pacer:)``).
    ///
    /// `force`: rewrite the sealed segments even when the policy does not ask for it (and, when
    /// there are none, ask for a roll of a non-empty active segment).
    /// - Throws: ``QueueError/Code/closed``; ``QueueError/Code/log`` when the log cannot be read or
    ///   the swap failed (a failure after the swap's commit point fails the store: reopen it).
    @discardableResult
    public func compactOnline(force: Bool = false) async throws(QueueError) -> OnlineCompactionOutcome {
        try await onlineRound(force ? .force : .policy)
    }

    /// Measures the log as a round of ``compactOnline(force:)`` does, and changes nothing:
    /// `.notDue` with the log's segment bytes and its live bytes, or `.busy` while a round runs.
    /// (`spool bench compact --online` samples it.)
    /// - Throws: as ``compactOnline(force:)``.
    public func measureLog() async throws(QueueError) -> OnlineCompactionOutcome {
        try await onlineRound(.measure)
    }

    private func onlineRound(_ mode: OnlineCompactionRound) async throws(QueueError) -> OnlineCompactionOutcome {
        let force = mode == .force
        try checkUsable()
        guard !configuration.isReadOnly else {
            throw QueueError(.log, "cannot compact a store opened read-only",
                             underlying: LogError(.readOnly, "the log is open read-only", path: log.directory))
        }
        let pacer = CompactionPacer(bytesPerSecond: configuration.onlineCompaction.bytesPerSecond)
        let begun: Bool = lifecycle.withLock { state in
            if state.closed || state.compacting || state.deletingSegments { return false }
            state.compacting = true
            state.compactionPacer = pacer
            return true
        }
        guard begun else { return .busy }
        defer { lifecycle.withLock { $0.compacting = false; $0.compactionPacer = nil } }
        let started = monotonicNanoseconds()
        // The ack level of the durable checkpoint: a reopen replays from it (or from further on).
        let durableAckLevel = lifecycle.withLock { $0.lastCheckpoint?.ackLevel } ?? 0
        // Purges below the ack level in memory have been applied in memory (see liveRecords).
        let purgeLimit = ackLevel
        let previous = lifecycle.withLock { $0.lastCompactionMeasure }
        let policy = configuration.onlineCompaction
        let log = self.log
        let path = log.directory
        // A round that asks for a roll waits a little for it (the next append rolls) and judges again,
        // so that the rolled segment is rewritten in the same round.
        var result: Result<(OnlineCompactionOutcome, measuredEnd: UInt64?), QueueError>
        var attempt = 0
        var rolled = false
        repeat {
        let activeBase = log.segmentBaseOffsets.last
        result = await onOwnThread(named: "spool-compact") {
            do {
                let source = LogRecordSource(log: log)
                let total = source.sealedBytes + source.activeBytes
                // Nothing appended and no checkpoint since the last measure: nothing changed.
                if mode == .policy, let previous, previous.end == source.endOffset, previous.ackLevel == durableAckLevel {
                    return .success((.notDue(segmentBytes: total, liveBytes: nil), nil))
                }
                let live = try Self.liveRecords(source, ackLevel: min(durableAckLevel, source.endOffset),
                                                honoringPurgesBelow: purgeLimit, path: path)
                var liveSealed = 0, liveActive = 0
                try source.forEachRecord(from: live.start) { record in
                    guard live.contains(record.offset) else { return }
                    if record.offset < source.activeBase { liveSealed += record.payload.count + 4 } else { liveActive += record.payload.count + 4 }
                }
                let liveBytes = liveSealed + liveActive
                if mode != .measure && source.sealedSegments > 0 && (force || policy.isDue(totalBytes: source.sealedBytes, liveBytes: liveSealed)) {
                    // Only the segments sealed when `source` was taken: the judge knows nothing past its end.
                    let summary = try log.compactByOffset(below: source.activeBase, keeping: { live.contains($0) }, pacer: pacer)
                    return .success((.compacted(summary, liveBytes: liveBytes), source.endOffset))
                }
                if mode != .measure && source.activeBytes > 0 && (force || policy.isDue(totalBytes: total, liveBytes: liveBytes)) {
                    log.requestRoll()
                    return .success((.rolledActiveSegment(segmentBytes: total, liveBytes: liveBytes), nil))
                }
                return .success((.notDue(segmentBytes: total, liveBytes: liveBytes), source.endOffset))
            } catch let error as QueueError {
                return .failure(error)
            } catch let error as LogError {
                return .failure(.log(error, "the online compaction of the queue log failed"))
            } catch {
                return .failure(QueueError(.log, "the online compaction of the queue log failed: \(error)", path: path))
            }
        }
            attempt += 1
            guard case .success((.rolledActiveSegment, _)) = result else { break }
            rolled = true
            guard attempt < 2, await log.waitForRoll(from: activeBase) else { break }
        } while true
        let elapsed = monotonicNanoseconds() - started
        switch result {
        case .success(let (outcome, measuredEnd)):
            lifecycle.withLock { state in
                if mode != .measure {
                    state.compactionStatistics.record(outcome, nanoseconds: elapsed)
                    // A roll followed by a compaction in the same round.
                    if rolled, case .compacted = outcome { state.compactionStatistics.rollsRequested += 1 }
                }
                state.lastCompactionMeasure = measuredEnd.map { (end: $0, ackLevel: durableAckLevel) }
            }
            return outcome
        case .failure(let error):
            lifecycle.withLock { state in
                state.compactionStatistics.failures += 1
                state.lastCompactionMeasure = nil
            }
            throw error
        }
    }

    /// Counters of the online compaction since open.
    public var onlineCompactionStatistics: OnlineCompactionStatistics {
        lifecycle.withLock { $0.compactionStatistics }
    }

    /// Bytes of the queue log's segments now (what it takes on disk, less indexes and the active
    /// segment's zero-filled preallocation).
    public var logSegmentBytes: Int { log.segmentBytes }

    /// Starts the background loop of ``compactOnline(force:)`` when the policy enables it.
    func startOnlineCompaction() {
        let policy = configuration.onlineCompaction
        guard policy.isEnabled else { return }
        let interval = UInt64(policy.checkInterval.nanoseconds)
        let clock = self.clock
        let logger = configuration.logger
        let task = Task { [weak self] in
            var next = clock.now().nanoseconds &+ interval
            while !Task.isCancelled {
                do { try await clock.sleep(until: MatchingInstant(nanoseconds: next)) } catch { return }
                // Held for one round only, never across the sleep.
                guard let store = self else { return }
                do {
                    _ = try await store.compactOnline()
                } catch {
                    // Stopped by close: not worth a warning.
                    if !store.lifecycle.withLock({ $0.closed }) { logger.warning("online compaction failed", metadata: ["error": "\(error)"]) }
                }
                next = clock.now().nanoseconds &+ interval
            }
        }
        lifecycle.withLock { $0.compactor = task }
    }

    /// Stops the background compaction: the round in progress stops at its next batch (nothing
    /// changed then) or finishes its swap.
    func stopOnlineCompaction() async {
        let (task, pacer) = lifecycle.withLock { state in
            defer { state.compactor = nil }
            return (state.compactor, state.compactionPacer)
        }
        pacer?.cancel()
        task?.cancel()
        await task?.value
    }
}
