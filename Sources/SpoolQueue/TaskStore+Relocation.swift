import SpoolLog
import SpoolMatching

extension TaskStore {
    /// Copies the live tasks that keep the oldest segment alive to the head of the log, when
    /// they are few and can all move: dead letters, retries waiting out a backoff, and tasks
    /// waiting on disk (a paused queue's, or a backlog past the memory budget). Each copy is a
    /// task record that *replaces* the old one (same attempt, backoff, reason, original id), so
    /// the next checkpoint can delete the segment. Returns how many tasks moved.
    ///
    /// Tasks in memory or in flight are not moved (they leave soon on their own); when one of
    /// them is in the oldest segment, nothing is done. Runs after each background checkpoint
    /// once the log has ``TaskStoreConfiguration/relocationSegmentThreshold`` segments.
    /// The moved tasks get new ids; ``DeliveredTask/originalID`` keeps the one `add` returned.
    @discardableResult
    func relocatePinnedTasks(maximum: Int = 8192) async throws(QueueError) -> Int {
        let bases = log.segmentBaseOffsets
        guard bases.count >= max(2, configuration.relocationSegmentThreshold) else { return 0 }
        let boundary = bases[1]
        guard ackLevel < boundary else { return 0 }

        // Take the movable tasks below the boundary out of reach of the other paths (refills,
        // due retries, purges of dead letters) until their copies are durable.
        typealias Taken = (dead: [(UInt64, DeadEntry)], delayed: [(UInt64, DelayedEntry)])
        let taken: Taken? = ledger.withLock { ledger in
            if ledger.hot.keys.contains(where: { $0 < boundary && !isExternal($0) })
                || ledger.inFlight.keys.contains(where: { $0 < boundary && !isExternal($0) }) {
                return nil
            }
            var taken: Taken = ([], [])
            for (id, entry) in ledger.dead where id < boundary && !isExternal(id) && taken.dead.count < maximum {
                taken.dead.append((id, entry))
            }
            for (id, entry) in ledger.delayed where id < boundary && !isExternal(id) && taken.dead.count + taken.delayed.count < maximum {
                taken.delayed.append((id, entry))
            }
            for (id, _) in taken.dead { ledger.dead[id] = nil }
            for (id, _) in taken.delayed { ledger.delayed[id] = nil }
            if !taken.delayed.isEmpty { ledger.delayedOrder.removeAll { ledger.delayed[$0.id] == nil } }
            return taken
        }
        guard let taken else { return 0 }
        var cold: [(queue: QueueState, generation: UInt32, ids: [(priority: Int, id: UInt64)])] = []
        var budget = maximum - taken.dead.count - taken.delayed.count
        for queue in registry.withLock({ Array($0.values) }) where budget > 0 {
            let found: (UInt32, [(Int, UInt64)])? = queue.state.withLock { state in
                guard let lanes = state.cold?.lanes, !state.refilling else { return nil }
                var ids: [(Int, UInt64)] = []
                for p in 1...5 { for id in lanes[p - 1] where id < boundary && ids.count < budget { ids.append((p, id)) } }
                if ids.isEmpty { return nil }
                state.refilling = true  // no refill moves them while they are being copied
                return (state.generation, ids)
            }
            if let (generation, ids) = found {
                cold.append((queue, generation, ids))
                budget -= ids.count
            }
        }

        // Copy them. On failure, put everything back as it was (the copies, if any reached the
        // log, are orphans that replace live records: the store is failed anyway and a reopen
        // restores the copies instead of the originals).
        let oldIDs = taken.dead.map(\.0) + taken.delayed.map(\.0) + cold.flatMap { $0.ids.map(\.id) }
        var newIDs: [UInt64: UInt64] = [:]
        do {
            if !oldIDs.isEmpty {
                let records = try readTaskRecords(oldIDs)  // throws unless it found every one
                let copies: [(UInt64, [UInt8])] = oldIDs.compactMap { id in
                    guard var copy = records[id] else { return nil }
                    copy.replaces = id
                    copy.originalID = copy.originalID ?? id
                    return (id, copy.encoded())
                }
                newIDs = try await appendRetained(batch: copies)
            }
        } catch {
            restoreTaken(taken, cold: cold)
            throw error
        }

        // `appendRetained(batch:)` maps every id it was given, so the `newIDs[id]!` below hold.
        ledger.withLock { ledger in
            for (id, entry) in taken.dead {
                ledger.dead[newIDs[id]!] = entry
                ledger.release(id)
            }
            for (id, entry) in taken.delayed {
                ledger.insertDelayed(newIDs[id]!, entry)
                ledger.release(id)
            }
            nextDue.store(ledger.nextDue, ordering: .relaxed)
        }
        for (queue, generation, ids) in cold {
            let purged: Bool = queue.state.withLock { state in
                state.refilling = false
                guard state.generation == generation else { return true }
                for (p, id) in ids {
                    if let index = state.cold?.lanes[p - 1].firstIndex(of: id) { state.cold!.lanes[p - 1][index] = newIDs[id]! }
                }
                return false
            }
            ledger.withLock { ledger in
                for (_, id) in ids {
                    ledger.release(id)
                    if purged {
                        // Purged while being copied: the copy is dropped too.
                        ledger.release(newIDs[id]!)
                        ledger.pendingAcks.append(newIDs[id]!)
                    }
                }
            }
            if purged { startAckWriterIfNeeded() }
            refill(queue)
        }
        return oldIDs.count
    }

    private func restoreTaken(_ taken: (dead: [(UInt64, DeadEntry)], delayed: [(UInt64, DelayedEntry)]),
                              cold: [(queue: QueueState, generation: UInt32, ids: [(priority: Int, id: UInt64)])]) {
        ledger.withLock { ledger in
            for (id, entry) in taken.dead { ledger.dead[id] = entry }
            for (id, entry) in taken.delayed { ledger.insertDelayed(id, entry) }
            nextDue.store(ledger.nextDue, ordering: .relaxed)
        }
        for (queue, _, _) in cold { queue.state.withLock { $0.refilling = false } }
    }

    /// Appends records in as few log appends as fit a batch; returns old id → new offset.
    /// Retained like ``appendRetained(_:what:)``.
    func appendRetained(batch: [(UInt64, [UInt8])]) async throws(QueueError) -> [UInt64: UInt64] {
        var result: [UInt64: UInt64] = [:]
        var start = 0
        let limit = min(configuration.log.maxBatchBytes, configuration.log.segmentBytes / 2)
        while start < batch.count {
            var end = start
            var bytes = 0
            while end < batch.count && (end == start || bytes + batch[end].1.count + 64 <= limit) {
                bytes += batch[end].1.count + 64
                end += 1
            }
            let chunk = batch[start..<end]
            let floor = ledger.withLock { ledger -> UInt64 in
                let floor = log.endOffset
                ledger.retain(floor)
                return floor
            }
            do {
                let range = try await log.append(contentsOf: chunk.map(\.1))
                ledger.withLock { ledger in
                    for offset in range { ledger.retain(offset) }
                    ledger.release(floor)
                }
                for (offset, (old, _)) in zip(range, chunk) { result[old] = offset }
            } catch {
                ledger.withLock { $0.release(floor) }
                let failure = QueueError.log(error, "cannot copy pinned tasks forward")
                recordFailure(failure)
                throw failure
            }
            start = end
        }
        return result
    }

    /// Starts the ack writer if it is not running.
    func startAckWriterIfNeeded() {
        let start: Bool = ledger.withLock { ledger in
            if ledger.ackWriterRunning || ledger.pendingAcks.isEmpty { return false }
            ledger.ackWriterRunning = true
            return true
        }
        if start { Task { await self.runAckWriter() } }
    }
}
