import SpoolLog
import SpoolMatching

extension TaskStore {
    /// Waits up to `timeout` (forever when nil) for a task of the queue of `kind` named `queue`
    /// and returns it, highest priority first, first in first out within a priority; nil when
    /// the time is up or the calling task is cancelled.
    ///
    /// The task is then in flight: finish it with ``complete(_:)`` or ``fail(_:reason:)``
    /// within ``TaskStoreConfiguration/visibilityTimeout``, or it is delivered again. Delivery
    /// writes nothing. Through `poller` (from ``DurableTaskQueue/poller(identity:maxTasksPerSecond:)``)
    /// the worker is listed by ``describe(_:kind:)`` and its own rate limit is applied.
    /// - Throws: ``QueueError/Code/invalidQueueName``; ``QueueError/Code/invalidArgument`` for a
    ///   negative timeout; ``QueueError/Code/closed``.
    public func poll(_ queue: String, kind: TaskQueueKind, timeout: Duration? = nil, poller: TaskPoller? = nil) async throws(QueueError) -> DeliveredTask? {
        try checkUsable()
        return try await poll(queueState(queue, kind: kind), timeout: timeout, poller: poller)
    }

    func poll(_ queue: QueueState, timeout: Duration?, poller: TaskPoller?) async throws(QueueError) -> DeliveredTask? {
        try checkUsable()
        if let timeout, timeout < .zero {
            throw QueueError(.invalidArgument, "a poll timeout must not be negative (got \(timeout))", queue: queue.name)
        }
        if clock.now().nanoseconds >= nextDue.load(ordering: .relaxed) { await runDueWork() }
        if queue.state.withLock({ $0.needsRefill(lowWater: configuration.refillBatchSize) }) { refill(queue) }
        let deadline = timeout.map { clock.now().advanced(by: $0) }
        while true {
            guard let task = await queue.matching.poll(until: deadline, poller: poller) else { return nil }
            if let delivered = takeDelivered(task, from: queue) { return delivered }
        }
    }

    /// Moves a task the matching core handed over from the window to in flight.
    func takeDelivered(_ task: MatchedTask, from queue: QueueState) -> DeliveredTask? {
        let bytes = task.payload.payload.count
        windowBytes.subtract(bytes, ordering: .relaxed)
        let now = clock.now().nanoseconds
        let deadline = now &+ UInt64(configuration.visibilityTimeout.nanoseconds)
        let known: Bool = ledger.withLock { ledger in
            guard let entry = ledger.hot.removeValue(forKey: task.id) else { return false }
            ledger.inFlight[task.id] = InFlightEntry(queue: queue, priority: entry.priority, attempt: task.payload.attempt, deadline: deadline,
                                                     retained: isExternal(task.id) ? task : nil)
            if deadline < ledger.nextVisibilityDeadline {
                ledger.nextVisibilityDeadline = deadline
                nextDue.store(ledger.nextDue, ordering: .relaxed)
            }
            return true
        }
        let refill: Bool = queue.state.withLock { state in
            state.hot[task.priority] -= 1
            state.hotTotal -= 1
            if known {
                state.dispatched += 1
                state.inFlight += 1
            }
            return state.needsRefill(lowWater: configuration.refillBatchSize)
        }
        if refill { self.refill(queue) }
        guard known else { return nil }
        return DeliveredTask(id: task.id, originalID: task.payload.originalID, queue: queue.name, kind: queue.kind, priority: task.priority,
                             attempt: Int(task.payload.attempt), payload: task.payload.payload, fairnessKey: task.fairness?.key,
                             addedAt: MatchingInstant(nanoseconds: task.payload.addedAt), isRecordedElsewhere: isExternal(task.id))
    }

    /// Acknowledges a delivered task: it will not be delivered again.
    ///
    /// Durability: recorded in memory at once (a later `complete` or `fail` of the id throws);
    /// written to the log by the background ack writer, which puts every completion gathered
    /// during one append into one record — group commit, without making each caller wait for
    /// an `fdatasync`. A crash before that record is durable (under `.sync`, within about one
    /// `fdatasync` after this call) delivers the task again: delivery is at least once. Call
    /// ``flush()`` to wait until every completion so far is on stable storage. A task added
    /// with ``addRecordedElsewhere(_:to:kind:reference:options:)`` writes nothing.
    /// - Throws: ``QueueError/Code/unknownTask`` when `id` is not in flight (never delivered,
    ///   already completed or failed, redelivered after its visibility timeout, or purged) —
    ///   nothing is written then; ``QueueError/Code/closed``.
    public func complete(_ id: UInt64) throws(QueueError) {
        try checkUsable()
        let (entry, startWriter): (InFlightEntry, Bool) = try ledger.withLock { (ledger) throws(QueueError) in
            guard let entry = ledger.inFlight[id], !entry.retrying else {
                throw notInFlight(id, ledger: ledger)
            }
            ledger.inFlight[id] = nil
            if isExternal(id) { return (entry, false) }
            ledger.release(id)
            ledger.pendingAcks.append(id)
            if ledger.ackWriterRunning { return (entry, false) }
            ledger.ackWriterRunning = true
            return (entry, true)
        }
        entry.queue.state.withLock { $0.inFlight -= 1 }
        if startWriter { Task { await self.runAckWriter() } }
    }

    func notInFlight(_ id: UInt64, ledger: Ledger) -> QueueError {
        let why: String
        if let entry = ledger.inFlight[id], entry.retrying {
            why = "it is being retried (a fail or its visibility timeout came first)"
        } else if ledger.hot[id] != nil || ledger.delayed[id] != nil {
            why = "it is queued, not delivered (it may have been redelivered after its visibility timeout)"
        } else if ledger.dead[id] != nil {
            why = "it is in the dead-letter queue"
        } else {
            why = "no task with this id is in flight (never delivered, already completed or failed, or purged)"
        }
        return QueueError(.unknownTask, "cannot complete or fail task \(id): \(why)", taskID: id)
    }

    /// Reports that a delivered task failed. It is delivered again after a backoff
    /// (``TaskStoreConfiguration/retryInitialInterval`` × coefficient^(attempt − 1), capped at
    /// ``TaskStoreConfiguration/retryMaximumInterval``) as attempt + 1, or, when this was
    /// attempt ``TaskStoreConfiguration/maxAttempts``, moved to the queue's dead-letter queue.
    ///
    /// Durability: returns once the retry (or dead letter) is a new record of the log,
    /// acknowledged under the log's durability; that record supersedes the old one, so a
    /// retried task never pins an old segment. The new id is in the outcome.
    /// - Throws: ``QueueError/Code/unknownTask`` when `id` is not in flight (nothing written);
    ///   ``QueueError/Code/invalidArgument`` for a reason over 4096 UTF-8 bytes;
    ///   ``QueueError/Code/log`` when the append fails.
    @discardableResult
    public func fail(_ id: UInt64, reason: String) async throws(QueueError) -> FailureOutcome {
        try checkUsable()
        guard reason.utf8.count <= 4096 else {
            throw QueueError(.invalidArgument, "a failure reason is at most 4096 UTF-8 bytes (got \(reason.utf8.count))", taskID: id)
        }
        let entry: InFlightEntry = try ledger.withLock { (ledger) throws(QueueError) in
            guard var entry = ledger.inFlight[id], !entry.retrying else { throw notInFlight(id, ledger: ledger) }
            entry.retrying = true
            ledger.inFlight[id] = entry
            return entry
        }
        return try await retry(id, entry, reason: reason, backoff: true)
    }

    /// Re-queues (after a backoff, or at once) or dead-letters a task taken out of flight.
    func retry(_ id: UInt64, _ entry: InFlightEntry, reason: String, backoff: Bool) async throws(QueueError) -> FailureOutcome {
        let queue = entry.queue
        let attempt = Int(entry.attempt)
        let now = clock.now().nanoseconds
        let dead = attempt >= configuration.maxAttempts
        let due = backoff ? now &+ UInt64(configuration.retryDelay(afterAttempt: attempt).nanoseconds) : now
        if var task = entry.retained {
            // Recorded elsewhere: the retry lives in memory only.
            task.payload.attempt = entry.attempt + 1
            ledger.withLock { ledger in
                ledger.inFlight[id] = nil
                if dead {
                    ledger.dead[id] = DeadEntry(queue: queue, priority: entry.priority, retained: task, reason: reason)
                } else if due > now {
                    ledger.insertDelayed(id, DelayedEntry(queue: queue, priority: entry.priority, due: due, retained: task))
                    nextDue.store(ledger.nextDue, ordering: .relaxed)
                }
            }
            queue.state.withLock { state in
                state.inFlight -= 1
                if dead { state.deadLetters += 1 } else if due > now { state.delayed += 1 }
            }
            if dead { return .deadLettered(newID: id) }
            if due <= now { place(task, in: queue, isNew: false, forceInMemory: true) }
            return .retrying(newID: id, attempt: attempt + 1, notBefore: MatchingInstant(nanoseconds: due))
        }
        let record: TaskRecord
        do {
            record = try readTaskRecord(id)
        } catch {
            ledger.withLock { $0.inFlight[id]?.retrying = false }
            throw error
        }
        var next = record
        next.replaces = id
        next.originalID = record.originalID ?? id
        next.notBefore = nil
        if dead {
            next.deadLetterReason = String(decoding: Array(reason.utf8.prefix(4096)), as: UTF8.self)
            next.attempt = attempt
        } else {
            next.attempt = attempt + 1
            if due > now { next.notBefore = due }
        }
        let newID: UInt64
        do {
            newID = try await appendRetained(next.encoded(), what: "cannot append the retry")
        } catch {
            ledger.withLock { $0.inFlight[id]?.retrying = false }
            throw error
        }
        ledger.withLock { ledger in
            ledger.inFlight[id] = nil
            ledger.release(id)
            if dead {
                ledger.dead[newID] = DeadEntry(queue: queue, priority: entry.priority)
            } else if due > now {
                ledger.insertDelayed(newID, DelayedEntry(queue: queue, priority: entry.priority, due: due))
                nextDue.store(ledger.nextDue, ordering: .relaxed)
            }
        }
        queue.state.withLock { state in
            state.inFlight -= 1
            if dead { state.deadLetters += 1 } else if due > now { state.delayed += 1 }
        }
        if dead { return .deadLettered(newID: newID) }
        if due <= now { place(matchedTask(next, id: newID), in: queue, isNew: false) }
        return .retrying(newID: newID, attempt: next.attempt, notBefore: MatchingInstant(nanoseconds: due))
    }

    func matchedTask(_ record: TaskRecord, id: UInt64) -> MatchedTask {
        var task = MatchedTask(id: id, priority: record.priority, fairness: record.fairness,
                               scheduleToStartDeadline: record.scheduleToStartDeadline.map { MatchingInstant(nanoseconds: $0) },
                               payload: TaskEnvelope(payload: record.payload, attempt: UInt32(clamping: record.attempt),
                                                     addedAt: record.addedAt, originalID: record.originalID ?? id))
        task.enqueuedAt = MatchingInstant(nanoseconds: record.addedAt)
        return task
    }

    func readTaskRecord(_ id: UInt64) throws(QueueError) -> TaskRecord {
        let bytes: [UInt8]
        do { bytes = try log.read(at: id) } catch { throw .log(error, "cannot read task \(id) back from the log") }
        guard let record = TaskRecord(decoding: bytes) else {
            throw QueueError(.corruptRecord, "the record at offset \(id) is not a task record", taskID: id, path: log.directory)
        }
        return record
    }

    // MARK: Due work: visibility timeouts and retries

    /// Redelivers tasks whose visibility deadline passed and queues retries whose backoff ended.
    func runDueWork() async {
        let now = clock.now().nanoseconds
        let (expired, due): ([(UInt64, InFlightEntry)], [(UInt64, DelayedEntry)]) = ledger.withLock { ledger in
            var expired: [(UInt64, InFlightEntry)] = []
            var due: [(UInt64, DelayedEntry)] = []
            if ledger.nextVisibilityDeadline <= now {
                var next = UInt64.max
                for (id, entry) in ledger.inFlight where !entry.retrying {
                    if entry.deadline <= now {
                        expired.append((id, entry))
                    } else {
                        next = min(next, entry.deadline)
                    }
                }
                for (id, _) in expired { ledger.inFlight[id]?.retrying = true }
                ledger.nextVisibilityDeadline = next
            }
            // A due task stays in `delayed` until `place` moves it into the backlog, under the
            // queue's lock: `peek` and the counts never see it in neither place.
            while let first = ledger.delayedOrder.first, first.due <= now {
                ledger.delayedOrder.removeFirst()
                if let entry = ledger.delayed[first.id] { due.append((first.id, entry)) }
            }
            nextDue.store(ledger.nextDue, ordering: .relaxed)
            return (expired, due)
        }
        for (id, entry) in expired.sorted(by: { $0.0 < $1.0 }) {
            _ = try? await retry(id, entry, reason: "visibility timeout", backoff: false)
        }
        for (id, entry) in due {
            if let task = entry.retained {
                place(task, in: entry.queue, isNew: false, forceInMemory: true, fromDelayed: true)
            } else {
                do {
                    let record = try readTaskRecord(id)
                    var task = matchedTask(record, id: id)
                    task.payload.attempt = UInt32(clamping: record.attempt)
                    place(task, in: entry.queue, isNew: false, fromDelayed: true)
                } catch {
                    // Still owed: try again after the longest backoff rather than forget it.
                    var retry = entry
                    retry.due = clock.now().nanoseconds &+ UInt64(configuration.retryMaximumInterval.nanoseconds)
                    ledger.withLock { ledger in
                        if ledger.delayed[id] != nil { ledger.insertDelayed(id, retry) }
                        nextDue.store(ledger.nextDue, ordering: .relaxed)
                    }
                }
            }
        }
    }

    // MARK: Refill

    /// Reads a batch of the queue's on-disk tasks (highest priority first) back into the
    /// matching core's window. One refill runs per queue at a time.
    func refill(_ queue: QueueState) {
        let batch = configuration.refillBatchSize
        let plan: (ids: [(id: UInt64, priority: Int)], generation: UInt32)? = queue.state.withLock { state in
            guard state.needsRefill(lowWater: batch), state.cold != nil else { return nil }
            if let best = state.cold?.bestPriority, let worst = state.worstHotPriority, best < worst {
                evictBelow(best, from: queue, state: &state)
            }
            guard state.needsRefill(lowWater: batch), let cold = state.cold else { return nil }
            state.refilling = true
            var ids: [(UInt64, Int)] = []
            for p in 1...5 {
                for id in cold.lanes[p - 1] {
                    if ids.count >= batch { break }
                    ids.append((id, p))
                }
            }
            return (ids, state.generation)
        }
        guard let plan else { return }
        var records: [UInt64: TaskRecord] = [:]
        do {
            records = try readTaskRecords(plan.ids.map(\.id))
        } catch {
            recordFailure(error)
        }
        let refill: Bool = queue.state.withLock { state in
            state.refilling = false
            guard state.generation == plan.generation else { return false }
            for (id, priority) in plan.ids {
                guard let record = records[id], state.cold?.lanes[priority - 1].first == id else { continue }
                // Past the budget, only what keeps the window at one batch (the rest stays on disk).
                if state.hotTotal >= batch && windowBytes.load(ordering: .relaxed) + record.payload.count > configuration.memoryBudgetBytes { break }
                state.cold!.lanes[priority - 1].removeFirst()
                state.cold!.count -= 1
                let task = matchedTask(record, id: id)
                let bytes = record.payload.count
                state.hot[priority] += 1
                state.hotTotal += 1
                windowBytes.add(bytes, ordering: .relaxed)
                ledger.withLock {
                    $0.hot[id] = HotEntry(queue: queue, priority: UInt8(priority), addedAt: record.addedAt, bytes: Int32(clamping: bytes))
                }
                try? queue.matching.add(task)
            }
            if state.cold?.count == 0 { state.cold = nil }
            return !records.isEmpty && state.needsRefill(lowWater: batch) && state.hotTotal < batch
        }
        if refill { self.refill(queue) }
    }

    /// A task on disk has a higher priority than tasks in the window (it went to disk because
    /// the window was full): move the window's tasks of lower priority than `best` back to the
    /// front of their on-disk lanes, so that pollers get the higher priority first and memory
    /// stays within the budget. Call with the queue's lock held. Cost: one drain of the window.
    func evictBelow(_ best: Int, from queue: QueueState, state: inout QueueBacklog) {
        var evicted: [[UInt64]] = Array(repeating: [], count: 5)
        var keep: [MatchedTask] = []
        var freed = 0
        for task in queue.matching.drain() {
            if task.priority <= best || isExternal(task.id) {
                keep.append(task)
                continue
            }
            evicted[task.priority - 1].append(task.id)
            state.hot[task.priority] -= 1
            state.hotTotal -= 1
            freed += task.payload.payload.count
        }
        ledger.withLock { ledger in
            for lane in evicted { for id in lane { ledger.hot[id] = nil } }
        }
        if state.cold == nil { state.cold = ColdBacklog() }
        windowBytes.subtract(freed, ordering: .relaxed)
        for p in 1...5 where !evicted[p - 1].isEmpty {
            // The window's tasks of a priority are older than the disk's: they go in front.
            state.cold!.lanes[p - 1].insert(contentsOf: evicted[p - 1], at: 0)
            state.cold!.count += evicted[p - 1].count
        }
        for task in keep { try? queue.matching.add(task) }
    }

    /// Reads the task records at `ids` (any order) with as few log reads as their spread allows.
    func readTaskRecords(_ ids: [UInt64]) throws(QueueError) -> [UInt64: TaskRecord] {
        let wanted = ids.sorted()
        var found: [UInt64: TaskRecord] = [:]
        var i = 0
        while i < wanted.count {
            let start = wanted[i]
            // Up to the last wanted id within 1,024 offsets: ids far apart (a queue among many,
            // its tasks thousands of records apart) are read one short read each, not by copying
            // the 1,024 records after each of them.
            var last = i
            while last + 1 < wanted.count && wanted[last + 1] - start < 1024 { last += 1 }
            let span = Int(wanted[last] - start + 1)
            let batch: [LogRecord]
            do { batch = try log.read(from: start, maxRecords: span) } catch { throw .log(error, "cannot read queued tasks back from the log") }
            guard let last = batch.last else {
                throw QueueError(.corruptRecord, "task \(start) is not in the log", taskID: start, path: log.directory)
            }
            for record in batch {
                if i < wanted.count && wanted[i] < record.offset {
                    throw QueueError(.corruptRecord, "task \(wanted[i]) is not in the log", taskID: wanted[i], path: log.directory)
                }
                if i < wanted.count && wanted[i] == record.offset {
                    guard let task = TaskRecord(decoding: record.payload) else {
                        throw QueueError(.corruptRecord, "the record at offset \(record.offset) is not a task record", taskID: record.offset,
                                         path: log.directory)
                    }
                    found[record.offset] = task
                    i += 1
                }
            }
            if i < wanted.count && wanted[i] <= last.offset {
                throw QueueError(.corruptRecord, "task \(wanted[i]) is not in the log", taskID: wanted[i], path: log.directory)
            }
        }
        return found
    }

    // MARK: Expiry

    /// A task in the window passed its schedule-to-start deadline and was dropped by the
    /// matching core: acknowledge it so that it is not restored.
    func handleExpired(_ expired: ExpiredTask) {
        let (entry, startWriter): (HotEntry?, Bool) = ledger.withLock { ledger in
            guard let entry = ledger.hot.removeValue(forKey: expired.id) else { return (nil, false) }
            if isExternal(expired.id) { return (entry, false) }
            ledger.release(expired.id)
            ledger.pendingAcks.append(expired.id)
            if ledger.ackWriterRunning { return (entry, false) }
            ledger.ackWriterRunning = true
            return (entry, true)
        }
        guard let entry else { return }
        expiredTotal.add(1, ordering: .relaxed)
        windowBytes.subtract(Int(entry.bytes), ordering: .relaxed)
        entry.queue.state.withLock { state in
            state.hot[Int(entry.priority)] -= 1
            state.hotTotal -= 1
            state.expired += 1
        }
        if startWriter { Task { await self.runAckWriter() } }
    }
}
