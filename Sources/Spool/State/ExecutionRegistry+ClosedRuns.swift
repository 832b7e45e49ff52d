import Logging

/// The registry's view of a closed-run table: runs found there are loaded into their shard
/// (as handles of closed runs) when something asks for them, never all at open.
///
/// A run whose retention has ended is not loaded (the table keeps it until the next merge
/// leaves it out): it is gone, as a run dropped from memory by its retention timer is. A run
/// loaded from the table gets its retention timer, so it leaves memory when it ends.
final class ClosedRuns: Sendable {
    let table: ClosedRunTable
    /// The retention policy now (namespaces' retentions change while the engine runs).
    private let retention: @Sendable () -> RetentionPolicy
    private let clock: RetentionClock
    /// The retention clock's now.
    var clockNow: Timestamp { clock.now() }
    private let timers: TimerQueue
    private let logger: Logger

    init(table: ClosedRunTable, retention: @escaping @Sendable () -> RetentionPolicy, clock: RetentionClock, timers: TimerQueue, logger: Logger) {
        self.table = table
        self.retention = retention
        self.clock = clock
        self.timers = timers
        self.logger = logger
    }

    /// Whether a run of `namespace` (nil: not known without decoding it; then only the longest
    /// retention can say) that closed at `closeTime` is past its retention.
    func isExpired(closeTime: Timestamp, namespace: String?, now: Timestamp) -> Bool {
        let policy = retention()
        guard let limit = namespace.map(policy.retention(for:)) ?? policy.longest else { return false }
        return now >= closeTime.advanced(by: limit)
    }

    /// Whether the table holds the run that starts at `firstRecordOffset` in `workflowKey`.
    func contains(_ workflowKey: WorkflowKey, firstRecordOffset: UInt64) -> Bool {
        table.indexes(ofWorkflowHash: ClosedRunTable.workflowHash(workflowKey)).contains { table.firstRecordOffset(at: $0) == firstRecordOffset }
    }

    /// The first record offset of the newest run of `workflowKey` in the table (expired or not).
    func newestFirstRecordOffset(of workflowKey: WorkflowKey) -> UInt64? {
        // Runs of other workflow ids with the same hash may sit in the range: decode to be sure.
        let runs = (try? table.runs(of: workflowKey)) ?? []
        return runs.last?.run.recordOffsets.first
    }

    /// Makes the newest run of `workflowKey` in the table, if it has one within its retention, the
    /// shard's current run of that workflow id. The caller holds the shard's lock and found no
    /// current run in memory.
    func loadCurrentRun(of workflowKey: WorkflowKey, into shard: inout ExecutionRegistry.Shard) {
        let hash = ClosedRunTable.workflowHash(workflowKey)
        let range = table.indexes(ofWorkflowHash: hash)
        guard !range.isEmpty else { return }
        let runs: [(index: Int, run: EngineCheckpoint.Run)]
        do { runs = try table.runs(of: workflowKey) } catch {
            logger.error("cannot decode a run of the closed-run table", metadata: ["error": "\(error)"])
            return
        }
        guard let newest = runs.last else { return }
        let key = newest.run.state.key
        if shard.runs[key] == nil {
            guard let handle = load(newest.run) else { return }
            shard.runs[key] = handle
        }
        shard.currentRuns[workflowKey] = key.runID
    }

    /// Loads the run `key` names from the table into the shard (not changing its workflow id's
    /// current run). The caller holds the shard's lock and found no such run in memory.
    func loadRun(_ key: ExecutionKey, into shard: inout ExecutionRegistry.Shard) -> ExecutionHandle? {
        let runs: [(index: Int, run: EngineCheckpoint.Run)]
        do { runs = try table.runs(of: key.workflowKey) } catch {
            logger.error("cannot decode a run of the closed-run table", metadata: ["error": "\(error)"])
            return nil
        }
        guard let found = runs.first(where: { $0.run.state.key == key }), let handle = load(found.run) else { return nil }
        shard.runs[key] = handle
        return handle
    }

    private func load(_ run: EngineCheckpoint.Run) -> ExecutionHandle? {
        let closeTime = run.state.closeTime ?? run.state.startTime
        let namespace = run.state.key.namespace
        if isExpired(closeTime: closeTime, namespace: namespace, now: clock.now()) { return nil }
        if let limit = retention().retention(for: namespace) { timers.schedule(.retention, for: run.state.key, at: closeTime.advanced(by: limit)) }
        return ExecutionHandle(state: run.state, creating: false, recordOffsets: run.recordOffsets)
    }

    /// The states of the table's runs in `namespace` within their retention, except those in
    /// `inMemory` (whose handles are authoritative). Cost: every run of the table is decoded.
    func states(namespace: String, excluding inMemory: Set<ExecutionKey>) -> [ExecutionState] {
        let now = clock.now()
        var states: [ExecutionState] = []
        for index in 0..<table.count where !isExpired(closeTime: table.closeTime(at: index), namespace: nil, now: now) {
            guard let run = try? table.run(at: index) else { continue }
            let state = run.state
            guard state.key.namespace == namespace, !inMemory.contains(state.key),
                  !isExpired(closeTime: table.closeTime(at: index), namespace: namespace, now: now) else { continue }
            states.append(state)
        }
        return states
    }
}

extension ExecutionRegistry {
    /// Every run in memory, and of those in the closed-run table the ones not in memory, of
    /// `namespace` (visible runs only).
    func allStates(namespace: String) -> [ExecutionState] {
        let inMemory = allHandles().filter { $0.key.namespace == namespace && $0.isVisible && !$0.isRemoved }.map(\.state)
        guard let closed = closedRuns.withLock({ $0 }) else { return inMemory }
        return inMemory + closed.states(namespace: namespace, excluding: Set(inMemory.map(\.key)))
    }

    /// Takes closed runs that the just-installed closed-run table holds out of memory; their
    /// handles stay valid for whoever holds them. A workflow id whose current run leaves gets it
    /// back from the table on its next lookup.
    func evict(_ handles: [ExecutionHandle]) {
        for handle in handles {
            let key = handle.key
            withShard(of: key.workflowKey) { shard in
                guard shard.runs[key] === handle, !handle.state.isRunning else { return }
                shard.runs[key] = nil
                if shard.currentRuns[key.workflowKey] == key.runID { shard.currentRuns[key.workflowKey] = nil }
            }
        }
    }
}
