#if canImport(Glibc)
import Glibc
#endif
import SpoolPrimitives
import ArgumentParser
import DequeModule
import Histogram
import SpoolMatching
import Synchronization
import SpoolToolSupport

/// `spool bench dispatch`: in-memory sync match through SpoolMatching against a Mutex + Deque
/// dispatcher with the same interface, in the same run.
struct BenchDispatch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dispatch",
        abstract: "In-memory task hand-off: SpoolMatching's lock-free dispatcher against a Mutex + Deque baseline.",
        discussion: """
        P producer tasks add tasks to one queue while C poller tasks poll it, all on Swift's default
        executor, or with --threads each on an OS thread of its own (more runnable threads than
        cores, so that a lock holder can be preempted). Producers stay at most --window tasks ahead of the pollers (flow control, so the
        run measures hand-off rather than the growth of a backlog). The baseline is a dispatcher with
        the same add/poll interface built on Synchronization.Mutex and DequeModule.Deque (tasks and
        waiting pollers' continuations). Runs alternate between the two; the median run of each is
        reported. Figures: tasks/s, the add → poll-return latency of every 8th task, and the
        process's CPU time per task (user + system, harness included): on this shared machine
        throughput moves with other processes' load, CPU per task much less. The time a cache line
        takes to go to another core and back is measured before and after the runs: every
        hand-off between cores pays it, and on a shared VM it changes with the host's placement of
        the vCPUs (here between about 100 and 500 ns), and the ratio between the two
        implementations with it.
        """
    )

    @Option(name: .long, help: "Tasks handed over per run.")
    var tasks = 4_000_000

    @Option(name: .long, help: "Producer tasks.")
    var producers = 2

    @Option(name: .long, help: "Poller tasks.")
    var pollers = 2

    @Option(name: .long, help: "Runs of each implementation (alternating); the median is reported.")
    var runs = 3

    @Option(name: .long, help: "How far producers may run ahead of pollers, in tasks.")
    var window = 4096

    @Option(name: .long, help: "Partitions of the SpoolMatching queue.")
    var partitions = 1

    @Option(name: .long, help: "Ring capacity of the SpoolMatching priority lanes.")
    var ringCapacity = 8192

    /// The names `--implementations` accepts.
    static let implementationNames = ["spool", "mutex", "ring"]

    @Option(name: .long, help: "Implementations to run, comma-separated: spool, mutex, ring (a bare ring, for reference; see BareRingDispatcher).")
    var implementations = "spool,mutex"

    @Flag(name: .long, help: "Run every producer and poller on an OS thread of its own (a task executor per task) instead of Swift's default executor, so that there are more runnable threads than cores and a lock holder can be preempted.")
    var threads = false

    @Flag(name: .long, help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        guard tasks >= 1_000 else { throw ValidationError("--tasks must be at least 1000 (got \(tasks))") }
        guard (1...1024).contains(producers) else { throw ValidationError("--producers must be between 1 and 1024 (got \(producers))") }
        guard (1...100_000).contains(pollers) else { throw ValidationError("--pollers must be between 1 and 100000 (got \(pollers))") }
        guard (1...99).contains(runs) else { throw ValidationError("--runs must be between 1 and 99 (got \(runs))") }
        guard window >= 1 else { throw ValidationError("--window must be at least 1 (got \(window))") }
        guard (1...64).contains(partitions) else { throw ValidationError("--partitions must be between 1 and 64 (got \(partitions))") }
        for name in implementationList where !Self.implementationNames.contains(name) {
            throw ValidationError("--implementations: unknown '\(name)'; choose from \(Self.implementationNames.joined(separator: ", "))")
        }
    }

    var implementationList: [String] { implementations.split(separator: ",").map(String.init) }

    func run() async throws {
        var results: [DispatchRunResult] = []
        let roundTripBefore = coreRoundTripNanoseconds()
        if !json {
            print("spool bench dispatch: \(formatCount(Double(tasks))) tasks, \(producers) producers × \(pollers) pollers, "
                  + "window \(window), \(partitions) partition(s), \(runs) run(s) each, "
                  + (threads ? "a thread per producer and poller" : "on Swift's default executor"))
            print("core-to-core cache-line round trip: \(Self.roundTripText(roundTripBefore))")
            print(DispatchRunResult.tableHeader)
        }
        for round in 0..<runs {
            for name in implementationList {
                let result: DispatchRunResult
                if name == "spool" {
                    var configuration = DispatcherConfiguration()
                    configuration.partitions = partitions
                    configuration.ringCapacity = ringCapacity
                    let queue = try Dispatcher<UInt64>(configuration: configuration).queue("bench", kind: .activity)
                    result = try await measure(SpoolBenchQueue(queue: queue), name: "spool", round: round)
                } else if name == "ring" {
                    result = try await measure(BareRingDispatcher(capacity: 2 * (window + producers * 64 + pollers)), name: "ring", round: round)
                } else {
                    result = try await measure(MutexDequeDispatcher(), name: "mutex+deque", round: round)
                }
                results.append(result)
                if !json { print(result.tableRow) }
            }
        }
        let roundTripAfter = coreRoundTripNanoseconds()
        let spool = medianRun(results.filter { $0.implementation == "spool" }, by: \.tasksPerSecond)
        let mutex = medianRun(results.filter { $0.implementation == "mutex+deque" }, by: \.tasksPerSecond)
        let ring = medianRun(results.filter { $0.implementation == "ring" }, by: \.tasksPerSecond)
        if json {
            var fields: [(String, JSON)] = [
                ("benchmark", .string("dispatch")), ("tasks", .integer(tasks)), ("producers", .integer(producers)),
                ("pollers", .integer(pollers)), ("window", .integer(window)), ("partitions", .integer(partitions)),
                ("threadPerTask", .bool(threads)),
                ("loadAverage", .array(loadAverage().map { .number($0) })),
                ("coreRoundTripNanoseconds", .array([roundTripBefore, roundTripAfter].map { .number($0.rounded()) })),
                ("runs", .array(results.map(\.json))),
            ]
            if let spool { fields.append(("spool", spool.json)) }
            if let mutex { fields.append(("baseline", mutex.json)) }
            if let ring { fields.append(("bareRing", ring.json)) }
            if let spool, let mutex {
                fields.append(("throughputRatioToBaseline", .number((spool.tasksPerSecond / mutex.tasksPerSecond * 100).rounded() / 100)))
            }
            print(JSON.object(fields).text)
        } else {
            if let ring {
                print("")
                print("median: bare ring \(formatCount(ring.tasksPerSecond)) tasks/s, CPU per task \(format(ring.cpuNanosecondsPerTask, decimals: 0)) ns")
            }
            guard let spool, let mutex else { return }
            print("")
            print("median: spool \(formatCount(spool.tasksPerSecond)) tasks/s, mutex+deque \(formatCount(mutex.tasksPerSecond)) tasks/s: "
                  + "\(format(spool.tasksPerSecond / mutex.tasksPerSecond, decimals: 2))× the baseline; CPU per task "
                  + "\(format(spool.cpuNanosecondsPerTask, decimals: 0)) ns against \(format(mutex.cpuNanosecondsPerTask, decimals: 0)) ns "
                  + "(load average \(loadAverageText()); core-to-core round trip \(Self.roundTripText(roundTripBefore)) before the runs, "
                  + "\(Self.roundTripText(roundTripAfter)) after)")
        }
    }

    static func roundTripText(_ nanoseconds: Double) -> String {
        nanoseconds.isNaN ? "not measured (the probe's two threads did not get two cores at once)" : "\(format(nanoseconds, decimals: 0)) ns"
    }

    /// One run: producers add `tasks` tasks, then one stop marker per poller.
    private func measure<Queue: BenchDispatchQueue>(_ queue: Queue, name: String, round: Int) async throws -> DispatchRunResult {
        let taken = (0..<pollers).map { _ in PaddedCounter() }
        let totalTasks = tasks
        let producers = self.producers
        let pollers = self.pollers
        let window = self.window
        let stopID = UInt64.max
        let progress = ProgressBar(title: "\(name) #\(round + 1)", total: totalTasks, unit: "tasks", enabled: !json) {
            taken.reduce(0) { $0 + $1.value.load(ordering: .relaxed) }
        }
        defer { progress.finish() }
        // With --threads, one executor (OS thread) per poller, then one per producer; started
        // before the clock, joined after it.
        let executors: [ThreadTaskExecutor?] = (0..<(pollers + producers)).map { i in
            threads ? ThreadTaskExecutor(name: i < pollers ? "poller \(i)" : "producer \(i - pollers)") : nil
        }
        defer { for executor in executors { executor?.shutdown() } }
        let cpuBefore = cpuSeconds()
        let started = monotonicNanoseconds()
        let histogram = try await withThrowingTaskGroup(of: Histogram<UInt64>?.self) { group in
            for c in 0..<pollers {
                group.addTask(executorPreference: executors[c]) {
                    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
                    let counter = taken[c]
                    var count = 0
                    while let task = await queue.poll() {
                        if task.id == stopID { break }
                        if task.payload != 0 { _ = histogram.record(monotonicNanoseconds() &- task.payload) }
                        count += 1
                        counter.value.store(count, ordering: .relaxed)
                    }
                    counter.value.store(count, ordering: .relaxed)
                    return histogram
                }
            }
            for p in 0..<producers {
                let share = totalTasks / producers + (p < totalTasks % producers ? 1 : 0)
                group.addTask(executorPreference: executors[pollers + p]) {
                    let base = UInt64(p) << 40
                    var sent = 0
                    while sent < share {
                        // Flow control: stay within `window` tasks of what the pollers have taken.
                        var done = 0
                        for counter in taken { done += counter.value.load(ordering: .relaxed) }
                        let allowed = min(share - sent, (done + window) / producers - sent)
                        if allowed <= 0 {
                            await Task.yield()
                            continue
                        }
                        let batch = min(allowed, 64)
                        for i in 0..<batch {
                            let id = base | UInt64(sent + i)
                            let stamp: UInt64 = (sent + i) & 7 == 0 ? monotonicNanoseconds() : 0
                            try queue.add(QueuedTask(id: id, payload: stamp))
                        }
                        sent += batch
                        await Task.yield()
                    }
                    return nil
                }
            }
            // Stop markers go in once every task is taken, so no poller stops early.
            group.addTask {
                while taken.reduce(0, { $0 + $1.value.load(ordering: .relaxed) }) < totalTasks {
                    try await Task.sleep(for: .microseconds(200))
                }
                for _ in 0..<pollers { try queue.add(QueuedTask(id: stopID, priority: 5, payload: 0)) }
                return nil
            }
            var merged = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
            for try await partial in group { if let partial { merged.add(partial) } }
            return merged
        }
        let elapsed = Double(monotonicNanoseconds() - started) / 1e9
        return DispatchRunResult(implementation: name, round: round, producers: producers, pollers: pollers, tasks: totalTasks,
                                 seconds: elapsed, cpuSeconds: cpuSeconds() - cpuBefore, latency: histogram)
    }
}

/// What both dispatchers offer the bench.
protocol BenchDispatchQueue: Sendable {
    func add(_ task: consuming QueuedTask<UInt64>) throws
    func poll() async -> QueuedTask<UInt64>?
}

struct SpoolBenchQueue: BenchDispatchQueue {
    let queue: TaskQueue<UInt64>
    @inline(__always) func add(_ task: consuming QueuedTask<UInt64>) throws { try queue.add(task) }
    @inline(__always) func poll() async -> QueuedTask<UInt64>? { await queue.poll(until: nil) }
}

/// The baseline: one Synchronization.Mutex over a Deque of tasks and a Deque of waiting pollers.
/// A task that finds a waiting poller is handed to it (sync match); a poll that finds a task
/// returns it without suspending. No priorities, fairness, deadlines or rate limits.
final class MutexDequeDispatcher: BenchDispatchQueue {
    private struct State: ~Copyable {
        var tasks = Deque<QueuedTask<UInt64>>()
        var waiters = Deque<UnsafeContinuation<QueuedTask<UInt64>?, Never>>()
    }

    private let state = Mutex(State())

    func add(_ task: consuming QueuedTask<UInt64>) throws {
        let waiter = state.withLock { state -> UnsafeContinuation<QueuedTask<UInt64>?, Never>? in
            if let waiter = state.waiters.popFirst() { return waiter }
            state.tasks.append(task)
            return nil
        }
        waiter?.resume(returning: task)
    }

    func poll() async -> QueuedTask<UInt64>? {
        if let task = state.withLock({ $0.tasks.popFirst() }) { return task }
        return await withUnsafeContinuation { continuation in
            let task = state.withLock { state -> QueuedTask<UInt64>? in
                if let task = state.tasks.popFirst() { return task }
                state.waiters.append(continuation)
                return nil
            }
            if let task { continuation.resume(returning: task) }
        }
    }
}

/// A counter on its own cache line (pollers publish their progress without sharing one).
final class PaddedCounter: Sendable {
    private let before: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)
    let value = Atomic<Int>(0)
    private let after: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)
}

struct DispatchRunResult {
    var implementation: String
    var round: Int
    var producers: Int
    var pollers: Int
    var tasks: Int
    var seconds: Double
    var cpuSeconds: Double
    var latency: Histogram<UInt64>

    var tasksPerSecond: Double { Double(tasks) / seconds }
    var cpuNanosecondsPerTask: Double { cpuSeconds * 1e9 / Double(tasks) }
    func micros(_ percentile: Double) -> Double { Double(latency.valueAtPercentile(percentile)) / 1000 }

    static let tableHeader = [pad("implementation", 14, right: false), pad("run", 4), pad("producers", 9), pad("pollers", 8),
                              pad("tasks/s", 12), pad("p50 µs", 9), pad("p99 µs", 9), pad("p99.9 µs", 9), pad("cpu ns/task", 11)].joined(separator: " ")

    var tableRow: String {
        [pad(implementation, 14, right: false), pad(String(round + 1), 4), pad(String(producers), 9), pad(String(pollers), 8),
         pad(formatCount(tasksPerSecond), 12), pad(format(micros(50), decimals: 1), 9), pad(format(micros(99), decimals: 1), 9),
         pad(format(micros(99.9), decimals: 1), 9), pad(format(cpuNanosecondsPerTask, decimals: 0), 11)].joined(separator: " ")
    }

    var json: JSON {
        .object([
            ("implementation", .string(implementation)), ("run", .integer(round + 1)), ("producers", .integer(producers)),
            ("pollers", .integer(pollers)), ("tasks", .integer(tasks)), ("seconds", .number(seconds)),
            ("tasksPerSecond", .number(tasksPerSecond.rounded())),
            ("cpuNanosecondsPerTask", .number(cpuNanosecondsPerTask.rounded())),
            ("latencyMicroseconds", .object([("p50", .number(micros(50))), ("p99", .number(micros(99))), ("p99.9", .number(micros(99.9)))])),
        ])
    }
}
