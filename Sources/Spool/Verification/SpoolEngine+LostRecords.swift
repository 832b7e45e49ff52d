import SpoolLog

extension SpoolEngine {
    /// The runs whose history lost records when a repair (`spool recover --mode truncate|salvage`)
    /// removed the log offsets in `lost`, as far as a stopped engine's data directory tells: the
    /// runs the checkpoint names with a record in `lost`, and the runs whose history, read again
    /// after the repair, breaks an invariant (a gap in event ids, a run with no start) — which
    /// covers records after the checkpoint's replay-from. Sorted by workflow id, then run id.
    ///
    /// The engine's checkpoint is not changed by a repair of the log, so this can run before or
    /// after it; the invariant check reads the log as it is.
    ///
    /// - Parameters:
    ///   - directory: the engine's data directory.
    ///   - lost: offset ranges removed (a range with no upper bound: `firstPossible..<UInt64.max`).
    /// - Throws: as ``verifyHistory(directory:)``.
    public static func runsAffected(directory: String, lost: [Range<UInt64>]) throws(SpoolError) -> [WorkflowExecution] {
        guard !lost.isEmpty else { return [] }
        var affected: Set<ExecutionKey> = []
        // Every run the checkpoint names, those of its closed-run table too.
        if let checkpoint = try CheckpointStore(directory: directory, syscalls: LogConfiguration().syscalls).readCheckpointWithEveryRun() {
            for run in checkpoint.runs where run.recordOffsets.contains(where: { offset in lost.contains { $0.contains(offset) } }) {
                affected.insert(run.state.key)
            }
        }
        let verification = try verifyHistory(directory: directory)
        for finding in verification.findings where finding.kind != .checkpointStateMismatch && finding.kind != .checkpointUnreadable {
            if let execution = finding.execution {
                affected.insert(ExecutionKey(namespace: finding.namespace ?? "", workflowID: execution.workflowID, runID: execution.runID))
            }
        }
        return affected.sorted { ($0.workflowID, $0.runID) < ($1.workflowID, $1.runID) }.map(\.execution)
    }
}
