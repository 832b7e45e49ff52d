import SpoolLog
import SpoolMatching

extension TaskStore {
    /// Adds a task to the queue of `kind` named `queue` (created on first use) and returns its
    /// id once its record is acknowledged by the log: under `.sync` durability it is on stable
    /// storage (it survives a power loss); under `.interval` and `.none` it survives a process
    /// crash. Concurrent adds share one `fdatasync` (group commit).
    ///
    /// Then the task goes to a waiting poller if there is one (in memory, no further write),
    /// else to the queue's backlog. The id is the offset of the task's record in the log.
    /// - Throws: ``QueueError/Code/invalidQueueName``, ``QueueError/Code/invalidPriority``,
    ///   ``QueueError/Code/invalidFairnessKey``, ``QueueError/Code/payloadTooLarge`` — all before
    ///   anything is written; ``QueueError/Code/closed``; ``QueueError/Code/log`` when the append
    ///   fails (the task may or may not be durable then).
    public func add(_ payload: [UInt8], to queue: String, kind: TaskQueueKind, options: TaskOptions = TaskOptions()) async throws(QueueError) -> UInt64 {
        try checkUsable()
        return try await add(payload, to: queueState(queue, kind: kind), options: options)
    }

    /// Adds a task whose durable record lives elsewhere (the engine's activity tasks, recorded
    /// as history events): nothing is written to the queue log. The task is delivered like any
    /// other, but it is not restored by a reopen — the caller restores it from its own record
    /// — and completing it writes nothing. Its delivered id is `reference` with the top bit set
    /// (returned here); `reference` must be below 2⁶³.
    /// - Throws: as ``add(_:to:kind:options:)`` for bad input; ``QueueError/Code/invalidArgument``
    ///   for a `reference` with the top bit set.
    public func addRecordedElsewhere(_ payload: [UInt8], to queue: String, kind: TaskQueueKind, reference: UInt64,
                                     options: TaskOptions = TaskOptions()) throws(QueueError) -> UInt64 {
        try checkUsable()
        guard !isExternal(reference) else {
            throw QueueError(.invalidArgument, "reference \(reference) has the top bit set; references must be below 2^63", queue: queue)
        }
        let state = try queueState(queue, kind: kind)
        try validate(options, queue: state)
        let id = reference | externalIDBit
        let now = clock.now().nanoseconds
        var task = MatchedTask(id: id, priority: options.priority, fairness: options.fairness,
                               scheduleToStartDeadline: options.scheduleToStartDeadline,
                               payload: TaskEnvelope(payload: payload, attempt: 1, addedAt: now, originalID: id))
        task.enqueuedAt = clock.now()
        place(task, in: state, isNew: true, forceInMemory: true)
        return id
    }

    func add(_ payload: [UInt8], to state: QueueState, options: TaskOptions) async throws(QueueError) -> UInt64 {
        try checkUsable()
        try validate(options, queue: state)
        let overhead = TaskRecord.overhead(queue: state.name, fairness: options.fairness)
        guard payload.count + overhead <= configuration.log.maxRecordBytes else {
            throw QueueError(.payloadTooLarge, "a payload of \(payload.count) bytes (\(payload.count + overhead) with its record header) exceeds "
                             + "the log's maxRecordBytes (\(configuration.log.maxRecordBytes))", queue: state.name)
        }
        let now = clock.now().nanoseconds
        let record = TaskRecord(kind: state.kind, priority: options.priority, attempt: 1, addedAt: now, queue: state.name,
                                payload: payload, fairness: options.fairness, scheduleToStartDeadline: options.scheduleToStartDeadline?.nanoseconds)
        let id = try await appendRetained(record.encoded(), what: "cannot append the task")
        let task = MatchedTask(id: id, priority: options.priority, fairness: options.fairness,
                               scheduleToStartDeadline: options.scheduleToStartDeadline,
                               payload: TaskEnvelope(payload: payload, attempt: 1, addedAt: now, originalID: id))
        place(task, in: state, isNew: true)
        return id
    }

    /// Adds tasks to one queue in the order of `payloads`, as one append to the log: their ids
    /// increase in that order, they share one `fdatasync`, and all are acknowledged together
    /// (under `.sync` durability, on stable storage). Returns their ids, in order.
    ///
    /// Use it where order matters (a script's lines); concurrent ``add(_:to:kind:options:)``
    /// calls also share fdatasyncs, but their ids follow the order in which the log took them.
    /// - Throws: as ``add(_:to:kind:options:)`` for bad input, before anything is written;
    ///   ``QueueError/Code/payloadTooLarge`` when the records together do not fit in one log
    ///   segment (``batchBytes(payloadBytes:queue:fairness:)`` says how much they take);
    ///   ``QueueError/Code/invalidArgument`` for no payloads; ``QueueError/Code/log`` when the
    ///   append fails (then none of them is acknowledged, and each may or may not be durable).
    public func add(contentsOf payloads: [[UInt8]], to queue: String, kind: TaskQueueKind,
                    options: TaskOptions = TaskOptions()) async throws(QueueError) -> [UInt64] {
        try checkUsable()
        return try await add(contentsOf: payloads, to: queueState(queue, kind: kind), options: options)
    }

    /// The bytes a batch of tasks with `payloadBytes` bytes of payload in all takes in the log,
    /// for `count` tasks of `queue` with key `fairness`: it must not exceed the log's segment
    /// size for ``add(contentsOf:to:kind:options:)``.
    public func batchBytes(payloadBytes: Int, count: Int, queue: String, fairness: FairnessKey? = nil) -> Int {
        RecordBatchHeader.size + payloadBytes + count * (TaskRecord.overhead(queue: queue, fairness: fairness) + 4)
    }

    func add(contentsOf payloads: [[UInt8]], to state: QueueState, options: TaskOptions) async throws(QueueError) -> [UInt64] {
        try checkUsable()
        try validate(options, queue: state)
        guard !payloads.isEmpty else { throw QueueError(.invalidArgument, "add(contentsOf:) needs at least one payload", queue: state.name) }
        let overhead = TaskRecord.overhead(queue: state.name, fairness: options.fairness)
        for (index, payload) in payloads.enumerated() where payload.count + overhead > configuration.log.maxRecordBytes {
            throw QueueError(.payloadTooLarge, "payload \(index + 1) of \(payloads.count): \(payload.count) bytes (\(payload.count + overhead) "
                             + "with its record header) exceeds the log's maxRecordBytes (\(configuration.log.maxRecordBytes))", queue: state.name)
        }
        let total = batchBytes(payloadBytes: payloads.reduce(0) { $0 + $1.count }, count: payloads.count, queue: state.name,
                               fairness: options.fairness)
        guard total <= configuration.log.segmentBytes else {
            throw QueueError(.payloadTooLarge, "\(payloads.count) tasks take \(total) bytes in the log; one batch must fit in a segment "
                             + "(segmentBytes = \(configuration.log.segmentBytes)): add them in smaller batches", queue: state.name)
        }
        let now = clock.now().nanoseconds
        let records = payloads.map { payload in
            TaskRecord(kind: state.kind, priority: options.priority, attempt: 1, addedAt: now, queue: state.name, payload: payload,
                       fairness: options.fairness, scheduleToStartDeadline: options.scheduleToStartDeadline?.nanoseconds).encoded()
        }
        // As appendRetained, for a range: the floor retain covers the offsets while they are in flight.
        let floor = ledger.withLock { ledger -> UInt64 in
            let floor = log.endOffset
            ledger.retain(floor)
            return floor
        }
        let offsets: Range<UInt64>
        do {
            offsets = try await log.append(contentsOf: records)
            ledger.withLock { ledger in
                for offset in offsets { ledger.retain(offset) }
                ledger.release(floor)
            }
        } catch {
            ledger.withLock { $0.release(floor) }
            let failure = QueueError.log(error, "cannot append \(payloads.count) task(s)")
            if failure.code == .log { recordFailure(failure) }
            throw failure
        }
        for (payload, id) in zip(payloads, offsets) {
            let task = MatchedTask(id: id, priority: options.priority, fairness: options.fairness,
                                   scheduleToStartDeadline: options.scheduleToStartDeadline,
                                   payload: TaskEnvelope(payload: payload, attempt: 1, addedAt: now, originalID: id))
            place(task, in: state, isNew: true)
        }
        return Array(offsets)
    }

    /// The largest payload ``add(_:to:kind:options:)`` accepts for a queue named `queue` and
    /// tasks with fairness key `fairness`: the log's `maxRecordBytes` less the record's header.
    public func maxPayloadBytes(queue: String, fairness: FairnessKey? = nil) -> Int {
        configuration.log.maxRecordBytes - TaskRecord.overhead(queue: queue, fairness: fairness)
    }

    func validate(_ options: TaskOptions, queue: QueueState) throws(QueueError) {
        guard TaskPriority.all.contains(options.priority) else {
            throw QueueError(.invalidPriority, "priority \(options.priority) is outside 1 (highest) … 5 (lowest)", queue: queue.name)
        }
        if let key = options.fairness {
            let length = key.key.utf8.count
            guard length > 0, length <= FairnessKey.maximumUTF8Length else {
                throw QueueError(.invalidFairnessKey, "a fairness key must be 1…\(FairnessKey.maximumUTF8Length) UTF-8 bytes (got \(length))",
                                 queue: queue.name)
            }
            guard key.weight >= 1 else {
                throw QueueError(.invalidFairnessKey, "fairness key '\(key.key)' has weight 0; weights start at 1", queue: queue.name)
            }
        }
    }

    /// Appends `record` and returns its offset, with the offset retained in the ledger (it
    /// counts against the ack level until released). While the append is in flight its future
    /// offset is covered by a retain of the log's end at submission, so a checkpoint taken
    /// meanwhile cannot move the ack level past it.
    func appendRetained(_ record: [UInt8], what: String) async throws(QueueError) -> UInt64 {
        let floor = ledger.withLock { ledger -> UInt64 in
            let floor = log.endOffset
            ledger.retain(floor)
            return floor
        }
        do {
            let offset = try await log.append(record)
            ledger.withLock { ledger in
                ledger.retain(offset)
                ledger.release(floor)
            }
            return offset
        } catch {
            ledger.withLock { $0.release(floor) }
            let failure = QueueError.log(error, what)
            if failure.code == .log { recordFailure(failure) }
            throw failure
        }
    }

    /// Appends a record that holds no task (a control record); the floor retain is released by `body`'s caller.
    func appendControl(_ record: [UInt8]) async throws(QueueError) -> (offset: UInt64, floor: UInt64) {
        let floor = ledger.withLock { ledger -> UInt64 in
            let floor = log.endOffset
            ledger.retain(floor)
            return floor
        }
        do {
            return (try await log.append(record), floor)
        } catch {
            ledger.withLock { $0.release(floor) }
            let failure = QueueError.log(error, "cannot append the control record")
            if failure.code == .log { recordFailure(failure) }
            throw failure
        }
    }

    /// Puts a task (already retained in the ledger) into its queue: into the matching core's
    /// window when nothing of its priority or higher waits on disk and the memory budget allows
    /// (or the window is below one refill batch); otherwise on disk only, as its offset.
    ///
    /// `fromDelayed`: the task is a retry whose backoff ended; it leaves `delayed` in the same
    /// step that puts it in the backlog, and only if it is still there (a purge or a relocation
    /// may have taken it since it came due).
    func place(_ task: MatchedTask, in queue: QueueState, isNew: Bool, forceInMemory: Bool = false, fromDelayed: Bool = false) {
        let bytes = task.payload.payload.count
        let lowWater = configuration.refillBatchSize
        let budget = configuration.memoryBudgetBytes
        let external = isExternal(task.id)
        let (purged, refill): (Bool, Bool) = queue.state.withLock { state in
            if fromDelayed {
                guard ledger.withLock({ $0.delayed.removeValue(forKey: task.id) != nil }) else { return (false, false) }
                state.delayed -= 1
            }
            if !external && task.id < state.purgedBelow { return (true, false) }
            if isNew { state.added += 1 }
            let p = task.priority
            let fits = windowBytes.load(ordering: .relaxed) + bytes <= budget || state.hotTotal < lowWater
            if forceInMemory || (fits && !state.paused && (state.cold?.isEmpty(through: p) ?? true)) {
                state.hot[p] += 1
                state.hotTotal += 1
                windowBytes.add(bytes, ordering: .relaxed)
                ledger.withLock {
                    $0.hot[task.id] = HotEntry(queue: queue, priority: UInt8(p), addedAt: task.payload.addedAt, bytes: Int32(clamping: bytes))
                }
                // Validated by the caller (or read back from a record that was).
                try? queue.matching.add(task)
            } else {
                if state.cold == nil { state.cold = ColdBacklog() }
                state.cold!.push(task.id, priority: p)
            }
            return (false, state.needsRefill(lowWater: lowWater))
        }
        if purged { ledger.withLock { $0.release(task.id) } }
        if refill { self.refill(queue) }
    }
}
