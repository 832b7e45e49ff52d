import SpoolLog
import SpoolMatching

extension TaskStore {
    /// Stops handing out the queue's tasks; adds still queue them, and pollers wait (up to
    /// their timeouts) until ``resume(_:kind:)``. Durable: returns once the pause is a record
    /// of the log (acknowledged under its durability); a reopen restores it.
    /// - Throws: ``QueueError/Code/invalidQueueName``, ``QueueError/Code/closed``, ``QueueError/Code/log``.
    public func pause(_ queue: String, kind: TaskQueueKind) async throws(QueueError) {
        try checkUsable()
        try await setControl(queueState(queue, kind: kind), .pause)
    }

    /// Undoes ``pause(_:kind:)``; durable like it. A rate limit of 0 keeps the queue paused.
    /// - Throws: as ``pause(_:kind:)``.
    public func resume(_ queue: String, kind: TaskQueueKind) async throws(QueueError) {
        try checkUsable()
        try await setControl(queueState(queue, kind: kind), .resume)
    }

    /// Sets the queue's rate limit (shared by all its pollers); nil removes it, a rate of 0
    /// pauses the queue. Durable like ``pause(_:kind:)``.
    /// - Throws: ``QueueError/Code/invalidRateLimit`` (nothing written), and as ``pause(_:kind:)``.
    public func setRateLimit(_ limit: RateLimit?, for queue: String, kind: TaskQueueKind) async throws(QueueError) {
        try checkUsable()
        let state = try queueState(queue, kind: kind)
        do { try limit?.validate(queue: queue) } catch { throw .matching(error) }
        try await setControl(state, .setRateLimit(limit))
    }

    /// Appends a control record, then applies it in memory, then releases the append's retain
    /// (so a checkpoint whose ack level passes the record has its effect in the control state).
    func setControl(_ queue: QueueState, _ operation: ControlOperation) async throws(QueueError) {
        let record = ControlRecord(kind: queue.kind, queue: queue.name, operation: operation)
        let (_, floor) = try await appendControl(record.encoded())
        defer { ledger.withLock { $0.release(floor) } }
        switch operation {
        case .pause:
            // A paused queue keeps nothing in memory: its window goes back to disk.
            queue.state.withLock { state in
                state.paused = true
                if state.hotTotal > 0 {
                    if state.cold == nil { state.cold = ColdBacklog() }
                    evictBelow(0, from: queue, state: &state)
                    if state.cold?.count == 0 { state.cold = nil }
                }
            }
        case .resume:
            queue.state.withLock { $0.paused = false }
        default:
            break
        }
        defer { if case .resume = operation { refill(queue) } }
        controls.withLock { controls in
            var state = controls[queue.key] ?? QueueControlState()
            switch operation {
            case .pause:
                state.paused = true
                queue.matching.pause()
            case .resume:
                state.paused = false
                queue.matching.resume()
            case .setRateLimit(let limit):
                state.rateLimit = limit
                try? queue.matching.setRateLimit(limit)
            case .purge:
                break
            }
            controls[queue.key] = state.isDefault ? nil : state
        }
    }

    /// Drops every task queued in the queue — in memory, on disk, or waiting out a retry
    /// backoff — and, with `deadLetters`, its dead letters. Tasks in flight stay in flight.
    /// Returns how many tasks were dropped.
    ///
    /// Durable: returns once the purge is a record of the log (acknowledged under its
    /// durability); a reopen does not restore the purged tasks. Tasks added concurrently may
    /// land on either side of the purge.
    /// - Throws: ``QueueError/Code/invalidQueueName``, ``QueueError/Code/closed``, ``QueueError/Code/log``.
    @discardableResult
    public func purge(_ queue: String, kind: TaskQueueKind, deadLetters: Bool = false) async throws(QueueError) -> Int {
        try checkUsable()
        let state = try queueState(queue, kind: kind)
        let inFlight = ledger.withLock { ledger in ledger.inFlight.filter { $0.value.queue === state }.map(\.key).filter { !isExternal($0) }.sorted() }
        let record = ControlRecord(kind: state.kind, queue: state.name, operation: .purge(inFlight: inFlight, deadLetters: deadLetters))
        let (offset, floor) = try await appendControl(record.encoded())
        defer { ledger.withLock { $0.release(floor) } }
        var dropped = 0
        var released: [UInt64] = []
        state.state.withLock { backlog in
            backlog.generation &+= 1
            backlog.purgedBelow = max(backlog.purgedBelow, offset)
            var keep: [MatchedTask] = []
            for task in state.matching.drain() {
                if !isExternal(task.id) && task.id >= offset {
                    keep.append(task)
                    continue
                }
                backlog.hot[task.priority] -= 1
                backlog.hotTotal -= 1
                windowBytes.subtract(task.payload.payload.count, ordering: .relaxed)
                released.append(task.id)
            }
            if let cold = backlog.cold {
                var remaining = ColdBacklog()
                for p in 1...5 {
                    for id in cold.lanes[p - 1] {
                        if id < offset { released.append(id) } else { remaining.push(id, priority: p) }
                    }
                }
                backlog.cold = remaining.count > 0 ? remaining : nil
            }
            let drainedHot = released.count
            ledger.withLock { ledger in
                for id in released.prefix(drainedHot) { ledger.hot[id] = nil }
                let delayed = ledger.delayed.filter { $0.value.queue === state && (isExternal($0.key) || $0.key < offset) }.map(\.key)
                for id in delayed { ledger.delayed[id] = nil }
                ledger.delayedOrder.removeAll { ledger.delayed[$0.id] == nil }
                backlog.delayed -= delayed.count
                released += delayed
                if deadLetters {
                    let dead = ledger.dead.filter { $0.value.queue === state && (isExternal($0.key) || $0.key < offset) }.map(\.key)
                    for id in dead { ledger.dead[id] = nil }
                    backlog.deadLetters -= dead.count
                    released += dead
                }
                for id in released { ledger.release(id) }
                nextDue.store(ledger.nextDue, ordering: .relaxed)
            }
            for task in keep { try? state.matching.add(task) }
            dropped = released.count
        }
        return dropped
    }

    // MARK: Visibility

    /// Every queue used since open or restored by it (both kinds of each name), sorted by name then kind.
    public func listQueues() -> [QueueSummary] {
        let states = registry.withLock { Array($0.values) }
        return states.map { state in
            let backlog = state.state.withLock { $0 }
            return QueueSummary(name: state.name, kind: state.kind, backlogCount: backlog.hotTotal + backlog.coldCount + backlog.delayed,
                                inFlightCount: backlog.inFlight, deadLetterCount: backlog.deadLetters, isPaused: state.matching.isPaused)
        }.sorted { ($0.name, $0.kind.rawValue) < ($1.name, $1.kind.rawValue) }
    }

    /// A snapshot of one queue: backlog and oldest age per priority, in-flight and dead-letter
    /// counts, add and dispatch counts and rates, pollers seen. Reads nothing from disk except
    /// the oldest on-disk task of each priority (for its age).
    /// Cost: a scan of the tasks the store holds in memory.
    /// - Throws: ``QueueError/Code/invalidQueueName``, ``QueueError/Code/closed``.
    public func describe(_ queue: String, kind: TaskQueueKind) throws(QueueError) -> QueueDescription {
        try checkUsable()
        let state = try queueState(queue, kind: kind)
        let now = clock.now().nanoseconds
        let matching = state.matching.describe()
        var oldest: [UInt64?] = Array(repeating: nil, count: 5)
        var delayedByPriority = PriorityCounts()
        ledger.withLock { ledger in
            for entry in ledger.hot.values where entry.queue === state {
                let p = Int(entry.priority) - 1
                oldest[p] = min(oldest[p] ?? .max, entry.addedAt)
            }
            for entry in ledger.delayed.values where entry.queue === state { delayedByPriority[Int(entry.priority)] += 1 }
        }
        let snapshot: QueueBacklog = state.state.withLock { backlog in
            let elapsed = Double(now &- (backlog.rates?.at ?? openedAt)) / 1e9
            if backlog.rates == nil || elapsed >= 1 {
                let previous = backlog.rates
                let addRate = elapsed > 0 ? Double(backlog.added - (previous?.added ?? 0)) / elapsed : 0
                let dispatchRate = elapsed > 0 ? Double(backlog.dispatched - (previous?.dispatched ?? 0)) / elapsed : 0
                backlog.rates = RateSample(at: now, added: backlog.added, dispatched: backlog.dispatched, addRate: addRate, dispatchRate: dispatchRate)
            }
            return backlog
        }
        for p in 1...5 {
            if let head = snapshot.cold?.lanes[p - 1].first, let record = try? readTaskRecord(head) {
                oldest[p - 1] = min(oldest[p - 1] ?? .max, record.addedAt)
            }
        }
        let backlog = TaskPriority.all.map { p in
            QueueBacklogLevel(priority: p, count: snapshot.hot[p] + (snapshot.cold?.lanes[p - 1].count ?? 0) + delayedByPriority[p],
                            oldestAge: oldest[p - 1].map { MatchingInstant(nanoseconds: now).duration(since: MatchingInstant(nanoseconds: $0)) })
        }
        return QueueDescription(name: state.name, kind: state.kind, isPaused: matching.isPaused, rateLimit: matching.rateLimit, backlog: backlog,
                                inMemoryCount: snapshot.hotTotal, delayedCount: snapshot.delayed, inFlightCount: snapshot.inFlight,
                                deadLetterCount: snapshot.deadLetters, addedCount: snapshot.added, dispatchedCount: snapshot.dispatched,
                                addRate: snapshot.rates?.addRate ?? 0, dispatchRate: snapshot.rates?.dispatchRate ?? 0,
                                expiredCount: snapshot.expired, waitingPollers: matching.waitingPollers, pollers: matching.pollers)
    }

    /// Up to `limit` queued tasks of the queue, in the order they would be delivered (highest
    /// priority first; within a priority, tasks in memory, then tasks on disk; tasks waiting
    /// out a backoff last). The tasks stay queued. Tasks recorded elsewhere are not shown.
    /// Cost: reads the shown tasks from the log.
    /// - Throws: ``QueueError/Code/invalidQueueName``; ``QueueError/Code/invalidArgument`` for
    ///   `limit < 1`; ``QueueError/Code/log`` or ``QueueError/Code/corruptRecord`` on a failed read.
    public func peek(_ queue: String, kind: TaskQueueKind, limit: Int = 10) throws(QueueError) -> [PeekedTask] {
        try checkUsable()
        guard limit >= 1 else { throw QueueError(.invalidArgument, "peek needs a limit of at least 1 (got \(limit))", queue: queue) }
        let state = try queueState(queue, kind: kind)
        // One snapshot of the window, the delayed tasks and the on-disk lanes: a refill moves tasks
        // from disk to the window under the queue's lock (then the ledger's), so reading them under
        // separate locks could miss a task in flight between the two. Same lock order as refill.
        var (hot, delayed, cold): ([(UInt64, Int)], [(UInt64, UInt64)], [[UInt64]]) = state.state.withLock { backlog in
            let (hot, delayed) = ledger.withLock { ledger in
                (ledger.hot.filter { $0.value.queue === state && !isExternal($0.key) }.map { ($0.key, Int($0.value.priority)) },
                 ledger.delayed.filter { $0.value.queue === state && !isExternal($0.key) }.map { ($0.key, $0.value.due) })
            }
            return (hot, delayed, (0..<5).map { p in Array((backlog.cold?.lanes[p] ?? []).prefix(limit)) })
        }
        hot.sort { ($0.1, $0.0) < ($1.1, $1.0) }
        delayed.sort { ($0.1, $0.0) < ($1.1, $1.0) }
        var order: [(id: UInt64, notBefore: UInt64?)] = []
        for p in 1...5 where order.count < limit {
            for (id, priority) in hot where priority == p && order.count < limit { order.append((id, nil)) }
            for id in cold[p - 1] where order.count < limit { order.append((id, nil)) }
        }
        for (id, due) in delayed where order.count < limit { order.append((id, due)) }
        let records = try readTaskRecords(order.map(\.id))
        return order.compactMap { item in
            guard let record = records[item.id] else { return nil }
            return PeekedTask(id: item.id, priority: record.priority, attempt: record.attempt, payload: record.payload,
                              fairnessKey: record.fairness?.key, addedAt: MatchingInstant(nanoseconds: record.addedAt),
                              notBefore: item.notBefore.map { MatchingInstant(nanoseconds: $0) })
        }
    }

    /// The queue's dead letters, oldest first, at most `limit`, with their payloads and the
    /// reason of their last failure. Cost: reads them from the log.
    /// - Throws: as ``peek(_:kind:limit:)``.
    public func deadLetters(_ queue: String, kind: TaskQueueKind, limit: Int = 100) throws(QueueError) -> [DeadLetter] {
        try checkUsable()
        guard limit >= 1 else { throw QueueError(.invalidArgument, "a limit must be at least 1 (got \(limit))", queue: queue) }
        let state = try queueState(queue, kind: kind)
        let entries = ledger.withLock { ledger in
            ledger.dead.filter { $0.value.queue === state }.sorted { $0.key < $1.key }.prefix(limit).map { ($0.key, $0.value) }
        }
        let recorded = try readTaskRecords(entries.map(\.0).filter { !isExternal($0) })
        return entries.compactMap { id, entry in
            if let task = entry.retained {
                return DeadLetter(id: id, originalID: task.payload.originalID, attempts: Int(task.payload.attempt) - 1,
                                  reason: entry.reason ?? "", payload: task.payload.payload, priority: task.priority)
            }
            guard let record = recorded[id] else { return nil }
            return DeadLetter(id: id, originalID: record.originalID ?? id, attempts: record.attempt, reason: record.deadLetterReason ?? "",
                              payload: record.payload, priority: record.priority)
        }
    }
}
