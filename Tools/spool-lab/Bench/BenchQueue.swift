#if canImport(Glibc)
import Glibc
#endif
import SpoolPrimitives
import ArgumentParser
import CSQLite
import Histogram
import SpoolQueue
import Synchronization
import SpoolToolSupport

/// `spool bench queue`: durable add → poll → complete through Spool's durable task queues in each
/// durability mode, against the same workload on SQLite stored the way Temporal's SQL persistence
/// stores tasks, in the same run.
struct BenchQueue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue",
        abstract: "Durable task queue add → poll → complete: Spool in each durability mode against SQLite (Temporal's tasks table).",
        discussion: """
        P producers add N tasks of --payload-bytes each, one at a time, each waiting until its task is
        durable; C pollers poll them and complete them. Throughput counts a task once it is completed;
        latency is the time an add takes to return (durable).

        The baseline is SQLite in WAL mode with Temporal's `tasks` table (primary key range_hash,
        task_queue_id, task_id; a data blob): an INSERT per task, a SELECT of a batch past the read
        level per poll, a range DELETE per completed batch. synchronous=FULL is compared with Spool's
        `sync`, synchronous=NORMAL with `interval`; each with one task per transaction and with
        --sqlite-batch tasks per transaction (group commit, like Temporal's task writer). SQLite gets
        one writer connection (it admits one writer at a time) and one reader connection; producers
        and pollers are threads, since SQLite's calls block.

        Spool's side is a TaskStore in the same scratch directory: producers and pollers are tasks,
        each add awaits durability, pollers poll and complete, and a final flush() makes every
        completion durable before the clock stops. For Spool, "txns" counts fdatasyncs and
        "writes/txn" the log records per fdatasync.
        """
    )

    @Option(name: .long, help: "Tasks per run.")
    var tasks = 200_000

    @Option(name: .long, help: "Concurrent producers (threads on the SQLite side).")
    var producers = 128

    @Option(name: .long, help: "Concurrent pollers (threads on the SQLite side).")
    var pollers = 8

    @Option(name: .long, help: "Spool durability modes, comma-separated: sync (against SQLite FULL), interval (against SQLite NORMAL).")
    var modes = "sync,interval"

    @Option(name: .long, help: "Interval of the 'interval' mode, in milliseconds.")
    var intervalMs = 10

    @Option(name: .long, help: "Bytes per task payload.")
    var payloadBytes = 256

    @Option(name: .long, help: "Runs of each variant; the median is reported.")
    var runs = 1

    @Option(name: .long, help: "Tasks per SQLite transaction in the batched variant.")
    var sqliteBatch = 100

    @Option(name: .long, help: "Tasks a poller takes per SQLite SELECT (and deletes per range DELETE).")
    var pollBatch = 100

    @Option(name: .long, help: "Stop adding after this many seconds in a variant (the slowest SQLite ones); 0 for no limit.")
    var maxSeconds = 120

    @Option(name: .long, help: "LogConfiguration.concurrentSyncs of Spool's task log (TaskStoreConfiguration's default).")
    var concurrentSyncs = TaskStoreConfiguration().log.concurrentSyncs

    @Option(name: .long, help: "LogConfiguration.maxGroupCommitDelayMicroseconds of Spool's task log.")
    var groupCommitDelayUs = TaskStoreConfiguration().log.maxGroupCommitDelayMicroseconds

    @Option(name: .long, help: "Implementations to run, comma-separated: spool, sqlite (the comparison needs both).")
    var implementations = "spool,sqlite"

    @Option(name: .long, help: "Directory for scratch data (a fresh subdirectory, removed afterwards); default: a fresh temporary directory.")
    var data: String?

    @Flag(name: .long, help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        guard tasks >= 1 && tasks <= 100_000_000 else { throw ValidationError("--tasks must be between 1 and 100000000 (got \(tasks))") }
        guard (1...10_000).contains(producers) else { throw ValidationError("--producers must be between 1 and 10000 (got \(producers))") }
        guard (1...1_000).contains(pollers) else { throw ValidationError("--pollers must be between 1 and 1000 (got \(pollers))") }
        guard (0...(1 << 20)).contains(payloadBytes) else { throw ValidationError("--payload-bytes must be between 0 and 1048576 (got \(payloadBytes))") }
        guard (1...99).contains(runs) else { throw ValidationError("--runs must be between 1 and 99 (got \(runs))") }
        guard intervalMs >= 1 else { throw ValidationError("--interval-ms must be at least 1 (got \(intervalMs))") }
        guard (1...100_000).contains(sqliteBatch) else { throw ValidationError("--sqlite-batch must be between 1 and 100000 (got \(sqliteBatch))") }
        guard (1...100_000).contains(pollBatch) else { throw ValidationError("--poll-batch must be between 1 and 100000 (got \(pollBatch))") }
        guard maxSeconds >= 0 else { throw ValidationError("--max-seconds must not be negative (got \(maxSeconds))") }
        guard (1...64).contains(concurrentSyncs) else { throw ValidationError("--concurrent-syncs must be between 1 and 64 (got \(concurrentSyncs))") }
        guard groupCommitDelayUs >= 0 else { throw ValidationError("--group-commit-delay-us must not be negative (got \(groupCommitDelayUs))") }
        let list = implementationList
        guard !list.isEmpty else { throw ValidationError("--implementations: name at least one of spool, sqlite") }
        for name in list where name != "spool" && name != "sqlite" {
            throw ValidationError("--implementations: unknown '\(name)'; choose from spool, sqlite")
        }
        _ = try parsedModes()
    }

    func parsedModes() throws -> [String] {
        let known = ["sync", "interval"]
        let values = modes.split(separator: ",").map(String.init)
        guard !values.isEmpty else { throw ValidationError("--modes is empty; choose from \(known.joined(separator: ", "))") }
        for value in values where !known.contains(value) {
            throw ValidationError("--modes: unknown mode '\(value)'; choose from \(known.joined(separator: ", "))")
        }
        return values
    }

    var implementationList: [String] { implementations.split(separator: ",").map(String.init) }

    func run() async throws {
        let modeList = try parsedModes()
        let spoolRuns = implementationList.contains("spool")
        let sqliteRuns = implementationList.contains("sqlite")
        let scratch = try makeScratchDirectory()
        defer { removeTree(scratch) }
        let payloads = makePayloads()

        var results: [QueueRunResult] = []
        if !json {
            print("spool bench queue: \(formatCount(Double(tasks))) tasks × \(payloadBytes) B, \(producers) producers × \(pollers) pollers, "
                  + "SQLite \(String(cString: sqlite3_libversion())), scratch \(scratch), \(runs) run(s) each")
            print(QueueRunResult.tableHeader)
        }
        for round in 0..<runs {
            for mode in modeList {
                let directory = scratch + "/\(mode)-\(round)"
                if spoolRuns {
                    let result = try await runSpoolQueue(durability: mode, round: round, payloads: payloads, directory: directory)
                    results.append(result)
                    if !json { print(result.tableRow) }
                    removeTree(directory)
                }
                let synchronous: SQLiteSynchronous = mode == "sync" ? .full : .normal
                for perTransaction in sqliteRuns ? [1, sqliteBatch] : [] {
                    let result = try await runSQLite(synchronous: synchronous, comparedWith: mode, tasksPerTransaction: perTransaction,
                                                     round: round, payloads: payloads, directory: directory)
                    results.append(result)
                    if !json { print(result.tableRow) }
                    removeTree(directory)
                }
            }
        }

        let medians = Dictionary(grouping: results, by: \.label).values.map { medianRun($0, by: \.tasksPerSecond)! }.sorted { ($0.comparedWith, $0.label) < ($1.comparedWith, $1.label) }
        let comparisons = comparisonLines(medians)
        if json {
            print(JSON.object([
                ("benchmark", .string("queue")), ("tasks", .integer(tasks)), ("producers", .integer(producers)),
                ("pollers", .integer(pollers)), ("payloadBytes", .integer(payloadBytes)), ("sqliteBatch", .integer(sqliteBatch)),
                ("pollBatch", .integer(pollBatch)), ("sqliteVersion", .string(String(cString: sqlite3_libversion()))),
                ("runs", .array(results.map(\.json))),
                ("medians", .array(medians.map(\.json))),
                ("comparisons", .array(comparisons.map { .string($0) })),
            ]).text)
        } else {
            print("")
            if runs > 1 {
                print("median of \(runs) runs:")
                for result in medians { print(result.tableRow) }
            }
            for line in comparisons { print(line) }
            for result in medians { if let stages = result.stages { print("\(result.label): \(stages.text(what: "add"))") } }
        }
    }

    /// "spool sync: 12.3× SQLite FULL × 1/txn" lines, for the variants that both ran.
    private func comparisonLines(_ medians: [QueueRunResult]) -> [String] {
        var lines: [String] = []
        for spool in medians where spool.implementation == "spool" {
            for sqlite in medians where sqlite.implementation == "sqlite" && sqlite.comparedWith == spool.comparedWith {
                lines.append("\(spool.label): \(format(spool.tasksPerSecond / sqlite.tasksPerSecond, decimals: 2))× the tasks/s of \(sqlite.label)")
            }
        }
        return lines
    }

    private func makeScratchDirectory() throws -> String {
        let parent: String
        if let data {
            try makeDirectory(data)
            parent = data
        } else {
            parent = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        }
        var template = Array((parent + "/spool-bench-queue-XXXXXX").utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            let reason = strerror(errno).map { String(cString: $0) } ?? "errno \(errno)"
            throw ValidationError("cannot create a scratch directory in \(parent): \(reason)")
        }
        return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func makePayloads() -> [[UInt8]] {
        // A pool of distinct incompressible payloads, reused round-robin.
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        return (0..<1024).map { _ in
            (0..<payloadBytes).map { _ in
                state ^= state << 13; state ^= state >> 7; state ^= state << 17
                return UInt8(truncatingIfNeeded: state)
            }
        }
    }

    // MARK: SQLite

    func runSQLite(synchronous: SQLiteSynchronous, comparedWith mode: String, tasksPerTransaction: Int, round: Int,
                   payloads: [[UInt8]], directory: String) async throws -> QueueRunResult {
        try makeDirectory(directory)
        let store = try SQLiteTaskQueue(directory: directory, queue: "bench", synchronous: synchronous,
                                        writesPerTransaction: tasksPerTransaction)
        let label = "sqlite \(synchronous.rawValue) × \(tasksPerTransaction == 1 ? "1/txn" : "\(tasksPerTransaction)/txn")"
        let added = SharedCounter()
        let completed = SharedCounter()
        let producersLeft = SharedCounter()
        producersLeft.value.store(producers, ordering: .relaxed)
        let failure = LockedValue<(any Error)?>(nil)
        let latencies = LockedValue<[[UInt64]]>([])
        let total = tasks
        let producers = self.producers
        let pollers = self.pollers
        let pollBatch = self.pollBatch
        let payloadBytes = self.payloadBytes
        let deadline: UInt64? = maxSeconds > 0 ? monotonicNanoseconds() + UInt64(maxSeconds) * 1_000_000_000 : nil
        let progress = ProgressBar(title: "\(label) #\(round + 1)", total: total, unit: "tasks", enabled: !json) {
            completed.value.load(ordering: .relaxed)
        }
        defer { progress.finish() }

        let cpuBefore = cpuSeconds()
        let started = monotonicNanoseconds()
        await runOnThreads(producers + pollers) { index in
            if index < producers {
                let share = total / producers + (index < total % producers ? 1 : 0)
                var samples: [UInt64] = []
                samples.reserveCapacity(share)
                for i in 0..<share {
                    let start = monotonicNanoseconds()
                    if let deadline, start > deadline { break }
                    do {
                        _ = try store.add(payloads[(index &* 7919 &+ i) % payloads.count])
                    } catch {
                        failure.withLock { $0 = $0 ?? error }
                        break
                    }
                    samples.append(monotonicNanoseconds() - start)
                    added.value.add(1, ordering: .relaxed)
                }
                latencies.withLock { $0.append(samples) }
                // The last producer lets pollers finish once they have drained what was added.
                if producersLeft.value.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { store.close() }
            } else {
                do {
                    while true {
                        let batch = try store.pollBatch(limit: pollBatch)
                        guard let first = batch.first, let last = batch.last else { break }
                        for task in batch where task.data.count != payloadBytes {
                            throw BenchQueueError("task \(task.id) came back with \(task.data.count) bytes instead of \(payloadBytes)")
                        }
                        try store.complete(first: first.id, last: last.id)
                        completed.value.add(batch.count, ordering: .relaxed)
                    }
                } catch {
                    failure.withLock { $0 = $0 ?? error }
                    store.close()
                }
            }
        }
        let seconds = Double(monotonicNanoseconds() - started) / 1e9
        let cpu = cpuSeconds() - cpuBefore
        if let error = failure.withLock({ $0 }) { throw error }
        let addedCount = added.value.load(ordering: .relaxed)
        let completedCount = completed.value.load(ordering: .relaxed)
        let left = try store.remainingTasks()
        guard completedCount == addedCount, left == 0 else {
            throw BenchQueueError("\(label): \(addedCount) tasks added but \(completedCount) completed and \(left) left in the table")
        }
        let latency = latencyHistogram(latencies.withLock { $0 })
        return QueueRunResult(implementation: "sqlite", label: label, comparedWith: mode, round: round, producers: producers,
                              pollers: pollers, requestedTasks: total, tasks: completedCount, seconds: seconds, cpuSeconds: cpu,
                              transactions: store.transactions, writes: store.writes, latency: latency)
    }
}

struct BenchQueueError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

struct QueueRunResult {
    var implementation: String
    var label: String
    /// The Spool durability mode this variant is compared with (for SQLite) or runs in (for Spool).
    var comparedWith: String
    var round: Int
    var producers: Int
    var pollers: Int
    var requestedTasks: Int
    /// Tasks added, polled and completed (fewer than requested when --max-seconds cut the run short).
    var tasks: Int
    var seconds: Double
    /// The process's CPU time (user and system) during the run.
    var cpuSeconds: Double
    /// Write transactions (SQLite) or 0.
    var transactions: Int
    /// Writes (SQLite: inserts and range deletes) in those transactions.
    var writes: Int
    var latency: Histogram<UInt64>
    /// Spool `sync`: where the mean add's time went (its log append's stages; the add's own work
    /// counts in "to write it and resume the caller").
    var stages: SyncStages? = nil

    var tasksPerSecond: Double { seconds > 0 ? Double(tasks) / seconds : 0 }
    /// CPU per completed task: less at the mercy of this shared machine's bursts than tasks/s.
    var cpuMicrosecondsPerTask: Double { tasks > 0 ? cpuSeconds / Double(tasks) * 1e6 : 0 }
    var truncated: Bool { tasks < requestedTasks }
    func micros(_ percentile: Double) -> Double { Double(latency.valueAtPercentile(percentile)) / 1000 }

    static let labelWidth = 24
    static let tableHeader = [pad("variant", labelWidth, right: false), pad("vs", 9), pad("run", 4), pad("tasks", 9), pad("tasks/s", 10),
                              pad("add p50 µs", 11), pad("add p99 µs", 11), pad("txns", 9), pad("writes/txn", 10),
                              pad("CPU µs/task", 11)].joined(separator: " ")

    var tableRow: String {
        [pad(label, Self.labelWidth, right: false), pad(comparedWith, 9), pad(String(round + 1), 4),
         pad(formatCount(Double(tasks)) + (truncated ? "*" : ""), 9), pad(formatCount(tasksPerSecond), 10),
         pad(formatCount(micros(50)), 11), pad(formatCount(micros(99)), 11),
         pad(transactions > 0 ? formatCount(Double(transactions)) : "-", 9),
         pad(transactions > 0 ? format(Double(writes) / Double(transactions), decimals: 1) : "-", 10),
         pad(format(cpuMicrosecondsPerTask, decimals: 1), 11)].joined(separator: " ")
    }

    var json: JSON {
        .object([
            ("implementation", .string(implementation)), ("variant", .string(label)), ("comparedWith", .string(comparedWith)),
            ("run", .integer(round + 1)), ("producers", .integer(producers)), ("pollers", .integer(pollers)),
            ("tasks", .integer(tasks)), ("truncated", .bool(truncated)), ("seconds", .number(seconds)),
            ("tasksPerSecond", .number(tasksPerSecond.rounded())), ("transactions", .integer(transactions)),
            ("writesPerTransaction", .number(transactions > 0 ? (Double(writes) / Double(transactions) * 10).rounded() / 10 : 0)),
            ("addLatencyMicroseconds", .object([("p50", .number(micros(50))), ("p99", .number(micros(99))), ("p99.9", .number(micros(99.9)))])),
            ("cpuMicrosecondsPerTask", .number((cpuMicrosecondsPerTask * 10).rounded() / 10)),
        ] + (stages.map { [("stagesMicroseconds", $0.json)] } ?? []))
    }
}

/// Runs `body(0)` … `body(count − 1)` on `count` new threads (SQLite's calls block a thread, which
/// must not be one of the few threads of Swift's cooperative pool) and returns when all are done.
func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        let remaining = SharedCounter()
        remaining.value.store(count, ordering: .relaxed)
        let finished = ThreadWork(index: -1) { _ in continuation.resume() }
        for index in 0..<count {
            let work = ThreadWork(index: index) { index in
                body(index)
                if remaining.value.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { finished.body(-1) }
            }
            var thread = pthread_t()
            let context = Unmanaged.passRetained(work).toOpaque()
            let code = pthread_create(&thread, nil, { context in
                let work = Unmanaged<ThreadWork>.fromOpaque(context!).takeRetainedValue()
                work.body(work.index)
                return nil
            }, context)
            precondition(code == 0, "pthread_create failed with \(code)")
            pthread_detach(thread)
        }
    }
}

/// What one thread of ``runOnThreads(_:_:)`` runs.
final class ThreadWork: Sendable {
    let index: Int
    let body: @Sendable (Int) -> Void
    init(index: Int, body: @escaping @Sendable (Int) -> Void) {
        self.index = index
        self.body = body
    }
}
