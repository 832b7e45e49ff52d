import SpoolLog
import SpoolMatching

extension TaskStore {
    /// Acks records carry at most this many ids each.
    static let maxAcksPerRecord = 65_536

    /// Writes the completions gathered so far, one record per append, until none are left.
    /// One writer runs at a time; completions that arrive during an append go into the next
    /// record, so under load each record carries every completion of one group commit.
    func runAckWriter() async {
        while true {
            let ids: [UInt64]? = ledger.withLock { ledger in
                if ledger.pendingAcks.isEmpty {
                    ledger.ackWriterRunning = false
                    return nil
                }
                ledger.ackBatchesIssued += 1
                if ledger.pendingAcks.count <= Self.maxAcksPerRecord {
                    defer { ledger.pendingAcks = [] }
                    return ledger.pendingAcks
                }
                let head = Array(ledger.pendingAcks.prefix(Self.maxAcksPerRecord))
                ledger.pendingAcks.removeFirst(Self.maxAcksPerRecord)
                return head
            }
            guard let ids else { return }
            do {
                _ = try await log.append(AcksRecord.encode(ids))
            } catch {
                recordFailure(.log(error, "cannot append completions"))
            }
            let ready: [CheckedContinuation<Void, Never>] = ledger.withLock { ledger in
                ledger.ackBatchesDone += 1
                let done = ledger.ackBatchesDone
                let ready = ledger.flushWaiters.filter { $0.target <= done }.map(\.continuation)
                ledger.flushWaiters.removeAll { $0.target <= done }
                return ready
            }
            for continuation in ready { continuation.resume() }
        }
    }

    /// Returns once every completion recorded before the call has been appended by the ack writer.
    func waitForAckWriter() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waiting: Bool = ledger.withLock { ledger in
                let target = ledger.ackBatchesIssued + (ledger.pendingAcks.isEmpty ? 0 : 1)
                if ledger.ackBatchesDone >= target { return false }
                ledger.flushWaiters.append((target, continuation))
                return true
            }
            if !waiting { continuation.resume() }
        }
    }

    /// Returns once every completion (and every add) acknowledged before the call is on stable
    /// storage, whatever the durability mode (one `fdatasync`).
    /// - Throws: ``QueueError/Code/log`` when the log failed; ``QueueError/Code/closed``.
    public func flush() async throws(QueueError) {
        try checkUsable()
        await waitForAckWriter()
        try checkUsable()
        do { try await log.flush() } catch { throw .log(error, "cannot flush the queue log") }
    }

    /// Writes the ack level and the queues' control state to the `checkpoint` file (temporary
    /// file, fsync, rename, directory fsync), then deletes the log segments entirely below the
    /// ack level. Runs by itself every ``TaskStoreConfiguration/checkpointInterval``; returns
    /// the ack level.
    ///
    /// Completions whose acks record is not yet written are made durable by the checkpoint if
    /// the ack level passes them.
    /// - Throws: ``QueueError/Code/log`` when the file cannot be written or a segment deleted;
    ///   ``QueueError/Code/closed``.
    @discardableResult
    public func checkpoint() throws(QueueError) -> UInt64 {
        try checkUsable()
        return try writeCheckpoint()
    }

    func writeCheckpoint() throws(QueueError) -> UInt64 {
        let busy = lifecycle.withLock { state -> Bool in
            if state.checkpointing { return true }
            state.checkpointing = true
            return false
        }
        if busy { return lifecycle.withLock { $0.lastCheckpoint?.ackLevel ?? 0 } }
        defer { lifecycle.withLock { $0.checkpointing = false } }
        // The ack level first, then the control state: a control record below the ack level
        // was applied in memory before its append's retain was released (see `setControl`).
        let level = ledger.withLock { $0.ackLevel(endOffset: log.endOffset) }
        let checkpoint = StoreCheckpoint(ackLevel: level, controls: controls.withLock { $0 })
        if checkpoint != lifecycle.withLock({ $0.lastCheckpoint }) {
            do {
                try checkpoint.write(directory: directory, syscalls: configuration.log.syscalls)
            } catch {
                recordFailure(error)
                throw error
            }
            lifecycle.withLock { $0.lastCheckpoint = checkpoint }
        }
        // Not while an online compaction holds the log's maintenance lock: the next checkpoint deletes them.
        let mayDelete: Bool = lifecycle.withLock { state in
            if state.compacting { return false }
            state.deletingSegments = true
            return true
        }
        guard mayDelete else { return level }
        defer { lifecycle.withLock { $0.deletingSegments = false } }
        do {
            try log.deleteSegments(below: level)
        } catch {
            let failure = QueueError.log(error, "cannot delete acknowledged segments")
            recordFailure(failure)
            throw failure
        }
        return level
    }

    /// Starts the background task that handles visibility timeouts and retries that fall due
    /// while nobody polls, and checkpoints every ``TaskStoreConfiguration/checkpointInterval``.
    func startMaintenance() {
        let interval = UInt64(configuration.checkpointInterval.nanoseconds)
        let clock = self.clock
        let task = Task { [weak self] in
            var nextCheckpoint = clock.now().nanoseconds &+ interval
            while !Task.isCancelled {
                // The store is held only for one round, never across the sleep, so that a
                // store dropped without `close()` is freed.
                guard let wake = await TaskStore.maintain(self, nextCheckpoint: &nextCheckpoint, interval: interval) else { return }
                do { try await clock.sleep(until: MatchingInstant(nanoseconds: wake)) } catch { return }
            }
        }
        lifecycle.withLock { $0.maintenance = task }
    }

    /// One round of maintenance; returns when to wake next, or nil when the store is gone.
    static func maintain(_ store: TaskStore?, nextCheckpoint: inout UInt64, interval: UInt64) async -> UInt64? {
        guard let store else { return nil }
        let now = store.clock.now().nanoseconds
        if now >= store.nextDue.load(ordering: .relaxed) { await store.runDueWork() }
        if now >= nextCheckpoint {
            _ = try? store.checkpoint()
            // Moving pinning tasks forward lets the next checkpoint delete their segment.
            _ = try? await store.relocatePinnedTasks()
            nextCheckpoint = now &+ interval
        }
        return min(nextCheckpoint, store.nextDue.load(ordering: .relaxed))
    }
}
