import SpoolPrimitives
/// Every run the engine knows, open and closed, and the current run of each workflow id.
///
/// Sharded by workflow id (64 shards, each behind its own mutex), so a start, which must check
/// and claim a workflow id atomically, locks one shard briefly and never across an append.
/// All runs of one workflow id live in the same shard.
final class ExecutionRegistry: Sendable {
    struct Shard: Sendable {
        var runs: [ExecutionKey: ExecutionHandle] = [:]
        /// The latest run of each workflow id (open or closed).
        var currentRuns: [WorkflowKey: String] = [:]
        /// The installed closed-run table (the same in every shard).
        var closedRuns: ClosedRuns?

        /// The run `key` names: in memory, or loaded from the closed-run table.
        mutating func handle(_ key: ExecutionKey) -> ExecutionHandle? {
            if let handle = runs[key] { return handle }
            return closedRuns?.loadRun(key, into: &self)
        }
    }

    private let shards: [LockedValue<Shard>]
    /// The closed runs of the last checkpoint's closed-run table, looked up when a run or a
    /// workflow id is not in a shard (ExecutionRegistry+ClosedRuns.swift); for checkpoints and
    /// lists (each shard holds the same reference for its lookups).
    let closedRuns = LockedValue<ClosedRuns?>(nil)

    init(shardCount: Int = 64) {
        shards = (0..<shardCount).map { _ in LockedValue(Shard()) }
    }

    func shard(_ key: WorkflowKey) -> LockedValue<Shard> {
        var hasher = Hasher()
        hasher.combine(key)
        return shards[Int(UInt(bitPattern: hasher.finalize()) % UInt(shards.count))]
    }

    /// Runs `body` with the shard that holds `key`'s runs locked. `body` must not suspend.
    /// A workflow id whose current run is only in the closed-run table gets it loaded first.
    func withShard<Result, E: Error>(of key: WorkflowKey, _ body: (inout Shard) throws(E) -> sending Result) throws(E) -> sending Result {
        try shard(key).withLock { shard throws(E) -> sending Result in
            if let closed = shard.closedRuns, shard.currentRuns[key] == nil { closed.loadCurrentRun(of: key, into: &shard) }
            return try body(&shard)
        }
    }

    /// Installs a closed-run table: runs not in memory are looked up there from now on. Each
    /// shard keeps its own reference, so a lookup takes no lock but its shard's. While shards
    /// change over, either table answers: the new one holds every run of the old one that is
    /// still within its retention, and the runs it adds are still in memory.
    func install(_ closed: ClosedRuns?) {
        closedRuns.withLock { $0 = closed }
        for shard in shards { shard.withLock { $0.closedRuns = closed } }
    }

    /// The run `execution` names in `namespace` (its current run when the run id is empty).
    func handle(namespace: String, execution: WorkflowExecution) -> ExecutionHandle? {
        let workflowKey = WorkflowKey(namespace: namespace, workflowID: execution.workflowID)
        return withShard(of: workflowKey) { shard -> ExecutionHandle? in
            let runID = execution.runID.isEmpty ? shard.currentRuns[workflowKey] : execution.runID
            guard let runID else { return nil }
            return shard.handle(ExecutionKey(namespace: namespace, workflowID: execution.workflowID, runID: runID))
        }
    }

    func handle(_ key: ExecutionKey) -> ExecutionHandle? {
        withShard(of: key.workflowKey) { $0.handle(key) }
    }

    /// Every run, in no particular order.
    func allHandles() -> [ExecutionHandle] {
        shards.flatMap { shard in shard.withLock { Array($0.runs.values) } }
    }
}
