#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Spool
import SpoolLog
import SpoolToolSupport
import Synchronization

/// `spool bench task-queues`: one scenario per "Done when" figure of issue 21 (priorities,
/// fairness, global and per-key rates, rate 0, a worker's own rate, sessions, DescribeTaskQueue),
/// each run through a fresh engine with real time, printing the measured figure next to its
/// target and, where one makes sense, what a plain FIFO queue would have done.
struct BenchTaskQueues: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task-queues",
        abstract: "Priorities, fairness, rate limits, sessions and DescribeTaskQueue measured through the engine, against their targets.",
        discussion: """
            Each scenario opens a fresh engine (durability none: dispatch is measured, not the disk) \
            in a scratch directory. Activity tasks are scheduled by workflows (ScheduleActivityTask \
            commands with Temporal's Priority) and taken with pollActivityTaskQueue, as workers do; \
            times are wall-clock. Scenarios: priorities (5,000 of priority 5 then 5,000 of priority 1 \
            queued with no poller: how many of the first 5,000 taken are priority 1), fairness (keys of \
            weights 1 and 3 with deep backlogs, one poller, shares over 10,000 tasks; a key added later: \
            when its first task goes and its share after), global rate (3 workers, a configured 50/s, \
            per-second counts over 20 s), per-key rate (25/s per key, two keys), rate 0 for 5 s then \
            resumed, per-worker rate (a worker at 20/s against another without a limit: its most in \
            any 1-second window), sessions (10 sessions on a worker limited to 3: the most open at \
            once; a worker killed without shutdown: time until every workflow's failure handler ran), \
            and DescribeTaskQueue against counts kept by the bench. --quick shortens everything \
            (a smoke run; its figures are not the targets').
            """
    )

    @Flag(name: .long, help: "Short durations and small backlogs (a smoke run).")
    var quick = false

    @Option(name: .long, help: "Scratch directory for the engines' data (default: a fresh directory under $TMPDIR or /tmp, removed afterwards).")
    var data: String?

    @Flag(name: .long, help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        if let data, data.isEmpty { throw ValidationError("--data is empty") }
    }

    /// One measured figure of a scenario.
    struct Figure {
        var scenario: String
        var name: String
        var measured: String
        var target: String
        var baseline: String
        /// Whether the measured figure meets the target (nil: informational).
        var met: Bool?
        var values: [(String, JSON)] = []

        var json: JSON {
            .object([("scenario", .string(scenario)), ("figure", .string(name)), ("measured", .string(measured)),
                     ("target", .string(target)), ("baseline", .string(baseline)),
                     ("met", met.map { .bool($0) } ?? .string("n/a")), ("values", .object(values))])
        }
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
            print("spool bench task-queues\(quick ? " --quick" : ""): data \(scratch); load average \(load.map { format($0, decimals: 2) }.joined(separator: " "))")
        }
        var figures: [Figure] = []
        var index = 0
        let scenarios: [(String, (TaskQueueBenchEngine, Sizes) async throws -> [Figure])] = [
            ("priorities", Self.priorities), ("fairness", Self.fairness), ("global rate", Self.globalRate),
            ("per-key rate", Self.perKeyRate), ("per-worker rate", Self.perWorkerRate), ("sessions", Self.sessions),
            ("describe", Self.describe),
        ]
        for (name, scenario) in scenarios {
            index += 1
            let directory = scratch + "/task-queues-\(index)"
            removeTree(directory)
            let engine = try TaskQueueBenchEngine(directory: directory)
            let measured: [Figure]
            do {
                measured = try await scenario(engine, Sizes(quick: quick))
            } catch {
                try? await engine.engine.close()
                printError("spool bench task-queues: scenario '\(name)': \(error)")
                throw ExitCode(1)
            }
            try await engine.engine.close()
            removeTree(directory)
            if !json {
                for figure in measured {
                    let verdict = figure.met.map { $0 ? "met" : "NOT MET" } ?? "—"
                    print("\(pad(figure.scenario, 16)) \(pad(figure.name, 34)) \(pad(figure.measured, 34)) target \(pad(figure.target, 30)) "
                          + "baseline \(pad(figure.baseline, 30)) \(verdict)")
                }
            }
            figures += measured
        }
        if json {
            print(JSON.object([("benchmark", .string("task-queues")), ("quick", .bool(quick)), ("loadAverage", .array(load.map { .number($0) })),
                               ("figures", .array(figures.map(\.json)))]).text)
        } else {
            let unmet = figures.filter { $0.met == false }.count
            print("")
            print("\(figures.count) figures in \(scenarios.count) scenarios; \(unmet == 0 ? "every target met" : "\(unmet) target(s) not met")")
        }
    }

    /// Task counts and durations of a full run or a `--quick` one.
    struct Sizes {
        var quick: Bool
        var priorityTasks: Int { quick ? 500 : 5_000 }
        var fairnessTasks: Int { quick ? 1_000 : 10_000 }
        var rateSeconds: Int { quick ? 2 : 20 }
        var pauseSeconds: Int { quick ? 1 : 5 }
        var workerSeconds: Int { quick ? 2 : 10 }
        var heartbeatTimeout: Duration { quick ? .seconds(1) : .seconds(2) }
    }

    // MARK: Scenarios

    /// 5,000 priority-5 tasks then 5,000 priority-1 tasks, no poller; then one poller takes 5,000.
    static func priorities(_ bench: TaskQueueBenchEngine, _ sizes: Sizes) async throws -> [Figure] {
        let n = sizes.priorityTasks
        try await bench.schedule(queue: "prio", prefix: "p5", count: n, priority: Priority(priorityKey: 5))
        try await bench.schedule(queue: "prio", prefix: "p1", count: n, priority: Priority(priorityKey: 1))
        var first = 0
        for _ in 0..<n {
            guard let task = try await bench.engine.pollActivityTaskQueue(taskQueue: "prio", identity: "poller", timeout: .seconds(5)) else { break }
            if task.activityID.hasPrefix("p1-") { first += 1 }
        }
        return [Figure(scenario: "priorities", name: "priority 1 among the first \(n) taken", measured: "\(first) of \(n)",
                       target: "\(n) of \(n)", baseline: "FIFO: 0 of \(n)", met: first == n,
                       values: [("priority1", .integer(first)), ("taken", .integer(n))])]
    }

    /// Keys A (weight 1) and B (weight 3), deep backlogs (A's scheduled first), one poller taking
    /// tasks one at a time; halfway, key C (weight 1) arrives.
    static func fairness(_ bench: TaskQueueBenchEngine, _ sizes: Sizes) async throws -> [Figure] {
        let n = sizes.fairnessTasks
        try await bench.schedule(queue: "fair", prefix: "A", count: n, priority: Priority(fairnessKey: "A", fairnessWeight: 1))
        try await bench.schedule(queue: "fair", prefix: "B", count: n, priority: Priority(fairnessKey: "B", fairnessWeight: 3))
        var counts: [String: Int] = [:]
        func take(_ count: Int, record: (String, Int) -> Void = { _, _ in }) async throws {
            for position in 0..<count {
                guard let task = try await bench.engine.pollActivityTaskQueue(taskQueue: "fair", identity: "slow-poller", timeout: .seconds(5)) else {
                    throw SpoolError(.invalidArgument, "the fair queue ran dry after \(counts.values.reduce(0, +)) tasks")
                }
                let key = String(task.activityID.prefix(1))
                counts[key, default: 0] += 1
                record(key, position)
            }
        }
        try await take(n / 2)
        try await bench.schedule(queue: "fair", prefix: "C", count: n / 10, priority: Priority(fairnessKey: "C", fairnessWeight: 1))
        var firstC: Int?
        var afterArrival: [String: Int] = [:]
        try await take(n - n / 2) { key, position in
            if key == "C" && firstC == nil { firstC = position + 1 }
            afterArrival[key, default: 0] += 1
        }
        let a = counts["A", default: 0], b = counts["B", default: 0], c = counts["C", default: 0]
        let shareA = Double(a) / Double(max(1, a + b)), shareB = Double(b) / Double(max(1, a + b))
        let afterTotal = afterArrival.values.reduce(0, +)
        let shareC = Double(afterArrival["C", default: 0]) / Double(max(1, afterTotal))
        return [
            Figure(scenario: "fairness", name: "shares of A (w1) / B (w3), \(n) tasks", measured: "\(percent(shareA)) / \(percent(shareB)) (\(a)/\(b))",
                   target: "25% / 75% ± 5% (of each)", baseline: "FIFO: 100% / 0%", met: abs(shareA - 0.25) <= 0.0125 && abs(shareB - 0.75) <= 0.0375,
                   values: [("A", .integer(a)), ("B", .integer(b)), ("C", .integer(c)), ("shareA", .number(shareA)), ("shareB", .number(shareB))]),
            Figure(scenario: "fairness", name: "late key C (w1): its first task", measured: firstC.map { "poll \($0) after it arrived" } ?? "never",
                   target: "within its first stride (≤ 5 polls)", baseline: "FIFO: poll \(2 * n - n / 2 + 1)", met: (firstC ?? .max) <= 5,
                   values: [("firstPoll", .integer(firstC ?? -1))]),
            Figure(scenario: "fairness", name: "late key C (w1): share after arrival", measured: "\(percent(shareC)) of \(afterTotal)",
                   target: "20% (weight 1 of 5)", baseline: "FIFO: 0%", met: abs(shareC - 0.2) <= 0.01,
                   values: [("shareC", .number(shareC))]),
        ]
    }

    /// Three workers polling a queue configured to 50/s; then rate 0 for a while; then 50/s again.
    static func globalRate(_ bench: TaskQueueBenchEngine, _ sizes: Sizes) async throws -> [Figure] {
        let seconds = sizes.rateSeconds
        // What the same three workers take without a limit, for the baseline.
        try await bench.schedule(queue: "free", prefix: "f", count: 2_000, priority: Priority())
        let free = try await bench.drive(queue: "free", workers: 3, seconds: 0.5)
        try await bench.schedule(queue: "rate", prefix: "r", count: 50 * (seconds + sizes.pauseSeconds + 4) + 200, priority: Priority())
        try bench.engine.updateTaskQueueConfig(.init(taskQueue: "rate", kind: .activity, identity: "bench",
                                                     queueRateLimit: .set(requestsPerSecond: 50, reason: "bench")))
        let limited = try await bench.drive(queue: "rate", workers: 3, seconds: Double(seconds))
        let perSecond = limited.perSecond(seconds: seconds)
        let sorted = perSecond.sorted()
        let worst = perSecond.max { abs($0 - 50) < abs($1 - 50) } ?? 0
        var figures = [
            Figure(scenario: "global rate", name: "3 workers at 50/s: per second, \(seconds) s", measured: "median \(sorted[sorted.count / 2]), worst \(worst)",
                   target: "50 ± 5% (47.5…52.5)", baseline: "no limit: \(Int(Double(free.times.count) / 0.5))/s",
                   met: perSecond.allSatisfy { abs(Double($0) - 50) <= 2.5 },
                   values: [("perSecond", .array(perSecond.map { .integer($0) })), ("unlimitedPerSecond", .number(Double(free.times.count) / 0.5))]),
        ]
        try bench.engine.updateTaskQueueConfig(.init(taskQueue: "rate", kind: .activity, identity: "bench",
                                                     queueRateLimit: .set(requestsPerSecond: 0, reason: "bench")))
        let paused = try await bench.drive(queue: "rate", workers: 3, seconds: Double(sizes.pauseSeconds))
        // Resumed: the workers keep polling; the rate applies again.
        let resumedAt = ContinuousClock.now
        let resumeTask = Task {
            try await Task.sleep(for: .milliseconds(100))
            try bench.engine.updateTaskQueueConfig(.init(taskQueue: "rate", kind: .activity, identity: "bench",
                                                         queueRateLimit: .set(requestsPerSecond: 50, reason: "bench")))
        }
        let resumed = try await bench.drive(queue: "rate", workers: 3, seconds: 1.1)
        try await resumeTask.value
        let firstAfter = resumed.times.min().map { ($0 - (resumedAt - resumed.start)).seconds - 0.1 }
        figures.append(Figure(scenario: "global rate", name: "rate 0 for \(sizes.pauseSeconds) s", measured: "\(paused.times.count) dispatched",
                              target: "0", baseline: "rate 50: \(50 * sizes.pauseSeconds)", met: paused.times.isEmpty,
                              values: [("dispatched", .integer(paused.times.count))]))
        figures.append(Figure(scenario: "global rate", name: "resumed at 50/s: first task, first second",
                              measured: "after \(firstAfter.map { format($0 * 1000, decimals: 1) } ?? "—") ms, \(resumed.times.filter { $0 >= .milliseconds(100) && $0 < .milliseconds(1100) }.count) in 1 s",
                              target: "at once, 50 ± 5%", baseline: "—",
                              met: (firstAfter ?? 1) < 0.1 && abs(Double(resumed.times.filter { $0 >= .milliseconds(100) && $0 < .milliseconds(1100) }.count) - 50) <= 2.5,
                              values: [("firstTaskSeconds", .number(firstAfter ?? -1))]))
        return figures
    }

    /// Two fairness keys (weight 1) under a per-key rate of 25/s, three workers, no queue-wide rate.
    static func perKeyRate(_ bench: TaskQueueBenchEngine, _ sizes: Sizes) async throws -> [Figure] {
        let seconds = sizes.rateSeconds
        for key in ["k1", "k2"] {
            try await bench.schedule(queue: "keys", prefix: key, count: 25 * (seconds + 2) + 100, priority: Priority(fairnessKey: key))
        }
        try bench.engine.updateTaskQueueConfig(.init(taskQueue: "keys", kind: .activity, identity: "bench",
                                                     fairnessKeyRateLimit: .set(requestsPerSecond: 25, reason: "bench")))
        let run = try await bench.drive(queue: "keys", workers: 3, seconds: Double(seconds))
        var figures: [Figure] = []
        for key in ["k1", "k2"] {
            let perSecond = run.perSecond(seconds: seconds, key: key)
            let sorted = perSecond.sorted()
            let worst = perSecond.max { abs($0 - 25) < abs($1 - 25) } ?? 0
            figures.append(Figure(scenario: "per-key rate", name: "key \(key) at 25/s: per second, \(seconds) s",
                                  measured: "median \(sorted[sorted.count / 2]), worst \(worst)", target: "25 ± 5% (23.75…26.25)",
                                  baseline: "no key rate: the queue's pace", met: perSecond.allSatisfy { abs(Double($0) - 25) <= 1.25 },
                                  values: [("perSecond", .array(perSecond.map { .integer($0) }))]))
        }
        return figures
    }

    /// A worker limited to 20/s and another without a limit (taking ~50/s: 20 ms of work a task).
    static func perWorkerRate(_ bench: TaskQueueBenchEngine, _ sizes: Sizes) async throws -> [Figure] {
        let seconds = sizes.workerSeconds
        // Ten activities per workflow: the two workers' starts seldom wait for the same run's lock,
        // so a task's started time stays close to when the matcher handed it over.
        try await bench.schedule(queue: "workers", prefix: "w", count: 100 * seconds + 200, priority: Priority(), perWorkflow: 10)
        let start = ContinuousClock.now
        let end = start + .seconds(seconds)
        let engine = bench.engine
        async let limited = Self.pollLoop(engine, queue: "workers", identity: "limited", workerRate: 20, workMilliseconds: 0, until: end, start: start)
        async let other = Self.pollLoop(engine, queue: "workers", identity: "other", workerRate: nil, workMilliseconds: 20, until: end, start: start)
        let limitedTimes = try await limited, otherTimes = try await other
        func worstWindow(_ nanoseconds: [Int64]) -> Int {
            let sorted = nanoseconds.sorted()
            var worst = 0
            var low = 0
            for high in sorted.indices {
                while sorted[high] - sorted[low] >= 1_000_000_000 { low += 1 }
                worst = max(worst, high - low + 1)
            }
            return worst
        }
        // Windows over the engine's ActivityTaskStarted times (when it handed each task over), and
        // over the times the polls returned (which add the return path's jitter).
        let started = worstWindow(limitedTimes.map(\.started))
        let returned = worstWindow(limitedTimes.map(\.returned))
        // The shortest time 21 consecutive tasks spanned (a rate of 20/s needs at least 1 s).
        func shortestSpan(_ nanoseconds: [Int64]) -> Double? {
            let sorted = nanoseconds.sorted()
            guard sorted.count > 20 else { return nil }
            return (20..<sorted.count).map { Double(sorted[$0] - sorted[$0 - 20]) / 1e6 }.min()
        }
        let spanStarted = shortestSpan(limitedTimes.map(\.started)), spanReturned = shortestSpan(limitedTimes.map(\.returned))
        return [Figure(scenario: "per-worker rate", name: "worker at 20/s: most in any 1 s window",
                       measured: "\(started) by started time, \(returned) by poll return (\(limitedTimes.count) in \(seconds) s); "
                           + "21 in a row spanned ≥ \(spanStarted.map { format($0, decimals: 1) } ?? "—") ms started, \(spanReturned.map { format($0, decimals: 1) } ?? "—") ms returned",
                       target: "≤ 20", baseline: "other worker took \(otherTimes.count)", met: started <= 20,
                       values: [("worstWindowStarted", .integer(started)), ("worstWindowReturned", .integer(returned)),
                                ("shortestSpanOf21StartedMs", .number(spanStarted ?? -1)), ("shortestSpanOf21ReturnedMs", .number(spanReturned ?? -1)),
                                ("limited", .integer(limitedTimes.count)), ("other", .integer(otherTimes.count))])]
    }

    static func pollLoop(_ engine: SpoolEngine, queue: String, identity: String, workerRate: Double?, workMilliseconds: Int,
                         until end: ContinuousClock.Instant, start: ContinuousClock.Instant) async throws -> [(started: Int64, returned: Int64)] {
        var times: [(started: Int64, returned: Int64)] = []
        while ContinuousClock.now < end {
            let left = end - ContinuousClock.now
            guard left > .zero else { break }
            if let task = try await engine.pollActivityTaskQueue(taskQueue: queue, identity: identity, timeout: min(left, .milliseconds(200)),
                                                                 workerMaxTasksPerSecond: workerRate) {
                let at = ContinuousClock.now
                if at < end {
                    let returned = (at - start).components
                    times.append((task.startedTime.nanosecondsSinceEpoch, returned.seconds * 1_000_000_000 + returned.attoseconds / 1_000_000_000))
                }
                if workMilliseconds > 0 { try await Task.sleep(for: .milliseconds(workMilliseconds)) }
            }
        }
        return times
    }

    /// 10 sessions on a worker limited to 3; then a worker killed with its sessions open.
    static func sessions(_ bench: TaskQueueBenchEngine, _ sizes: Sizes) async throws -> [Figure] {
        let engine = bench.engine
        let open = Mutex<(now: Int, peak: Int)>((0, 0))
        let worker = SpoolWorker(engine: engine, taskQueue: "sessions", identity: "w1", stickyCacheSize: 0,
                                 sessions: SessionWorkerOptions(maxConcurrentSessions: 3, heartbeatInterval: .milliseconds(100)))
        worker.registerWorkflow("session", SessionBenchWorkflow.definition(steps: 3, heartbeatTimeout: .seconds(20)))
        worker.registerActivity("step") { context in
            let index = Int(String(decoding: context.task.input?.first?.data ?? [], as: UTF8.self)) ?? -1
            if index == 0 { open.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) } }
            try await Task.sleep(for: .milliseconds(30))
            if index == 2 { open.withLock { $0.now -= 1 } }
            return nil
        }
        let running = Task { await worker.run() }
        var runs: [WorkflowExecution] = []
        for index in 0..<10 {
            let response = try await engine.startWorkflowExecution(.init(workflowID: "session-\(index)", workflowType: "session", taskQueue: "sessions"))
            runs.append(WorkflowExecution(workflowID: "session-\(index)", runID: response.runID))
        }
        var done = 0
        for run in runs where try await SessionBenchWorkflow.result(engine, run) == "done" { done += 1 }
        await worker.stop()
        await running.value
        let peak = open.withLock { $0.peak }

        // A worker killed (no shutdown) with three sessions open; a survivor runs the handlers.
        let timeout = sizes.heartbeatTimeout
        let doomed = SpoolWorker(engine: engine, taskQueue: "doomed", identity: "doomed", stickyCacheSize: 0,
                                 sessions: SessionWorkerOptions(maxConcurrentSessions: 3, heartbeatInterval: .milliseconds(100)))
        let survivor = SpoolWorker(engine: engine, taskQueue: "doomed", identity: "survivor", stickyCacheSize: 0)
        let inStep = Atomic<Int>(0)
        let released = Atomic<Bool>(false)
        let handled = Mutex<[ContinuousClock.Instant]>([])
        for w in [doomed, survivor] { w.registerWorkflow("session", SessionBenchWorkflow.definition(steps: 2, heartbeatTimeout: timeout)) }
        doomed.registerActivity("step") { _ in
            inStep.add(1, ordering: .relaxed)
            while !released.load(ordering: .acquiring) { try? await Task.sleep(for: .milliseconds(5)) }
            return nil
        }
        survivor.registerActivity("onSessionFailed") { _ in
            handled.withLock { $0.append(ContinuousClock.now) }
            return nil
        }
        let doomedRun = Task { await doomed.run() }
        var doomedRuns: [WorkflowExecution] = []
        for index in 0..<3 {
            let response = try await engine.startWorkflowExecution(.init(workflowID: "doomed-\(index)", workflowType: "session", taskQueue: "doomed"))
            doomedRuns.append(WorkflowExecution(workflowID: "doomed-\(index)", runID: response.runID))
        }
        let waitStart = ContinuousClock.now
        while inStep.load(ordering: .relaxed) < 3 {
            guard ContinuousClock.now - waitStart < .seconds(30) else { throw SpoolError(.invalidArgument, "the sessions did not open within 30 s") }
            try await Task.sleep(for: .milliseconds(5))
        }
        let survivorRun = Task { await survivor.run() }
        let killedAt = ContinuousClock.now
        doomed.kill()
        var failed = 0
        for run in doomedRuns where try await SessionBenchWorkflow.result(engine, run)?.hasPrefix("failed:") == true { failed += 1 }
        let latest = handled.withLock { $0.max() }.map { ($0 - killedAt).seconds } ?? -1
        released.store(true, ordering: .releasing)
        await survivor.stop()
        await survivorRun.value
        await doomedRun.value
        let limit = timeout.seconds
        return [
            Figure(scenario: "sessions", name: "10 sessions, worker limit 3: most open", measured: "\(peak) (\(done) of 10 completed)",
                   target: "≤ 3", baseline: "no limit: 10", met: peak <= 3 && done == 10,
                   values: [("peakOpen", .integer(peak)), ("completed", .integer(done))]),
            Figure(scenario: "sessions", name: "killed worker: handlers ran after", measured: "\(format(latest, decimals: 2)) s (\(failed) of 3 failed, handled \(handled.withLock { $0.count }))",
                   target: "≤ heartbeat timeout \(format(limit, decimals: 0)) s + 0.5", baseline: "—",
                   met: failed == 3 && latest >= 0 && latest <= limit + 0.5,
                   values: [("secondsToHandler", .number(latest)), ("failed", .integer(failed)), ("heartbeatTimeoutSeconds", .number(limit))]),
        ]
    }

    /// Tasks of three priorities and three pollers, counted by the bench, against DescribeTaskQueue.
    static func describe(_ bench: TaskQueueBenchEngine, _ sizes: Sizes) async throws -> [Figure] {
        let scheduled = [1: 30, 3: 20, 5: 10]
        for (priority, count) in scheduled.sorted(by: { $0.key < $1.key }) {
            try await bench.schedule(queue: "desc", prefix: "p\(priority)", count: count, priority: Priority(priorityKey: priority))
        }
        var backlog = scheduled
        var taken: [String: Int] = [:]
        for (identity, count) in [("d1", 5), ("d2", 7), ("d3", 9)] {
            for _ in 0..<count {
                guard let task = try await bench.engine.pollActivityTaskQueue(taskQueue: "desc", identity: identity, timeout: .seconds(5)) else { break }
                backlog[Int(task.activityID.dropFirst().prefix(1))!, default: 0] -= 1
                taken[identity, default: 0] += 1
            }
        }
        let info = try bench.engine.describeTaskQueue(taskQueue: "desc", kind: .activity)
        let expectedBacklog = (1...5).map { backlog[$0, default: 0] }
        let seenBacklog = info.backlog.map(\.count)
        let seenPollers = Dictionary(uniqueKeysWithValues: info.pollers.map { ($0.identity, $0.dispatched) })
        let matches = seenBacklog == expectedBacklog && seenPollers == taken && info.dispatched == taken.values.reduce(0, +)
            && info.added == scheduled.values.reduce(0, +)
        return [Figure(scenario: "describe", name: "backlog per priority, pollers, counts",
                       measured: "backlog \(seenBacklog), pollers \(seenPollers.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }), added \(info.added), dispatched \(info.dispatched)",
                       target: "backlog \(expectedBacklog), pollers \(taken.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }), added 60, dispatched 21",
                       baseline: "—", met: matches, values: [("matches", .bool(matches))])]
    }
}

private func percent(_ value: Double) -> String { format(value * 100, decimals: 1) + "%" }


/// A fresh engine for one scenario, and the ways the scenarios use it.
struct TaskQueueBenchEngine {
    let engine: SpoolEngine

    init(directory: String) throws {
        var configuration = SpoolEngineConfiguration()
        configuration.log.durability = DurabilityOption.none.durability
        do {
            engine = try SpoolEngine.open(directory: directory, configuration: configuration)
        } catch {
            printError("spool bench task-queues: \(explainOpenFailure(error, directory: DataDirectory(directory)))")
            throw ExitCode(2)
        }
    }

    /// Schedules `count` activities (ids `prefix-N`) on `queue` with `priority`, through
    /// workflows of `perWorkflow` ScheduleActivityTask commands each.
    func schedule(queue: String, prefix: String, count: Int, priority: Priority, perWorkflow: Int = 500) async throws {
        var scheduled = 0
        while scheduled < count {
            let batch = min(perWorkflow, count - scheduled)
            let workflowID = "scheduler-\(queue)-\(prefix)-\(scheduled)"
            _ = try await engine.startWorkflowExecution(.init(workflowID: workflowID, workflowType: "scheduler", taskQueue: "scheduler"))
            guard let task = try await engine.pollWorkflowTaskQueue(taskQueue: "scheduler", identity: "bench", timeout: .seconds(5)) else {
                throw SpoolError(.invalidArgument, "no workflow task for \(workflowID)")
            }
            let commands: [Command] = (scheduled..<(scheduled + batch)).map { index in
                var attributes = ScheduleActivityTaskCommandAttributes(activityID: "\(prefix)-\(index)", activityType: "bench", taskQueue: queue,
                                                                       startToCloseTimeout: .seconds(3600))
                attributes.priority = priority
                return .scheduleActivityTask(attributes)
            }
            try await engine.respondWorkflowTaskCompleted(taskToken: task.taskToken, commands: commands, identity: "bench")
            scheduled += batch
        }
    }

    /// What `workers` concurrent pollers took in `seconds`: the time of each task since the start, and its id.
    struct Run {
        var start: ContinuousClock.Instant
        var times: [Duration]
        var ids: [String]

        /// Tasks per whole second (of ids starting with `key`, if given).
        func perSecond(seconds: Int, key: String? = nil) -> [Int] {
            var counts = Array(repeating: 0, count: seconds)
            for (time, id) in zip(times, ids) where key == nil || id.hasPrefix(key! + "-") {
                let second = Int(time.seconds)
                if second < seconds { counts[second] += 1 }
            }
            return counts
        }
    }

    func drive(queue: String, workers: Int, seconds: Double) async throws -> Run {
        let start = ContinuousClock.now
        let end = start + .milliseconds(Int(seconds * 1000))
        let engine = self.engine
        let results = try await withThrowingTaskGroup(of: [(Duration, String)].self) { group in
            for worker in 0..<workers {
                group.addTask {
                    var taken: [(Duration, String)] = []
                    while true {
                        let left = end - ContinuousClock.now
                        guard left > .zero else { break }
                        if let task = try await engine.pollActivityTaskQueue(taskQueue: queue, identity: "worker-\(worker)",
                                                                             timeout: min(left, .milliseconds(200))) {
                            let at = ContinuousClock.now
                            if at < end { taken.append((at - start, task.activityID)) }
                        }
                    }
                    return taken
                }
            }
            var all: [(Duration, String)] = []
            for try await part in group { all += part }
            return all.sorted { $0.0 < $1.0 }
        }
        return Run(start: start, times: results.map(\.0), ids: results.map(\.1))
    }
}

/// The bench's session workflow: create session "s", run `steps` activities of type "step" in it
/// (input: the step's index), complete the session, then complete the run; when the session
/// fails, run "onSessionFailed" on the run's own queue and complete with "failed: <message>".
enum SessionBenchWorkflow {
    static func definition(steps: Int, heartbeatTimeout: Duration) -> WorkflowDefinition {
        { context in
            let history = context.history
            func scheduled(_ type: String) -> [Int64] {
                history.compactMap { event in
                    guard case .activityTaskScheduled(let a) = event.attributes, a.activityType == type else { return nil }
                    return event.eventID
                }
            }
            func completed(_ ids: [Int64]) -> Int {
                history.filter { event in
                    guard case .activityTaskCompleted(let a) = event.attributes else { return false }
                    return ids.contains(a.scheduledEventID)
                }.count
            }
            switch context.session("s") {
            case .none:
                return [try context.createSession("s", heartbeatTimeout: heartbeatTimeout)]
            case .pending:
                return []
            case .open:
                let stepIDs = scheduled("step")
                if completed(stepIDs) < stepIDs.count { return [] }
                if stepIDs.count < steps {
                    return [try context.scheduleActivity(inSession: "s", .init(activityID: "step-\(stepIDs.count)", activityType: "step",
                                                                               input: .binary("\(stepIDs.count)"), startToCloseTimeout: .seconds(60)))]
                }
                return context.completeSession("s")
            case .completed:
                guard completed(scheduled(Session.creationActivityType)) == 1 else { return [] }
                return [.completeWorkflowExecution(.init(result: .binary("done")))]
            case .failed(let failure):
                let handlers = scheduled("onSessionFailed")
                if handlers.isEmpty {
                    return [.scheduleActivityTask(.init(activityID: "handler", activityType: "onSessionFailed", taskQueue: "",
                                                        input: .binary(failure.message), startToCloseTimeout: .seconds(30)))]
                }
                guard completed(handlers) == 1 else { return [] }
                return [.completeWorkflowExecution(.init(result: .binary("failed: \(failure.message)")))]
            }
        }
    }

    /// The run's result text once it closes (waits up to 120 s), nil if it did not complete.
    static func result(_ engine: SpoolEngine, _ run: WorkflowExecution) async throws -> String? {
        let close = try await engine.getWorkflowExecutionHistory(execution: run, waitNewEvent: true, historyEventFilterType: .closeEvent,
                                                                 timeout: .seconds(120))
        guard case .workflowExecutionCompleted(let completed)? = close.history.first?.attributes else { return nil }
        return completed.result?.first.map { String(decoding: $0.data, as: UTF8.self) }
    }
}
