import SpoolLog
import SpoolPrimitives
import Synchronization

/// The engine's online compaction state (one round at a time).
final class OnlineHistoryCompaction: Sendable {
    struct State {
        var running = false
        var pacer: CompactionPacer?
        var task: Task<Void, Never>?
        var statistics = OnlineCompactionStatistics()
        /// The log's end at the last measure that found nothing to do, and rounds skipped since.
        var lastMeasuredEnd: UInt64?
        var skippedSinceMeasure = 0
        /// The live bytes the last measure found.
        var lastLiveBytes: Int?
    }
    let state = Mutex(State())
}

extension SpoolEngine {
    /// Runs one round of online compaction of the history log now: when
    /// ``SpoolEngineConfiguration/onlineCompaction`` says so (or `force`), writes a checkpoint and
    /// rewrites the sealed segments before it without the records no run in that checkpoint
    /// names — the records of runs dropped by their retention, as the offline
    /// ``compactHistory(directory:configuration:dryRun:progress:)`` drops them; or, when the dead
    /// records are in the active segment, asks the log to roll it so that the next round can.
    /// The background loop calls this every ``OnlineCompactionPolicy/checkInterval``.
    ///
    /// Transitions go on meanwhile. Crash safety: the checkpoint is durable before any segment is
    /// rewritten, and a reopen replays from a checkpoint at least as new (every later checkpoint
    /// names, among the records before this one's replay-from, only records this one names: runs
    /// only leave, and new records come after it), so after a crash at any step — before the
    /// swap's commit point the old segments stay, after it the next open finishes the swap —
    /// reopen restores the same runs, histories and pending tasks.
    ///
    /// Cost of a round that measures: one checkpoint (only when the log's bytes could make a
    /// compaction due) and one read of the history log; the rewrite reads the sealed segments
    /// at most ``OnlineCompactionPolicy/bytesPerSecond``.
    /// - Throws: ``SpoolError/Code/closed``; ``SpoolError/Code/io`` or ``SpoolError/Code/storage``
    ///   when the checkpoint cannot be written or the log read or swapped (a failure after the
    ///   swap's commit point fails the log: reopen the engine).
    @discardableResult
    public func compactHistoryOnline(force: Bool = false) async throws(SpoolError) -> OnlineCompactionOutcome {
        try await onlineRound(force ? .force : .policy)
    }

    /// Measures the history log as a round of ``compactHistoryOnline(force:)`` does (a checkpoint,
    /// then a read of the log) and rewrites nothing: `.notDue` with the log's segment bytes and its
    /// live bytes, or `.busy` while a round runs. (`spool bench compact --online` samples it.)
    /// - Throws: as ``compactHistoryOnline(force:)``.
    public func measureHistory() async throws(SpoolError) -> OnlineCompactionOutcome {
        try await onlineRound(.measure)
    }

    private func onlineRound(_ mode: OnlineCompactionRound) async throws(SpoolError) -> OnlineCompactionOutcome {
        try checkOpen()
        guard !configuration.isReadOnly else {
            throw SpoolError(.storage, "cannot compact a history log opened read-only",
                             underlying: LogError(.readOnly, "the log is open read-only", path: log.directory))
        }
        let policy = configuration.onlineCompaction
        let pacer = CompactionPacer(bytesPerSecond: policy.bytesPerSecond)
        let begun: Bool = onlineCompaction.state.withLock { state in
            if state.running { return false }
            state.running = true
            state.pacer = pacer
            return true
        }
        guard begun else { return .busy }
        defer { onlineCompaction.state.withLock { $0.running = false; $0.pacer = nil } }
        let started = monotonicNanoseconds()
        let outcome: OnlineCompactionOutcome
        do {
            let activeBase = log.segmentBaseOffsets.last
            var first = try await compactionRound(mode, policy: policy, pacer: pacer)
            // A round that asked for a roll waits a little for it (the next append rolls), then
            // checkpoints and judges again, so that the rolled segment is rewritten in the same round.
            if case .rolledActiveSegment = first, await log.waitForRoll(from: activeBase) {
                let second = try await compactionRound(.force == mode ? .force : .policy, policy: policy, pacer: pacer, afterRoll: true)
                if case .compacted = second {
                    first = second
                    onlineCompaction.state.withLock { $0.statistics.rollsRequested += 1 }
                }
            }
            outcome = first
        } catch {
            onlineCompaction.state.withLock { state in
                state.statistics.failures += 1
                state.lastMeasuredEnd = nil
            }
            throw error
        }
        let elapsed = monotonicNanoseconds() - started
        if mode != .measure { onlineCompaction.state.withLock { $0.statistics.record(outcome, nanoseconds: elapsed) } }
        return outcome
    }

    private func compactionRound(_ mode: OnlineCompactionRound, policy: OnlineCompactionPolicy, pacer: CompactionPacer,
                                 afterRoll: Bool = false) async throws(SpoolError) -> OnlineCompactionOutcome {
        let total = log.segmentBytes
        let force = mode == .force
        if mode == .policy && !afterRoll {
            // Not even a log of dead records would be due; or nothing was appended since a measure
            // that found nothing to do; or the bytes beyond the last measure's live bytes are not
            // enough (live bytes only shrink by retention, without an append, so every 6th round
            // of the first kind and every 30th of the last measures anyway): no checkpoint, no read.
            let end = log.endOffset
            let skip: Bool = onlineCompaction.state.withLock { state in
                let unchanged = state.lastMeasuredEnd == end && state.skippedSinceMeasure < 5
                let notYet = state.lastLiveBytes.map { !policy.isDue(totalBytes: total, liveBytes: $0) } ?? false
                guard unchanged || (notYet && state.skippedSinceMeasure < 29) else { return false }
                state.skippedSinceMeasure += 1
                return true
            }
            if skip || !policy.isDue(totalBytes: total, liveBytes: 0) { return .notDue(segmentBytes: total, liveBytes: nil) }
        }
        try await checkpoint()
        let store = checkpointStore
        let log = self.log
        let result: Result<(OnlineCompactionOutcome, measuredEnd: UInt64?), SpoolError> = await onOwnThread(named: "spool-compact") {
            do throws(SpoolError) {
                // The durable checkpoint (this round's, or a newer one): it decides what is live.
                guard let skim = try store.readCheckpointSkim() else {
                    throw SpoolError(.io, "the checkpoint just written cannot be read back")
                }
                let replayFrom = skim.replayFrom
                let start = log.startOffset
                guard replayFrom >= start, replayFrom <= log.endOffset else {
                    throw SpoolError(.corruptRecord, "the checkpoint's replay-from \(replayFrom) is outside the history log [\(start), \(log.endOffset))")
                }
                var live = LiveOffsets(start: start, end: replayFrom)
                for run in skim.runs { for offset in run.recordOffsets { live.insert(offset) } }
                // Bytes of the segments wholly before replay-from (the candidates), and their live records'.
                let layout = log.segmentLayout
                var candidateEnd = start
                var candidateBytes = 0
                for (i, segment) in layout.enumerated().dropLast() where layout[i + 1].baseOffset <= replayFrom {
                    candidateEnd = layout[i + 1].baseOffset
                    candidateBytes += segment.bytes
                }
                let total = layout.reduce(0) { $0 + $1.bytes }
                var liveCandidates = 0, liveRest = 0
                var reader = log.reader(from: start)
                do {
                    while let record = try reader.next() {
                        if record.offset >= replayFrom { liveRest += record.payload.count + 4 }
                        else if live.contains(record.offset) {
                            if record.offset < candidateEnd { liveCandidates += record.payload.count + 4 } else { liveRest += record.payload.count + 4 }
                        }
                    }
                } catch {
                    throw SpoolError(.storage, "cannot read the history log to measure it", underlying: error)
                }
                let liveBytes = liveCandidates + liveRest
                if mode != .measure && candidateBytes > 0 && (force || policy.isDue(totalBytes: candidateBytes, liveBytes: liveCandidates)) {
                    let summary: CompactionSummary
                    do {
                        summary = try log.compactByOffset(below: replayFrom, keeping: { live.contains($0) }, pacer: pacer)
                    } catch {
                        throw SpoolError(.storage, "the online compaction of the history log failed", underlying: error as? LogError)
                    }
                    return .success((.compacted(summary, liveBytes: liveBytes), nil))
                }
                let activeBytes = layout.last?.bytes ?? 0
                if mode != .measure && activeBytes > 0 && (force || policy.isDue(totalBytes: total, liveBytes: liveBytes)) {
                    log.requestRoll()
                    return .success((.rolledActiveSegment(segmentBytes: total, liveBytes: liveBytes), nil))
                }
                return .success((.notDue(segmentBytes: total, liveBytes: liveBytes), log.endOffset))
            } catch {
                return .failure(error)
            }
        }
        switch result {
        case .success(let (outcome, measuredEnd)):
            onlineCompaction.state.withLock { state in
                state.lastMeasuredEnd = measuredEnd
                state.skippedSinceMeasure = 0
                switch outcome {
                case .notDue(_, let live): state.lastLiveBytes = live ?? state.lastLiveBytes
                case .rolledActiveSegment(_, let live), .compacted(_, let live): state.lastLiveBytes = live
                case .busy: break
                }
            }
            return outcome
        case .failure(let error):
            throw error
        }
    }

    /// Counters of the history log's online compaction since open.
    public var onlineCompactionStatistics: OnlineCompactionStatistics {
        onlineCompaction.state.withLock { $0.statistics }
    }

    /// Bytes of the history log's segments now (what it takes on disk, less indexes and the
    /// active segment's zero-filled preallocation).
    public var historySegmentBytes: Int { log.segmentBytes }

    /// Starts the background loop of ``compactHistoryOnline(force:)`` when the policy enables it
    /// (wall-clock intervals: a test's manual clock does not drive it).
    func startOnlineCompaction() {
        let policy = configuration.onlineCompaction
        guard policy.isEnabled, !configuration.isReadOnly else { return }
        let logger = configuration.logger
        let task = Task { [weak self] in
            while !Task.isCancelled {
                do { try await Task.sleep(for: policy.checkInterval) } catch { return }
                guard let engine = self else { return }
                do {
                    _ = try await engine.compactHistoryOnline()
                } catch {
                    if (error as? SpoolError)?.code != .closed && !Task.isCancelled { logger.warning("online compaction of the history log failed", metadata: ["error": "\(error)"]) }
                }
            }
        }
        onlineCompaction.state.withLock { $0.task = task }
    }

    /// Stops the background loop; a round in progress stops at its next batch or finishes its swap.
    func stopOnlineCompaction() async {
        let (task, pacer) = onlineCompaction.state.withLock { state in
            defer { state.task = nil }
            return (state.task, state.pacer)
        }
        pacer?.cancel()
        task?.cancel()
        await task?.value
    }
}
