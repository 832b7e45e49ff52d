#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import Testing
@testable import Spool

/// A rough throughput probe, off unless `SPOOL_BENCH_WORKFLOWS=<count>` is set (it measures,
/// it asserts nothing about time; real figures come from `spool bench workflows`):
///
///     SPOOL_BENCH_WORKFLOWS=20000 swift test -c release --filter SpoolWorkerThroughputTests
@Suite struct SpoolWorkerThroughputTests {
    static let count = getenv("SPOOL_BENCH_WORKFLOWS").flatMap { Int(String(cString: $0)) }
    /// Start through a worker (eager workflow start) when `SPOOL_BENCH_EAGER_START` is set.
    static let eagerStart = getenv("SPOOL_BENCH_EAGER_START") != nil
    /// Workflows in flight at once (`SPOOL_BENCH_CLIENTS`, default 256).
    static let clients = getenv("SPOOL_BENCH_CLIENTS").flatMap { Int(String(cString: $0)) } ?? 256

    @Test(.enabled(if: count != nil)) func oneActivityWorkflows() async throws {
        let count = Self.count ?? 0
        var template = Array("/tmp/spool-engine-bench-XXXXXX".utf8CString)
        let directory = String(cString: template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!)! })
        defer { removeTree(directory) }
        var configuration = SpoolEngineConfiguration()
        let noSync = getenv("SPOOL_BENCH_NO_SYNC") != nil
        configuration.log = LogConfiguration(durability: noSync ? .none : .sync)
        if let syncs = getenv("SPOOL_BENCH_SYNCS").flatMap({ Int(String(cString: $0)) }) { configuration.log.concurrentSyncs = syncs }
        if let delay = getenv("SPOOL_BENCH_DELAY_US").flatMap({ Int(String(cString: $0)) }) {
            configuration.log.maxGroupCommitDelayMicroseconds = delay
        }
        let engine = try SpoolEngine.open(directory: directory + "/data", configuration: configuration)
        let workers = (0..<2).map {
            SpoolWorker(engine: engine, taskQueue: "bench", identity: "w\($0)", maxConcurrentWorkflowTasks: 256,
                        maxConcurrentActivities: 256)
        }
        for worker in workers {
            worker.registerWorkflow("order", orderWorkflow)
            worker.registerActivity("charge") { $0.task.input }
        }
        let running = workers.map { worker in Task { await worker.run() } }
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            let clients = Self.clients
            for client in 0..<clients {
                group.addTask {
                    for index in stride(from: client, to: count, by: clients) {
                        let request = StartWorkflowExecutionRequest(workflowID: "wf-\(index)", workflowType: "order",
                                                                    taskQueue: "bench", input: [1])
                        let run = Self.eagerStart ? try await workers[index % workers.count].startWorkflow(request)
                                                  : try await engine.startWorkflowExecution(request)
                        _ = try await engine.getWorkflowExecutionHistory(
                            execution: WorkflowExecution(workflowID: "wf-\(index)", runID: run.runID), waitNewEvent: true,
                            historyEventFilterType: .closeEvent)
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let statistics = engine.log.statistics
        print("spool engine: \(count) one-activity workflows, \(Self.clients) in flight, in \(elapsed): \(Int(Double(count) / seconds)) workflows/s, "
              + "\(statistics.recordsWritten) records, \(statistics.fdatasyncs) fdatasyncs, \(statistics.bytesWritten / max(count, 1)) bytes/workflow")
        for worker in workers { await worker.stop() }
        for task in running { await task.value }
        #expect(engine.listWorkflowExecutions(status: .completed).count == count)
        try await engine.close()
    }
}
