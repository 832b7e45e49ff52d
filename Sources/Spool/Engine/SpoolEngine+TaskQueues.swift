import SpoolMatching

extension SpoolEngine {
    // MARK: Settings

    /// Reads `DIR/task-queues` (if any) and applies each queue's settings to its matcher queue.
    func loadTaskQueueSettings() throws(SpoolError) {
        guard let bytes = try checkpointStore.read(TaskQueueSettingsFile.fileName, what: "the task queue settings") else { return }
        let configs = try TaskQueueSettingsFile.decode(bytes, path: directory + "/" + TaskQueueSettingsFile.fileName)
        taskQueueSettings.state.withLock { $0.configs = configs }
        for key in configs.keys.sorted() { applyTaskQueueSettings(key) }
    }

    /// Gives the queue its partitions, pause and effective rate.
    func applyTaskQueueSettings(_ key: TaskQueueSettingKey) {
        guard let queue = try? dispatcher(key.namespace).queue(recorded: key.name, kind: key.kind) else { return }
        let config = taskQueueSettings.config(key)
        _ = try? queue.setPartitions(config.partitions)
        if config.pause != nil { queue.pause() } else { queue.resume() }
        applyRate(key, to: queue)
        let keyRate = config.fairnessKeyRateLimit.map { RateLimit(perSecond: $0.requestsPerSecond) }
        if queue.fairnessKeyRateLimit != keyRate { try? queue.setFairnessKeyRateLimit(keyRate) }
    }

    /// Gives the queue its effective rate (the configured one, else the latest poller's) if it changed.
    func applyRate(_ key: TaskQueueSettingKey, to queue: TaskQueue<TaskReference>) {
        let now = clock.matchingClock.now()
        taskQueueSettings.state.withLock { state in
            let effective = state.effectiveRate(key, now: now)
            if let applied = state.applied[key], applied == effective { return }
            state.applied[key] = .some(effective)
            // Under the lock, so that two changes reach the queue in the order they were made.
            try? queue.setRateLimit(effective.map { RateLimit(perSecond: $0) })
        }
    }

    /// Records the queue-wide rate a poller sent (Temporal's `TaskQueueMetadata.max_tasks_per_second`:
    /// the latest poller's value wins, a configured rate takes precedence).
    func notePollerRate(_ rate: Double, key: TaskQueueSettingKey, queue: TaskQueue<TaskReference>) throws(SpoolError) {
        guard rate.isFinite, rate >= 0 else {
            throw SpoolError(.invalidArgument, "maxTasksPerSecond must be a finite number ≥ 0 (got \(rate))", namespace: key.namespace)
        }
        let now = clock.matchingClock.now()
        let changed = taskQueueSettings.state.withLock { state -> Bool in
            let live = state.pollerRate(key, now: now)
            if state.pollerRates[key] == nil { taskQueueSettings.pollerRateCount.add(1, ordering: .relaxed) }
            state.pollerRates[key] = TaskQueueSettings.PollerRate(rate: rate, sentAt: now)
            return live != rate
        }
        if changed { applyRate(key, to: queue) }
    }

    /// For a poll that sends no queue rate: if the rate the queue's pollers last sent is older
    /// than the poller history TTL, it no longer counts (the configured rate, or none, applies).
    func expirePollerRate(key: TaskQueueSettingKey, queue: TaskQueue<TaskReference>) {
        guard taskQueueSettings.pollerRateCount.load(ordering: .relaxed) > 0 else { return }
        let now = clock.matchingClock.now()
        let expired = taskQueueSettings.state.withLock { state -> Bool in
            guard state.pollerRates[key] != nil, state.pollerRate(key, now: now) == nil else { return false }
            state.pollerRates[key] = nil
            taskQueueSettings.pollerRateCount.subtract(1, ordering: .relaxed)
            return true
        }
        if expired { applyRate(key, to: queue) }
    }

    /// The handle a poll goes through: registered under `identity` (so describe lists it), with the
    /// worker's own rate limit; nil for an anonymous poll without a rate (the cheapest poll).
    func pollerHandle(_ queue: TaskQueue<TaskReference>, identity: String, workerMaxTasksPerSecond: Double?,
                      namespace: String) throws(SpoolError) -> TaskPoller? {
        if identity.isEmpty && workerMaxTasksPerSecond == nil { return nil }
        if let rate = workerMaxTasksPerSecond, !(rate.isFinite && rate > 0) {
            throw SpoolError(.invalidArgument, "workerMaxTasksPerSecond must be a finite number above 0 (got \(rate)); omit it for no limit",
                             namespace: namespace)
        }
        do {
            return try queue.poller(identity: identity.isEmpty ? "(no identity)" : identity, maxTasksPerSecond: workerMaxTasksPerSecond)
        } catch {
            throw SpoolError(.invalidArgument, "task queue '\(queue.name)': \(error.message)", namespace: namespace)
        }
    }

    /// Checks a queue named by a caller and returns its settings key.
    private func settingKey(namespace: String, taskQueue: String, kind: TaskQueueKind) throws(SpoolError) -> TaskQueueSettingKey {
        if let problem = IdentifierText.problem(in: namespace) {
            throw SpoolError(.invalidArgument, "the namespace '\(IdentifierText.shown(namespace))' is not valid: \(problem)")
        }
        try validateQueueName(taskQueue, what: "the task queue")
        return TaskQueueSettingKey(namespace: namespace, name: taskQueue, kind: kind)
    }

    /// Changes a queue's durable settings: the file is replaced (durable) before the queue
    /// changes and before this returns.
    private func modifyTaskQueueConfig(_ key: TaskQueueSettingKey,
                                       _ body: (inout TaskQueueConfig) throws(SpoolError) -> Void) throws(SpoolError) -> TaskQueueConfig {
        try checkOpen()
        guard !configuration.isReadOnly else {
            throw SpoolError(.storage, "the engine is open read-only; task queue '\(key.name)' cannot be configured", namespace: key.namespace)
        }
        let config = try taskQueueSettings.writeLock.withLock { () throws(SpoolError) -> TaskQueueConfig in
            var configs = taskQueueSettings.allConfigs
            var config = configs[key] ?? TaskQueueConfig()
            try body(&config)
            configs[key] = config.isEmpty ? nil : config
            let bytes = TaskQueueSettingsFile.encode(configs)
            let written = bytes.withUnsafeBytes { buffer in
                Result { () throws(SpoolError) in try checkpointStore.writeFile(buffer, name: TaskQueueSettingsFile.fileName) }
            }
            try written.get()
            taskQueueSettings.state.withLock { $0.configs[key] = config.isEmpty ? nil : config }
            return config
        }
        applyTaskQueueSettings(key)
        return config
    }

    // MARK: Public API

    /// Changes a task queue's durable settings (Temporal's `UpdateTaskQueueConfig`, plus the
    /// partition count): the queue-wide rate limit, which takes precedence over the rate pollers
    /// send (0 holds every task back until it is changed), the per-fairness-key rate limit (each
    /// key at most that rate times its weight; 0 holds back every task with a key), and the partitions. The settings are
    /// written to `DIR/task-queues` (atomically, synced) before this returns and apply again at
    /// every open. Returns the queue's settings after the change.
    /// - Throws: ``SpoolError/Code/invalidArgument`` for a bad namespace or queue name, a negative
    ///   or non-finite rate, or partitions outside 1…64 (nothing changed); ``SpoolError/Code/io``
    ///   when the file cannot be written (nothing changed); ``SpoolError/Code/storage`` on an
    ///   engine opened read-only; ``SpoolError/Code/closed``.
    @discardableResult
    public func updateTaskQueueConfig(_ request: UpdateTaskQueueConfigRequest) throws(SpoolError) -> TaskQueueConfig {
        let key = try settingKey(namespace: request.namespace, taskQueue: request.taskQueue, kind: request.kind)
        let now = clock.now()
        return try modifyTaskQueueConfig(key) { config throws(SpoolError) in
            switch request.queueRateLimit {
            case nil: break
            case .set(let rate, let reason)?:
                guard rate.isFinite, rate >= 0 else {
                    throw SpoolError(.invalidArgument, "queueRateLimit must be a finite number of tasks per second ≥ 0 (got \(rate))",
                                     namespace: key.namespace)
                }
                config.queueRateLimit = TaskQueueRateLimitConfig(requestsPerSecond: rate, reason: reason, updateIdentity: request.identity,
                                                                 updateTime: now)
            case .unset?:
                config.queueRateLimit = nil
            }
            switch request.fairnessKeyRateLimit {
            case nil: break
            case .set(let rate, let reason)?:
                guard rate.isFinite, rate >= 0 else {
                    throw SpoolError(.invalidArgument, "fairnessKeyRateLimit must be a finite number of tasks per second ≥ 0 (got \(rate))",
                                     namespace: key.namespace)
                }
                config.fairnessKeyRateLimit = TaskQueueRateLimitConfig(requestsPerSecond: rate, reason: reason,
                                                                       updateIdentity: request.identity, updateTime: now)
            case .unset?:
                config.fairnessKeyRateLimit = nil
            }
            if let partitions = request.partitions {
                if let count = partitions, !(1...64).contains(count) {
                    throw SpoolError(.invalidArgument, "partitions must be 1…64 (got \(count))", namespace: key.namespace)
                }
                config.partitions = partitions
            }
        }
    }

    /// Pauses a task queue, durably: polls wait (up to their timeouts) and get nothing, adds are
    /// kept, until ``resumeTaskQueue(namespace:taskQueue:kind:)`` (across reopens). Pausing a
    /// paused queue keeps the first pause's reason and time.
    /// - Throws: as ``updateTaskQueueConfig(_:)``.
    public func pauseTaskQueue(namespace: String = defaultNamespace, taskQueue: String, kind: TaskQueueKind,
                               reason: String = "", identity: String = "") throws(SpoolError) {
        let key = try settingKey(namespace: namespace, taskQueue: taskQueue, kind: kind)
        let now = clock.now()
        _ = try modifyTaskQueueConfig(key) { config throws(SpoolError) in
            if config.pause == nil { config.pause = TaskQueuePauseConfig(reason: reason, identity: identity, time: now) }
        }
    }

    /// Resumes a paused task queue (durably); waiting polls get its tasks at once.
    /// - Throws: as ``updateTaskQueueConfig(_:)``.
    public func resumeTaskQueue(namespace: String = defaultNamespace, taskQueue: String, kind: TaskQueueKind) throws(SpoolError) {
        let key = try settingKey(namespace: namespace, taskQueue: taskQueue, kind: kind)
        _ = try modifyTaskQueueConfig(key) { config throws(SpoolError) in config.pause = nil }
    }

    /// A queue's durable settings (empty when it has none).
    /// - Throws: ``SpoolError/Code/invalidArgument`` for a bad namespace or queue name.
    public func taskQueueConfig(namespace: String = defaultNamespace, taskQueue: String, kind: TaskQueueKind) throws(SpoolError) -> TaskQueueConfig {
        taskQueueSettings.config(try settingKey(namespace: namespace, taskQueue: taskQueue, kind: kind))
    }

    /// Every queue with durable settings, sorted by namespace, name and kind.
    public func configuredTaskQueues() -> [(namespace: String, taskQueue: String, kind: TaskQueueKind, config: TaskQueueConfig)] {
        taskQueueSettings.allConfigs.sorted { $0.key < $1.key }.map { ($0.key.namespace, $0.key.name, $0.key.kind, $0.value) }
    }

    /// What a task queue holds and who polls it (Temporal's `DescribeTaskQueue`): its settings and
    /// effective rate, exact backlog counts and the age of the oldest task per priority, add and
    /// dispatch counts and rates, and the pollers that polled it with an identity since the
    /// engine opened. Cost: a walk over the queue's partitions and lanes; the queue keeps working.
    /// On an engine opened read-only the backlog is the one rebuilt from the log; pollers are
    /// only visible in the process they poll (``TaskQueueInfo/pollersVisible`` is false).
    /// - Throws: ``SpoolError/Code/invalidArgument`` for a bad namespace or queue name; ``SpoolError/Code/closed``.
    /// With `fairnessKeys`, each priority's backlog is also given per fairness key (a walk over the
    /// keys that have tasks).
    public func describeTaskQueue(namespace: String = defaultNamespace, taskQueue: String, kind: TaskQueueKind,
                                  fairnessKeys: Bool = false) throws(SpoolError) -> TaskQueueInfo {
        try checkOpen()
        let key = try settingKey(namespace: namespace, taskQueue: taskQueue, kind: kind)
        let queue = try self.queue(namespace: namespace, name: taskQueue, kind: kind)
        let description = queue.describe(fairnessKeys: fairnessKeys)
        let elapsed = clock.now().duration(since: openedAt)
        let seconds = max(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, 1e-9)
        expirePollerRate(key: key, queue: queue)
        let now = clock.matchingClock.now()
        let (config, pollerRate, effective) = taskQueueSettings.state.withLock { state in
            (state.configs[key] ?? TaskQueueConfig(), state.pollerRate(key, now: now), state.effectiveRate(key, now: now))
        }
        return TaskQueueInfo(
            namespace: namespace, name: taskQueue, kind: kind, config: config, pollerRateLimit: pollerRate, effectiveRateLimit: effective,
            isPaused: description.isPaused, partitions: description.partitions,
            backlog: description.backlog.map { backlog in
                TaskQueueBacklogInfo(priority: backlog.priority, count: backlog.count, oldestAge: backlog.oldestAge,
                                     fairnessKeys: backlog.fairnessKeys.map {
                                         TaskQueueFairnessKeyBacklog(key: $0.key, count: $0.count, oldestAge: $0.oldestAge)
                                     })
            },
            added: description.added, dispatched: description.dispatched,
            addRate: Double(description.added) / seconds, dispatchRate: Double(description.dispatched) / seconds,
            waitingPollers: description.waitingPollers,
            pollers: description.pollers.map {
                TaskQueuePollerInfo(identity: $0.identity, lastAccessTime: clock.timestamp($0.lastPoll),
                                    ratePerSecond: $0.maxTasksPerSecond, dispatched: $0.dispatched)
            },
            pollersVisible: !configuration.isReadOnly)
    }
}
