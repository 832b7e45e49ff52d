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

    /// The shard of `key`'s workflow id, picked by FNV-1a over its bytes: every call that names a
    /// run picks one (about twelve a workflow), and `Hasher`'s SipHash cost ~250 instructions
    /// each. The choice needs no seed: ids made to land in one shard only share its lock, and
    /// inside the shard the dictionaries hash with Swift's seeded hasher.
    func shard(_ key: WorkflowKey) -> LockedValue<Shard> {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func add(_ text: String) {
            // Through the contiguous bytes of a native string: iterating `utf8` cost ~20
            // instructions a byte. The step is written out in both loops: a nested helper that
            // captures `hash` made every call check exclusive access at run time (~8k
            // instructions a workflow, callgrind).
            let done: Void? = text.utf8.withContiguousStorageIfAvailable { bytes in
                for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
            }
            if done == nil {
                for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
            }
            hash = (hash ^ 0xFF) &* 0x0000_0100_0000_01b3     // a byte no UTF-8 text has, between the two
        }
        add(key.workflowID)
        add(key.namespace)
        // The high bits (a product's low bits depend only on the factors' low bits, so FNV's low
        // bits see only each byte's low bits): the shard is ⌊hash × count / 2⁶⁴⌋.
        return shards[Int(hash.multipliedFullWidth(by: UInt64(shards.count)).high)]
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
