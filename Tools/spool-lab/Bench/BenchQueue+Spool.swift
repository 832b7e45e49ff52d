#if canImport(Glibc)
import Glibc
#endif
import SpoolPrimitives
import SpoolLog
import SpoolQueue
import SpoolToolSupport

extension BenchQueue {
    /// The Spool side: the same workload as ``runSQLite(synchronous:comparedWith:tasksPerTransaction:round:payloads:directory:)``
    /// on a ``TaskStore`` in `directory`. Producers are tasks, each `add` awaiting durability;
    /// pollers are tasks that `poll` and `complete`. The run ends when every task is completed and
    /// a final `flush()` has made every completion durable, so both sides end with the same state
    /// on stable storage.
    func runSpoolQueue(durability mode: String, round: Int, payloads: [[UInt8]], directory: String) async throws -> QueueRunResult {
        try makeDirectory(directory)
        let durability: Durability = mode == "sync" ? .sync : .interval(milliseconds: intervalMs)
        var configuration = TaskStoreConfiguration(durability: durability)
        configuration.log.concurrentSyncs = concurrentSyncs
        configuration.log.maxGroupCommitDelayMicroseconds = groupCommitDelayUs
        let store = try TaskStore.open(directory: DataDirectory(directory).taskStore.path, configuration: configuration)
        let queue = try store.queue("bench", kind: .activity)
        let label = "spool \(mode)"
        let total = tasks
        let producers = self.producers
        let payloadBytes = self.payloadBytes
        let deadline: UInt64? = maxSeconds > 0 ? monotonicNanoseconds() + UInt64(maxSeconds) * 1_000_000_000 : nil
        let added = SharedCounter()
        let completed = SharedCounter()
        let producersLeft = SharedCounter()
        producersLeft.value.store(producers, ordering: .relaxed)
        let progress = ProgressBar(title: "\(label) #\(round + 1)", total: total, unit: "tasks", enabled: !json) {
            completed.value.load(ordering: .relaxed)
        }
        defer { progress.finish() }

        let cpuBefore = cpuSeconds()
        let started = monotonicNanoseconds()
        let latencies = try await withThrowingTaskGroup(of: [UInt64]?.self) { group in
            for index in 0..<producers {
                group.addTask {
                    defer { producersLeft.value.subtract(1, ordering: .acquiringAndReleasing) }
                    let share = total / producers + (index < total % producers ? 1 : 0)
                    var latencies: [UInt64] = []
                    latencies.reserveCapacity(share)
                    for i in 0..<share {
                        let start = monotonicNanoseconds()
                        if let deadline, start > deadline { break }
                        _ = try await queue.add(payloads[(index &* 7919 &+ i) % payloads.count])
                        latencies.append(monotonicNanoseconds() - start)
                        added.value.add(1, ordering: .relaxed)
                    }
                    return latencies
                }
            }
            for _ in 0..<pollers {
                group.addTask {
                    // Until every producer is done and everything added has been completed.
                    while producersLeft.value.load(ordering: .acquiring) > 0
                            || completed.value.load(ordering: .relaxed) < added.value.load(ordering: .relaxed) {
                        guard let task = try await queue.poll(timeout: .milliseconds(50)) else { continue }
                        guard task.payload.count == payloadBytes else {
                            throw BenchQueueError("task \(task.id) came back with \(task.payload.count) bytes instead of \(payloadBytes)")
                        }
                        try store.complete(task.id)
                        completed.value.add(1, ordering: .relaxed)
                    }
                    return nil
                }
            }
            var all: [[UInt64]] = []
            for try await partial in group { if let partial { all.append(partial) } }
            return all
        }
        try await store.flush()
        let seconds = Double(monotonicNanoseconds() - started) / 1e9
        let cpu = cpuSeconds() - cpuBefore
        let statistics = store.logStatistics
        try await store.close()
        let addedCount = added.value.load(ordering: .relaxed)
        let completedCount = completed.value.load(ordering: .relaxed)
        guard completedCount == addedCount else {
            throw BenchQueueError("\(label): \(addedCount) tasks added but \(completedCount) completed")
        }
        return QueueRunResult(implementation: "spool", label: label, comparedWith: mode, round: round, producers: producers,
                              pollers: pollers, requestedTasks: total, tasks: completedCount, seconds: seconds, cpuSeconds: cpu,
                              transactions: statistics.fdatasyncs, writes: statistics.recordsWritten, latency: latencyHistogram(latencies),
                              stages: mode == "sync" ? SyncStages(statistics, appendMicros: meanMicroseconds(latencies)) : nil)
    }
}
