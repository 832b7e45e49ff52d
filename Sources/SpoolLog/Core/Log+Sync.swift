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
        pipelineLock.lock()
        while true {
            let firstWaitingWrittenAt = firstUnclaimedGroupWrittenAt
            let dirty = writtenSequence > claimedSequence
            var due = dirty && interval.map { monotonicNanoseconds() >= lastSyncNanoseconds + $0 } ?? false
            if let firstWaitingWrittenAt, !due {
                let gathering = (writerBusy || !intake.isEmpty) && !closing && failure == nil
                if gathering && monotonicNanoseconds() < firstWaitingWrittenAt + maxGather {
                    syncWakeup.wait(pipelineLock, untilMonotonicNanoseconds: firstWaitingWrittenAt + maxGather)
                    continue
                }
                // Stagger overlapping syncs: one started less than half a typical sync ago will
                // return soon after, so a new one now would mostly cover the same appends.
                let staggered = lastSyncNanoseconds + averageSyncNanoseconds / 2
                if syncsInFlight > 0 && !closing && failure == nil && monotonicNanoseconds() < staggered {
                    syncWakeup.wait(pipelineLock, untilMonotonicNanoseconds: staggered)
                    continue
                }
                due = true
            }
            if due {
                let target = writtenSequence
                claimedSequence = target
                firstUnclaimedGroupWrittenAt = nil
                let started = monotonicNanoseconds()
                syncClaims.append(SyncClaim(target: target, startedAt: started))
                lastSyncNanoseconds = started
                syncsInFlight += 1
                let segment = currentSegment
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
        if let last = done.last, last.endPosition > 0, !last.segment.firstBatchDurable.load(ordering: .relaxed) {
            recordFirstBatchIfNeeded(of: last.segment)
        }
        for group in done {
            for waiter in group.waiters { waiter.continuation.resume(returning: .success(waiter.value)) }
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
        intake.refusing.store(true, ordering: .sequentiallyConsistent)
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
        for waiter in waiting { waiter.continuation.resume(returning: .failure(failure)) }
    }
}
