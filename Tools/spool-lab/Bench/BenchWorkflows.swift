#if canImport(Glibc)
import Glibc
#endif
import SpoolPrimitives
import ArgumentParser
import Histogram
import Spool
import SpoolLog
import SpoolToolSupport

/// `spool bench workflows`: workflows of sequential activities run end to end by in-process
/// workers, against the same number of log appends done straight on a `SpoolLog.Log`.
struct BenchWorkflows: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workflows",
        abstract: "End-to-end workflows of K sequential activities run by in-process workers, against the log alone.",
        discussion: """
            Each run opens a fresh engine, starts W SpoolWorkers on one task queue, and has --clients \
            client tasks start the N workflows (each client starts one, waits for its close event, then \
            starts the next). A workflow schedules its K activities one after the other and completes. \
            Figures: workflows/s, activities/s, start-to-close latency (start call to close event), \
            history events/s, bytes on disk per workflow (every file of the data directory after \
            close), CPU seconds per workflow (getrusage of the whole process: engine, workers and \
            clients). Baseline, in the same run: the records the engine appended (read back from its \
            log after close, same count and bytes) appended straight to a SpoolLog.Log with the same \
            durability by the same number of concurrent producers — what the storage alone does. \
            The ratio is engine time / baseline time for the same appends. Runs alternate engine and \
            baseline; medians are reported.
            """
    )

    @Option(name: .long, help: "Workflows per run.")
    var workflows = 20_000

    @Option(name: .long, help: "Sequential activities per workflow.")
    var activities = 1

    @Option(name: .long, help: "In-process workers.")
    var workers = 2

    @Option(name: .long, help: "Workflow task and activity slots of each worker.")
    var workerSlots = 256

    @Option(name: .long, help: "Concurrent polls per task queue per worker (SpoolWorker's maxConcurrentWorkflowTaskPollers and maxConcurrentActivityTaskPollers).")
    var pollers = 16

    @Option(name: .long, help: "Log durability: sync (fdatasync before each acknowledgement, shared), interval (10 ms), or none.")
    var durability: DurabilityOption = .sync

    @Option(name: .long, help: "LogConfiguration.concurrentSyncs of the engine's log and the baseline's (default: the engine's default).")
    var concurrentSyncs: Int?

    @Option(name: .long, help: "LogConfiguration.maxGroupCommitDelayMicroseconds of the engine's log and the baseline's (default: the engine's default).")
    var groupCommitDelayUs: Int?

    @Option(name: .long, help: "Workflows in flight at once (client tasks).")
    var clients = 256

    @Option(name: .long, help: "Scratch directory for the runs' data (default: a fresh directory under $TMPDIR or /tmp, removed afterwards).")
    var data: String?

    @Option(name: .long, help: "Runs; the median of each figure is reported.")
    var runs = 3

    @Option(name: .long, help: "Partitions of each task queue (SpoolEngineConfiguration.taskQueuePartitions; default: the engine's, 4).")
    var partitions: Int?

    @Flag(name: .long, inversion: .prefixedNo, help: "Start workflows through a worker (eager workflow start: the start and the first workflow task are one append).")
    var eagerStart = true

    @Flag(name: .long, inversion: .prefixedNo,
          help: "After each engine run, append its records to a bare log (the baseline). --no-baseline leaves only the engine's work in the process, for counting its instructions (Tools/bench/callgrind.py).")
    var baseline = true

    @Flag(name: .long, help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        guard (1...10_000_000).contains(workflows) else { throw ValidationError("--workflows must be between 1 and 10000000 (got \(workflows))") }
        guard (0...1000).contains(activities) else { throw ValidationError("--activities must be between 0 and 1000 (got \(activities))") }
        guard (1...64).contains(workers) else { throw ValidationError("--workers must be between 1 and 64 (got \(workers))") }
        guard (1...256).contains(pollers) else { throw ValidationError("--pollers must be between 1 and 256 (got \(pollers))") }
        guard (1...100_000).contains(workerSlots) else { throw ValidationError("--worker-slots must be between 1 and 100000 (got \(workerSlots))") }
        guard (1...100_000).contains(clients) else { throw ValidationError("--clients must be between 1 and 100000 (got \(clients))") }
        guard (1...99).contains(runs) else { throw ValidationError("--runs must be between 1 and 99 (got \(runs))") }
        if let data, data.isEmpty { throw ValidationError("--data is empty") }
        if let partitions, !(1...64).contains(partitions) { throw ValidationError("--partitions must be between 1 and 64 (got \(partitions))") }
        if let concurrentSyncs, !(1...64).contains(concurrentSyncs) { throw ValidationError("--concurrent-syncs must be between 1 and 64") }
        if let groupCommitDelayUs, !(0...1_000_000).contains(groupCommitDelayUs) {
            throw ValidationError("--group-commit-delay-us must be between 0 and 1000000")
        }
    }

    /// The log settings of both the engine and the baseline: the engine's defaults with the
    /// bench's durability and any group-commit options given.
    private var logConfiguration: LogConfiguration {
        var log = SpoolEngineConfiguration().log
        log.durability = durability.durability
        if let concurrentSyncs { log.concurrentSyncs = concurrentSyncs }
        if let groupCommitDelayUs { log.maxGroupCommitDelayMicroseconds = groupCommitDelayUs }
        return log
    }

    func run() async throws {
        let scratch: String
        if let data {
            try makeDirectory(data)
            scratch = data
        } else {
            scratch = try makeTemporaryDirectory()
        }
        defer { if data == nil { removeTree(scratch) } }
        let load = loadAverage()
        if !json {
            print("spool bench workflows: \(formatCount(Double(workflows))) workflows × \(activities) activit\(activities == 1 ? "y" : "ies"), "
                  + "\(workers) workers × \(workerSlots) slots × \(pollers) pollers, \(clients) clients, durability \(durability.rawValue), "
                  + "\(eagerStart ? "eager" : "queued") start, \(runs) run\(runs == 1 ? "" : "s"); data \(scratch); "
                  + "load average \(load.map { format($0, decimals: 2) }.joined(separator: " "))")
            print(WorkflowRunResult.tableHeader)
        }
        var results: [WorkflowRunResult] = []
        for round in 1...runs {
            let directory = scratch + "/bench-workflows-\(round)"
            removeTree(directory)
            try makeDirectory(directory)
            var result = try await runEngine(directory: directory + "/engine", round: round)
            if baseline { result.baselineSeconds = try await runBaseline(records: result.records, directory: directory + "/baseline") }
            result.records = []
            removeTree(directory)
            results.append(result)
            if !json { print(result.tableRow(label: String(round))) }
        }
        let median = WorkflowRunResult.median(results)
        if json {
            print(JSON.object([
                ("benchmark", .string("workflows")), ("workflows", .integer(workflows)), ("activitiesPerWorkflow", .integer(activities)),
                ("workers", .integer(workers)), ("workerSlots", .integer(workerSlots)), ("pollers", .integer(pollers)), ("clients", .integer(clients)),
                ("durability", .string(durability.rawValue)), ("eagerStart", .bool(eagerStart)),
                ("partitions", .integer(partitions ?? SpoolEngineConfiguration().taskQueuePartitions)),
                ("concurrentSyncs", .integer(logConfiguration.concurrentSyncs)),
                ("groupCommitDelayMicroseconds", .integer(logConfiguration.maxGroupCommitDelayMicroseconds)),
                ("loadAverage", .array(load.map { .number($0) })),
                ("median", median.json), ("runs", .array(results.map(\.json))),
            ]).text)
        } else {
            print(median.tableRow(label: "median"))
            print("")
            print("median: \(formatCount(median.workflowsPerSecond)) workflows/s, \(formatCount(median.activitiesPerSecond)) activities/s; "
                  + (baseline
                     ? "over the median times, the engine took \(format(median.ratio, decimals: 2))× what the log alone took for its "
                       + "\(formatCount(Double(median.appends))) appends (baseline \(formatCount(median.baselineAppendsPerSecond)) appends/s = "
                       + "\(formatCount(median.baselineWorkflowsPerSecond)) workflows/s)"
                     : "no baseline (--no-baseline)"))
        }
    }

    // MARK: Engine

    private func runEngine(directory: String, round: Int) async throws -> WorkflowRunResult {
        var configuration = SpoolEngineConfiguration()
        configuration.log = logConfiguration
        if let partitions { configuration.taskQueuePartitions = partitions }
        let engine: SpoolEngine
        do {
            engine = try SpoolEngine.open(directory: directory, configuration: configuration)
        } catch {
            printError("spool bench workflows: \(explainOpenFailure(error, directory: DataDirectory(directory)))")
            throw ExitCode(2)
        }
        let activityCount = activities
        let pool = (0..<workers).map {
            SpoolWorker(engine: engine, taskQueue: "bench", identity: "bench-worker-\($0)", maxConcurrentWorkflowTasks: workerSlots,
                        maxConcurrentActivities: workerSlots, maxConcurrentWorkflowTaskPollers: pollers,
                        maxConcurrentActivityTaskPollers: pollers)
        }
        for worker in pool {
            worker.registerWorkflow("bench") { context in Self.sequentialActivities(context, count: activityCount) }
            worker.registerActivity("step") { $0.task.input }
        }
        let running = pool.map { worker in Task { await worker.run() } }
        let done = SharedCounter()
        let progress = ProgressBar(title: "run \(round)", total: workflows, unit: "workflows", enabled: !json) { done.value.load(ordering: .relaxed) }

        let total = workflows, clientCount = clients, eager = eagerStart
        // Each client's histogram (about 300 KB of counters), and the one they are merged into
        // (the last), is allocated and its pages touched before the clock starts, then moved out
        // of its slot: zeroing 80 MB for 256 clients is the harness's cost, not the engine's.
        let histograms = LockedValue((0...min(clientCount, total)).map { _ -> Histogram<UInt64>? in
            Histogram<UInt64>(highestTrackableValue: 600_000_000_000, numberOfSignificantValueDigits: .three)
        })
        @Sendable func takeHistogram(_ slot: Int) -> Histogram<UInt64> {
            histograms.withLock { slots in
                let taken = slots[slot]!
                slots[slot] = nil
                return taken
            }
        }
        let cpuBefore = cpuSeconds()
        let started = ContinuousClock.now
        let latency: Histogram<UInt64>
        do {
            latency = try await withThrowingTaskGroup(of: Histogram<UInt64>.self) { group in
                for client in 0..<min(clientCount, total) {
                    group.addTask {
                        var histogram = takeHistogram(client)
                        for index in stride(from: client, to: total, by: clientCount) {
                            let begin = monotonicNanoseconds()
                            let workflowID = "wf-\(index)"
                            let request = StartWorkflowExecutionRequest(workflowID: workflowID, workflowType: "bench", taskQueue: "bench",
                                                                        input: .binary([UInt8(truncatingIfNeeded: index)]))
                            let run = eager ? try await pool[index % pool.count].startWorkflow(request)
                                            : try await engine.startWorkflowExecution(request)
                            let close = try await engine.getWorkflowExecutionHistory(
                                execution: WorkflowExecution(workflowID: workflowID, runID: run.runID), waitNewEvent: true,
                                historyEventFilterType: .closeEvent, timeout: .seconds(120))
                            guard close.history.first?.eventType == .workflowExecutionCompleted else {
                                throw SpoolError(.invalidArgument, "the workflow did not complete within 120 s (close event: "
                                                 + "\(close.history.first.map { "\($0.eventType)" } ?? "none"))", workflowID: "wf-\(index)")
                            }
                            _ = histogram.record(monotonicNanoseconds() - begin)
                            done.value.add(1, ordering: .relaxed)
                        }
                        return histogram
                    }
                }
                var merged = takeHistogram(min(clientCount, total))
                for try await partial in group { merged.add(partial) }
                return merged
            }
        } catch {
            progress.finish()
            for worker in pool { await worker.stop() }
            try? await engine.close()
            printError("spool bench workflows: \(error)")
            throw ExitCode(1)
        }
        let seconds = (ContinuousClock.now - started).seconds
        let cpu = cpuSeconds() - cpuBefore
        progress.finish()
        let completed = engine.listWorkflowExecutions(status: .completed)
        let events = completed.reduce(0) { $0 + Int($1.historyLength) }
        for worker in pool { await worker.stop() }
        for task in running { await task.value }
        try await engine.close()
        guard completed.count == workflows else {
            printError("spool bench workflows: only \(completed.count) of \(workflows) workflows completed in \(directory)")
            throw ExitCode(1)
        }
        // The baseline appends the records the engine appended; without it only their count is needed.
        let history = DataDirectory(directory).history
        let records = baseline ? try readRecords(historyDirectory: history, durability: durability.durability) : []
        let appends = baseline ? records.count : try countRecords(historyDirectory: history)
        return WorkflowRunResult(workflows: workflows, activities: workflows * activities, seconds: seconds, latency: latency,
                                 events: events, bytesOnDisk: treeSize(directory), cpuSeconds: cpu, appends: appends,
                                 records: records)
    }

    /// The bench workflow: `count` activities one after the other, then complete.
    static func sequentialActivities(_ context: WorkflowContext, count: Int) -> [Command] {
        var completed = 0
        for event in context.history {
            if case .activityTaskCompleted = event.attributes { completed += 1 }
        }
        guard completed < count else { return [.completeWorkflowExecution(.init(result: context.input))] }
        return [.scheduleActivityTask(.init(activityID: "step-\(completed)", activityType: "step", taskQueue: "bench",
                                            input: context.input, startToCloseTimeout: .seconds(60)))]
    }

    /// Every record of the closed engine's history log: the appends the engine made, in order.
    /// (The engine does not publish its log statistics, so they are read back.)
    private func readRecords(historyDirectory: String, durability: Durability) throws -> [[UInt8]] {
        let log = try Log.open(directory: historyDirectory, configuration: LogConfiguration(durability: durability))
        defer { try? log.close() }
        var reader = log.reader(from: log.startOffset)
        var records: [[UInt8]] = []
        while let record = try reader.next() { records.append(record.payload) }
        return records
    }

    /// How many records the engine's log holds, without reading them (a fresh log has no gaps).
    private func countRecords(historyDirectory: String) throws -> Int {
        var configuration = LogConfiguration()
        configuration.access = .readOnly
        let log = try Log.open(directory: historyDirectory, configuration: configuration)
        defer { try? log.close() }
        return Int(log.endOffset - log.startOffset)
    }

    // MARK: Baseline

    /// Appends `records` to a fresh log with the same durability from `clients` producers, each
    /// appending its share one at a time (as a workflow's transitions are); returns the seconds taken.
    private func runBaseline(records: [[UInt8]], directory: String) async throws -> Double {
        let log = try Log.open(directory: directory, configuration: logConfiguration)
        let producers = min(clients, max(records.count, 1))
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for producer in 0..<producers {
                group.addTask {
                    for index in stride(from: producer, to: records.count, by: producers) { _ = try await log.append(records[index]) }
                }
            }
            try await group.waitForAll()
        }
        let seconds = (ContinuousClock.now - started).seconds
        try log.close()
        return seconds
    }
}

/// One run of `spool bench workflows`: the engine's figures and its baseline's time.
struct WorkflowRunResult {
    var workflows: Int
    var activities: Int
    var seconds: Double
    var latency: Histogram<UInt64>?
    var p50: Double = 0
    var p99: Double = 0
    var events: Int
    var bytesOnDisk: Int
    var cpuSeconds: Double
    var appends: Int
    var records: [[UInt8]] = []
    /// The log alone's time for the same appends; 0 when the baseline was not run (`--no-baseline`).
    var baselineSeconds: Double = 0

    init(workflows: Int, activities: Int, seconds: Double, latency: Histogram<UInt64>, events: Int, bytesOnDisk: Int,
         cpuSeconds: Double, appends: Int, records: [[UInt8]]) {
        self.workflows = workflows
        self.activities = activities
        self.seconds = seconds
        self.latency = latency
        self.p50 = Double(latency.valueAtPercentile(50)) / 1e6
        self.p99 = Double(latency.valueAtPercentile(99)) / 1e6
        self.events = events
        self.bytesOnDisk = bytesOnDisk
        self.cpuSeconds = cpuSeconds
        self.appends = appends
        self.records = records
    }

    var workflowsPerSecond: Double { Double(workflows) / seconds }
    var activitiesPerSecond: Double { Double(activities) / seconds }
    var eventsPerSecond: Double { Double(events) / seconds }
    var bytesPerWorkflow: Double { Double(bytesOnDisk) / Double(workflows) }
    var cpuMillisecondsPerWorkflow: Double { cpuSeconds * 1000 / Double(workflows) }
    var baselineAppendsPerSecond: Double { Double(appends) / baselineSeconds }
    var baselineWorkflowsPerSecond: Double { Double(workflows) / baselineSeconds }
    /// How many times longer the engine took than the log alone for the same appends.
    var ratio: Double { seconds / baselineSeconds }

    /// Each figure's median over `runs` (not one run's figures).
    static func median(_ runs: [WorkflowRunResult]) -> WorkflowRunResult {
        var result = runs[0]
        result.latency = nil
        result.seconds = spool_lab.median(runs.map(\.seconds))
        result.p50 = spool_lab.median(runs.map(\.p50))
        result.p99 = spool_lab.median(runs.map(\.p99))
        result.events = Int(spool_lab.median(runs.map { Double($0.events) }))
        result.bytesOnDisk = Int(spool_lab.median(runs.map { Double($0.bytesOnDisk) }))
        result.cpuSeconds = spool_lab.median(runs.map(\.cpuSeconds))
        result.appends = Int(spool_lab.median(runs.map { Double($0.appends) }))
        result.baselineSeconds = spool_lab.median(runs.map(\.baselineSeconds))
        return result
    }

    static let tableHeader = [pad("run", 6, right: false), pad("workflows/s", 12), pad("activities/s", 13), pad("p50 ms", 8), pad("p99 ms", 8),
                              pad("events/s", 10), pad("B/wf", 7), pad("CPU ms/wf", 10), pad("appends", 9), pad("log alone/s", 12),
                              pad("engine/log", 11)].joined(separator: " ")

    func tableRow(label: String) -> String {
        [pad(label, 6, right: false), pad(formatCount(workflowsPerSecond), 12), pad(formatCount(activitiesPerSecond), 13),
         pad(format(p50, decimals: 1), 8), pad(format(p99, decimals: 1), 8), pad(formatCount(eventsPerSecond), 10),
         pad(formatCount(bytesPerWorkflow), 7), pad(format(cpuMillisecondsPerWorkflow, decimals: 3), 10),
         pad(formatCount(Double(appends)), 9),
         pad(baselineSeconds > 0 ? formatCount(baselineAppendsPerSecond) : "-", 12),
         pad(baselineSeconds > 0 ? format(ratio, decimals: 2) + "×" : "-", 11)].joined(separator: " ")
    }

    var json: JSON {
        .object([
            ("seconds", .number(seconds)), ("workflowsPerSecond", .number(workflowsPerSecond.rounded())),
            ("activitiesPerSecond", .number(activitiesPerSecond.rounded())),
            ("startToCloseMilliseconds", .object([("p50", .number(p50)), ("p99", .number(p99))])),
            ("events", .integer(events)), ("eventsPerSecond", .number(eventsPerSecond.rounded())),
            ("bytesOnDiskPerWorkflow", .number(bytesPerWorkflow.rounded())),
            ("cpuSecondsPerWorkflow", .number(cpuSeconds / Double(workflows))),
            ("appends", .integer(appends)), ("appendsPerWorkflow", .number(Double(appends) / Double(workflows))),
        ] + (baselineSeconds > 0 ? [
            ("baselineSeconds", .number(baselineSeconds)), ("baselineAppendsPerSecond", .number(baselineAppendsPerSecond.rounded())),
            ("baselineWorkflowsPerSecond", .number(baselineWorkflowsPerSecond.rounded())),
            ("engineTimeToBaselineTime", .number((ratio * 100).rounded() / 100)),
            ("throughputRatioToBaseline", .number((1 / ratio * 1000).rounded() / 1000)),
        ] : []))
    }
}

/// The apparent size of every regular file under `path`.
func treeSize(_ path: String) -> Int {
    var info = stat()
    guard lstat(path, &info) == 0 else { return 0 }
    guard info.st_mode & S_IFMT == S_IFDIR else { return info.st_mode & S_IFMT == S_IFREG ? Int(info.st_size) : 0 }
    guard let directory = opendir(path) else { return 0 }
    defer { closedir(directory) }
    var total = 0
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { total += treeSize(path + "/" + name) }
    }
    return total
}
