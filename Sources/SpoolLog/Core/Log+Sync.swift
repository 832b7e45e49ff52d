#if canImport(Glibc)
import Glibc
#endif
import DequeModule
import Synchronization
import SpoolPrimitives

// The syncer threads of the append pipeline (see `Log+Append.swift` for the writer): they
// issue the fdatasyncs that acknowledge appends, and poison the log when one fails.

/// An fdatasync in flight, covering every write up to number `target`.
struct SyncClaim {
    let target: UInt64
    /// When its fdatasync started (monotonic nanoseconds).
    let startedAt: UInt64
    /// The active segment when it was claimed (the one it syncs), where that segment's published
    /// writes had taken its data and its file (zero fill included): once the sync completes, both
    /// are on stable storage. Older segments' writes were synced by the roll that sealed them.
    let segment: Segment
    let dataEnd: Int
    let extent: Int
    var finished = false
}

/// Waiters acknowledged by the first fdatasync that starts after write number `sequence`.
struct SyncGroup {
    let sequence: UInt64
    let segment: Segment
    let endPosition: Int
    let endOffset: UInt64
    var waiters: [AppendWaiter]
    /// When the write finished (monotonic nanoseconds); bounds how long a sync may wait to gather more.
    let writtenAt: UInt64
}

extension Log {
    /// Issues `fdatasync`s: for written appends waiting in `sync` mode and for flushes, and every
    /// interval in `interval` mode. Several syncers may have syncs in flight at once.
    ///
    /// Group commit: a sync starts once the writer has written everything that arrived (so one
    /// sync covers every appender that is ready), or when the oldest unsynced write has waited
    /// ``LogConfiguration/maxGroupCommitDelayMicroseconds`` — whichever comes first.
    func runSyncer(number: Int) {
        let interval: UInt64? = if case .interval(let ms) = configuration.durability { UInt64(ms) * 1_000_000 } else { nil }
        let maxGather = UInt64(configuration.maxGroupCommitDelayMicroseconds) * 1000
        let syncersWrite = self.syncersWrite
        pipelineLock.lock()
        while true {
            let firstWaitingWrittenAt = firstUnclaimedGroupWrittenAt
            let dirty = writtenSequence > claimedSequence
            var due = dirty && interval.map { monotonicNanoseconds() >= lastSyncNanoseconds + $0 } ?? false
            // In `sync` mode the requests in the intake are the syncers' to write, just before a
            // claim (no push wakes the writer thread).
            let pending = syncersWrite && !intake.isEmpty && !closing && failure == nil
            if firstWaitingWrittenAt != nil || pending, !due {
                // Stagger overlapping syncs: one started less than half a typical sync ago will
                // return soon after, so a new one now would mostly cover the same appends.
                let staggered = lastSyncNanoseconds + averageSyncNanoseconds / 2
                if syncsInFlight > 0 && !closing && failure == nil && monotonicNanoseconds() < staggered {
                    syncWakeup.wait(pipelineLock, untilMonotonicNanoseconds: staggered)
                    continue
                }
                if pending {
                    // Take and write everything waiting, then claim it: one write per sync, by
                    // the thread that syncs it, with no hand-off to the writer and back.
                    pipelineLock.unlock()
                    writeLock.lock()
                    let requests = intake.takeAll()
                    if !requests.isEmpty { writeTaken(requests, claimingNext: true) }
                    writeLock.unlock()
                    pipelineLock.lock()
                } else if let firstWaitingWrittenAt {
                    // Group commit: while the writer thread is still writing requests it has in
                    // hand (or, when it writes them all, requests wait in the intake), hold the
                    // sync back until it is done or the oldest unsynced write has waited long enough.
                    let gathering = (writerBusy || (!syncersWrite && !intake.isEmpty)) && !closing && failure == nil
                    if gathering && monotonicNanoseconds() < firstWaitingWrittenAt + maxGather {
                        syncWakeup.wait(pipelineLock, untilMonotonicNanoseconds: firstWaitingWrittenAt + maxGather)
                        continue
                    }
                }
                due = firstUnclaimedGroupWrittenAt != nil
            }
            if due {
                let target = writtenSequence
                claimedSequence = target
                firstUnclaimedGroupWrittenAt = nil
                let started = monotonicNanoseconds()
                let segment = currentSegment
                syncClaims.append(SyncClaim(target: target, startedAt: started, segment: segment,
                                            dataEnd: segment.publishedDataEnd, extent: segment.publishedExtent))
                lastSyncNanoseconds = started
                syncsInFlight += 1
                pipelineLock.unlock()
                var syncError: SystemError?
                do { try syscalls.fdatasync(segment.syncDescriptor(number)) } catch { syncError = error }
                let duration = monotonicNanoseconds() - started
                counters.fdatasyncs.add(1, ordering: .relaxed)
                counters.fdatasyncNanoseconds.add(Int(duration), ordering: .relaxed)
                pipelineLock.withLock {
                    syncsInFlight -= 1
                    averageSyncNanoseconds = averageSyncNanoseconds - averageSyncNanoseconds / 8 + duration / 8
                }
                if let syncError {
                    poison(.io(syncError, "fdatasync failed; the log is poisoned (no retry: the kernel may have dropped the pages)",
                               path: segment.logPath))
                    pipelineLock.lock()
                    continue
                }
                // Acknowledge in claim order. A later sync that succeeds says nothing about pages
                // whose write-back failed under an earlier, overlapping one: Linux reports a
                // write-back error to one fsync only. So a sync's groups wait for every earlier claim.
                pipelineLock.lock()
                if let i = syncClaims.firstIndex(where: { $0.target == target }) { syncClaims[i].finished = true }
                var finished: [SyncClaim] = []
                while let first = syncClaims.first, first.finished { finished.append(syncClaims.removeFirst()) }
                pipelineLock.unlock()
                if !finished.isEmpty { acknowledge(finished) }
                pipelineLock.lock()
                continue
            }
            // Whatever is written but unsynced at close is synced by `close()` itself.
            if closing && writerDone && syncGroups.isEmpty {
                // Wake the other syncers: one may have gone back to waiting while this one's sync
                // was still in flight, and nothing else would wake it to see that it can stop.
                syncWakeup.broadcast()
                break
            }
            if let interval, dirty {
                syncWakeup.wait(pipelineLock, untilMonotonicNanoseconds: lastSyncNanoseconds + interval)
            } else if syncersWrite {
                // Idle: counted first, then a last look at the intake (see `AppendIntake.idleSyncers`).
                intake.idleSyncers.add(1, ordering: .sequentiallyConsistent)
                if intake.isEmpty || closing || failure != nil { syncWakeup.wait(pipelineLock) }
                intake.idleSyncers.subtract(1, ordering: .sequentiallyConsistent)
            } else {
                syncWakeup.wait(pipelineLock)
            }
        }
        pipelineLock.unlock()
    }

    /// Acknowledges every group written at or before the last of `claims` (finished syncs, in
    /// claim order), and adds each waiter's two stages to the counters: from its write to the
    /// start of the sync that covered it, and from that start to now.
    private func acknowledge(_ claims: [SyncClaim]) {
        // Never acknowledge beyond the recorded extent: the groups below are at most the last claim's
        // data end, on its segment (older segments' groups lie within their sealed length, or within
        // the extent a roll set when it froze them). Every syncer checks this before it takes groups
        // off `syncGroups`, so whichever syncer resumes a waiter (with concurrent syncers another's
        // may), the extent covering it was recorded first; and readers see those records only after.
        // Usually the extent is ahead (the zero fill) and this is one relaxed load and compare.
        let last = claims[claims.count - 1]
        if last.dataEnd > last.segment.recordedExtent.load(ordering: .relaxed) {
            do {
                try recordExtent(of: last.segment, covering: last.dataEnd, extent: last.extent)
            } catch {
                poison(error)
                return
            }
        }
        var done: [SyncGroup] = []
        pipelineLock.lock()
        while let first = syncGroups.first, first.sequence <= claims[claims.count - 1].target {
            let group = syncGroups.removeFirst()
            if configuration.durability == .sync {
                group.segment.readableSize.store(group.endPosition, ordering: .releasing)
                acknowledgedEnd.store(group.endOffset, ordering: .releasing)
            }
            done.append(group)
        }
        pipelineLock.unlock()
        let now = monotonicNanoseconds()
        var claim = 0
        var waiters = 0
        var writtenToSyncStart: UInt64 = 0
        var syncStartToAcknowledged: UInt64 = 0
        for group in done {
            while claims[claim].target < group.sequence { claim += 1 }
            let count = UInt64(group.waiters.count)
            waiters += group.waiters.count
            writtenToSyncStart &+= count &* (claims[claim].startedAt &- min(group.writtenAt, claims[claim].startedAt))
            syncStartToAcknowledged &+= count &* (now &- claims[claim].startedAt)
        }
        counters.syncAcknowledged.add(waiters, ordering: .relaxed)
        counters.writtenToSyncStartNanoseconds.add(Int(truncatingIfNeeded: writtenToSyncStart), ordering: .relaxed)
        counters.syncStartToAcknowledgedNanoseconds.add(Int(truncatingIfNeeded: syncStartToAcknowledged), ordering: .relaxed)
        // Before these waiters hear of it (with concurrent syncers, another syncer's waiters may
        // be told first; a crash then leaves the manifest without the checksum, as before it was
        // recorded): once per segment, a manifest rewrite (an atomic file replace) delays them.
        // Usually the extent's first rewrite in the segment (above) has recorded it already; this
        // is for a segment whose recorded extent already covered its first batch (carried over
        // from the manifest at open, without a checksum).
        if let last = done.last, last.endPosition > 0, !last.segment.firstBatchDurable.load(ordering: .relaxed) {
            recordFirstBatchIfNeeded(of: last.segment)
        }
        if resumesFromPool(waiters) {
            Self.resumeFromPool(done.map(\.waiters))
        } else {
            for group in done { Self.resume(group.waiters) }
        }
        // Ahead of need, after the waiters were told: a sync that covered a new zero-fill step
        // records it as the durable extent now, so that the data's crossing of the old extent
        // (half a step later, see `preallocate`) finds it raised and the check above waits on no
        // rewrite. If this rewrite is late, that check still rewrites before anything beyond the
        // recorded extent is acknowledged. A failed one poisons the log, as any failed write does.
        // In `sync` mode the writer thread does this beside the syncers (`keepExtentAhead`).
        if !keepsExtentAhead && last.extent > last.segment.recordedExtent.load(ordering: .relaxed) {
            do { try raiseExtentAhead(of: last.segment, to: last.extent) } catch { poison(error) }
        }
    }

    /// Records `extent` (covered by a completed `fdatasync`) as `segment`'s durable extent if it is
    /// beyond the recorded one and the segment still takes appends (a roll has not frozen it).
    func raiseExtentAhead(of segment: Segment, to extent: Int) throws(LogError) {
        try manifestLock.withLock { () throws(LogError) in
            guard !segment.extentFrozen, extent > segment.recordedExtent.load(ordering: .relaxed) else { return }
            try writeExtentLocked(extent, of: segment)
        }
    }

    /// Raises the durable extent `log-manifest` records for `segment` (the active one) to `extent`,
    /// so that it covers `dataEnd`, before anything up to `dataEnd` is acknowledged. `extent` is what a
    /// completed `fdatasync` covered (the file's length at the sync's claim, zero fill included: about
    /// ``LogConfiguration/preallocationBytes`` beyond the data), so a crash cannot leave the file
    /// shorter, and the next rewrite is due only once the data passes it. Monotonic, under
    /// `manifestLock`: of concurrent syncers the first rewrites, the others find it done. The rewrite
    /// also records the segment's first-batch checksum (the sync covered that batch).
    /// - Throws: the manifest write's error (the caller poisons the log: its waiters are not told);
    ///   ``LogError/Code/io`` when the segment is being sealed by a roll that failed after freezing it.
    func recordExtent(of segment: Segment, covering dataEnd: Int, extent: Int) throws(LogError) {
        try manifestLock.withLock { () throws(LogError) in
            let recorded = segment.recordedExtent.load(ordering: .relaxed)
            if recorded >= dataEnd { return }  // another syncer raised it, or a roll set it when sealing
            guard !segment.extentFrozen else {
                // A roll froze it and sets it to the data's end once the cut is durable; it failed before.
                throw LogError(.io, "the segment was being sealed when its sync completed, and its durable extent could not "
                               + "be recorded; reopen the log to recover", path: segment.logPath)
            }
            segment.firstBatchDurable.store(true, ordering: .relaxed)
            let raised = max(recorded, extent, dataEnd)
            try writeExtentLocked(raised, of: segment)
        }
    }

    /// Records the active segment's first-batch checksum in `log-manifest`, once a sync that
    /// covered that batch was acknowledged. Until then an unclean open can't tell the segment cut
    /// to nothing, or replaced by another store's, from a tail a crash tore; after it, open refuses
    /// both (``LogError/Code/segmentReplaced``) instead of losing or adopting records silently.
    /// A failed rewrite is not retried: the manifest then lacks the checksum, as before.
    func recordFirstBatchIfNeeded(of segment: Segment) {
        guard !segment.firstBatchDurable.exchange(true, ordering: .relaxed) else { return }
        let isActive = pipelineLock.withLock { currentSegment === segment }
        guard isActive else { return }
        try? writeManifest()
    }

    /// Records the first failure, fails everything waiting, and refuses every later call.
    func poison(_ error: LogError) {
        var waiting: [AppendWaiter] = []
        let failure: LogError
        pipelineLock.lock()
        intake.refuse()
        if self.failure == nil {
            self.failure = LogError(.poisoned, error.message + "; the log accepts no more writes, reopen it to recover",
                                    path: error.path, offset: error.offset, underlying: error.underlying ?? error)
        }
        failure = self.failure!
        while let group = syncGroups.popFirst() { waiting += group.waiters }
        firstUnclaimedGroupWrittenAt = nil
        syncClaims.removeAll()
        syncWakeup.broadcast()
        pipelineLock.unlock()
        // With syncers that write, no push woke the writer, and no syncer writes now: the writer
        // takes what is still in the intake and fails it.
        intake.wake()
        for waiter in waiting { waiter.continuation.resume(returning: .failure(failure)) }
    }
}
