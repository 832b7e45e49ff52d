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
    }

    private let shards: [Locked<Shard>]

    init(shardCount: Int = 64) {
        shards = (0..<shardCount).map { _ in Locked(Shard()) }
    }

    private func shard(_ key: WorkflowKey) -> Locked<Shard> {
        var hasher = Hasher()
        hasher.combine(key)
        return shards[Int(UInt(bitPattern: hasher.finalize()) % UInt(shards.count))]
    }

    /// Runs `body` with the shard that holds `key`'s runs locked. `body` must not suspend.
    func withShard<Result, E: Error>(of key: WorkflowKey, _ body: (inout Shard) throws(E) -> sending Result) throws(E) -> sending Result {
        try shard(key).withLock(body)
    }

    /// The run `execution` names in `namespace` (its current run when the run id is empty).
    func handle(namespace: String, execution: WorkflowExecution) -> ExecutionHandle? {
        let workflowKey = WorkflowKey(namespace: namespace, workflowID: execution.workflowID)
        return withShard(of: workflowKey) { shard -> ExecutionHandle? in
            let runID = execution.runID.isEmpty ? shard.currentRuns[workflowKey] : execution.runID
            guard let runID else { return nil }
            return shard.runs[ExecutionKey(namespace: namespace, workflowID: execution.workflowID, runID: runID)]
        }
    }

    func handle(_ key: ExecutionKey) -> ExecutionHandle? {
        withShard(of: key.workflowKey) { $0.runs[key] }
    }

    /// Every run, in no particular order.
    func allHandles() -> [ExecutionHandle] {
        shards.flatMap { shard in shard.withLock { Array($0.runs.values) } }
    }
}
