#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import SpoolLog
import SpoolMatching
import SpoolQueue

/// `spool task probe` (hidden): a quick throughput sanity check of the durable task queues —
/// P producers `add` 256-byte incompressible tasks, C pollers `poll` + `complete` them. Not a
/// benchmark (no baseline, one run): `spool bench queue` is; this exists so that the API's
/// speed can be checked while that is being built. Release builds only.
struct TaskProbe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "probe", abstract: "Throughput sanity check (hidden).", shouldDisplay: false)

    @Option(help: "Tasks to add, poll and complete.") var tasks = 1_000_000
    @Option(help: "Concurrent producers.") var producers = 128
    @Option(help: "Concurrent pollers.") var pollers = 8
    @Option(help: "sync, interval or none.") var durability: DurabilityOption = .sync
    @Option(help: "Scratch directory (removed first and afterwards).") var dir = "./spool-probe"
    @Option(help: "Memory budget for queued payloads, MiB.") var budgetMb = 64

    func run() async throws {
        removeTree(dir)
        mkdir(dir, 0o700)
        defer { removeTree(dir) }
        var configuration = TaskStoreConfiguration(durability: durability.durability)
        configuration.memoryBudgetBytes = budgetMb << 20
        let store = try TaskStore.open(directory: dir + "/tasks", configuration: configuration)
        let queue = try store.queue("probe", kind: .activity)
        // Payloads are slices of a random pool, so that LZ4 cannot shrink the log.
        var generator = SystemRandomNumberGenerator()
        let poolBytes = 16 << 20
        var pool = [UInt8](repeating: 0, count: poolBytes)
        for i in stride(from: 0, to: poolBytes, by: 8) {
            withUnsafeBytes(of: generator.next()) { pool.replaceSubrange(i..<i + 8, with: $0) }
        }
        let payloads = pool  // immutable copy for the producers
        let perProducer = tasks / producers
        let total = perProducer * producers
        let completed = SharedCounter()
        let start = monotonicNanoseconds()
        await withTaskGroup(of: Void.self) { group in
            for producer in 0..<producers {
                group.addTask {
                    for i in 0..<perProducer {
                        let at = ((producer &* 7919 &+ i) % (poolBytes / 256)) * 256
                        _ = try! await queue.add(Array(payloads[at..<at + 256]))
                    }
                }
            }
            for _ in 0..<pollers {
                group.addTask {
                    while completed.value.load(ordering: .relaxed) < total {
                        guard let task = try! await queue.poll(timeout: .milliseconds(200)) else { continue }
                        try! store.complete(task.id)
                        completed.value.add(1, ordering: .relaxed)
                    }
                }
            }
        }
        let elapsed = Double(monotonicNanoseconds() - start) / 1e9
        let statistics = store.logStatistics
        print("\(total) tasks added (\(durability.rawValue)), polled and completed in \(format(elapsed, decimals: 2)) s: "
              + "\(formatCount(Double(total) / elapsed)) tasks/s; \(producers) producers, \(pollers) pollers; "
              + "\(statistics.fdatasyncs) fdatasyncs, \(statistics.recordsWritten) records")
        try await store.close()
    }
}
