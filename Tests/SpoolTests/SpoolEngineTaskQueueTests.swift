#if canImport(Glibc)
import Glibc
#endif
import SpoolMatching
import SpoolTestSupport
import Synchronization
import Testing
@testable import Spool

/// Issue 21, points 2–5: throttling (pollers' queue rate, the durable configured rate, a worker's
/// own rate, expired tasks take no token), partitions, pause and resume, and DescribeTaskQueue —
/// all counted from what pollers get, with the engine's manual clock.
@Suite struct SpoolEngineTaskQueueTests {
    /// Starts a run on "q" whose first workflow task schedules `count` activities on `queue`.
    func schedule(_ h: EngineHarness, _ count: Int, queue: String = "acts", workflowID: String = "wf",
                  prefix: String = "a", priority: Priority = Priority(), scheduleToStart: Duration? = nil) async throws {
        _ = try await h.start(workflowID)
        let commands: [Command] = (0..<count).map { index in
            var attributes = ScheduleActivityTaskCommandAttributes(activityID: "\(prefix)\(index)", activityType: "charge", taskQueue: queue,
                                                                   scheduleToStartTimeout: scheduleToStart, startToCloseTimeout: .seconds(3600))
            attributes.priority = priority
            return .scheduleActivityTask(attributes)
        }
        _ = try await h.completeWorkflowTask(commands)
    }

    func poll(_ h: EngineHarness, _ identity: String, queue: String = "acts", rate: Double? = nil,
              workerRate: Double? = nil) async throws -> ActivityTask? {
        try await h.engine.pollActivityTaskQueue(taskQueue: queue, identity: identity, timeout: .zero, maxTasksPerSecond: rate,
                                                 workerMaxTasksPerSecond: workerRate)
    }

    func setRate(_ h: EngineHarness, _ update: UpdateTaskQueueConfigRequest.RateLimitUpdate, queue: String = "acts") throws {
        try h.engine.updateTaskQueueConfig(.init(taskQueue: queue, kind: .activity, identity: "operator", queueRateLimit: update))
    }

    /// Runs `seconds` of simulated time in 5 ms steps; at each step every worker polls until it
    /// gets nothing, each step another worker first. Returns the tasks dispatched in each whole second, and per worker.
    func drive(_ h: EngineHarness, seconds: Int, workers: [String] = ["w1", "w2", "w3"], rate: Double? = nil) async throws -> (perSecond: [Int], perWorker: [String: Int]) {
        var perSecond = Array(repeating: 0, count: seconds)
        var perWorker: [String: Int] = [:]
        for step in 0..<(seconds * 200) {
            // The workers take turns polling first.
            for index in workers.indices {
                let worker = workers[(index + step) % workers.count]
                while try await poll(h, worker, rate: rate) != nil {
                    perSecond[step / 200] += 1
                    perWorker[worker, default: 0] += 1
                }
            }
            h.clock.advance(by: .milliseconds(5))
        }
        return (perSecond, perWorker)
    }

    @Test func theQueueRateComesFromTheLatestPollerAndAConfiguredRateTakesPrecedence() async throws {
        let h = try EngineHarness()
        try await schedule(h, 600)
        // Three workers send 50/s: together they get 50 a second.
        let fifty = try await drive(h, seconds: 3, rate: 50)
        for (second, count) in fifty.perSecond.enumerated() { #expect((49...51).contains(count), "second \(second): \(count)") }
        #expect(fifty.perWorker.count == 3)
        // A later poller sends 100: the latest value wins.
        let hundred = try await drive(h, seconds: 2, rate: 100)
        for count in hundred.perSecond { #expect((99...101).contains(count), "\(hundred.perSecond)") }
        // A configured rate takes precedence over what pollers keep sending.
        try setRate(h, .set(requestsPerSecond: 20, reason: "protect the payment API"))
        let twenty = try await drive(h, seconds: 2, rate: 100)
        for count in twenty.perSecond { #expect((19...21).contains(count), "\(twenty.perSecond)") }
        // Rate 0 dispatches nothing for 5 s; the queue reads as paused.
        try setRate(h, .set(requestsPerSecond: 0, reason: "incident"))
        let zero = try await drive(h, seconds: 5, rate: 100)
        #expect(zero.perSecond == [0, 0, 0, 0, 0])
        #expect(try h.engine.describeTaskQueue(taskQueue: "acts", kind: .activity).isPaused)
        // Removing it: the pollers' 100/s applies again.
        try setRate(h, .unset(reason: "resolved"))
        let resumed = try await drive(h, seconds: 1, rate: 100)
        #expect((99...101).contains(resumed.perSecond[0]), "\(resumed.perSecond)")
        let info = try h.engine.describeTaskQueue(taskQueue: "acts", kind: .activity)
        #expect(info.effectiveRateLimit == 100)
        #expect(info.pollerRateLimit == 100)
        #expect(info.config.queueRateLimit == nil)
    }

    @Test func aConfiguredRateSurvivesReopen() async throws {
        let h = try EngineHarness()
        try await schedule(h, 100)
        try setRate(h, .set(requestsPerSecond: 10, reason: "quota"))
        try await h.crashAndReopen()
        let config = try h.engine.taskQueueConfig(taskQueue: "acts", kind: .activity)
        #expect(config.queueRateLimit?.requestsPerSecond == 10)
        #expect(config.queueRateLimit?.reason == "quota")
        #expect(config.queueRateLimit?.updateIdentity == "operator")
        let counted = try await drive(h, seconds: 2, workers: ["w1"])
        for count in counted.perSecond { #expect((9...11).contains(count), "\(counted.perSecond)") }
        // The workflow queue of the same name is another queue: not limited.
        #expect(try h.engine.taskQueueConfig(taskQueue: "acts", kind: .workflow).isEmpty)
    }

    /// A damaged settings file stops the open with an error naming it; nothing is guessed.
    @Test func aDamagedSettingsFileIsReportedByName() async throws {
        let h = try EngineHarness()
        try h.engine.pauseTaskQueue(taskQueue: "acts", kind: .activity, reason: "r")
        try await h.engine.close()
        let path = h.directory + "/data/task-queues"
        var bytes = readFile(path)
        try #require(bytes.count > 8)
        bytes[bytes.count / 2] ^= 0x40
        let fd = open(path, O_WRONLY | O_TRUNC)
        try #require(fd >= 0)
        bytes.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
        close(fd)
        do {
            h.engine = try EngineHarness.open(h.directory, clock: h.clock, durability: h.durability)
            Issue.record("a damaged task-queues file was accepted")
        } catch {
            #expect((error as? SpoolError)?.code == .corruptRecord)
            #expect("\(error)".contains(path), "\(error)")
        }
    }

    @Test func badSettingsAreRefusedNamingTheField() async throws {
        let h = try EngineHarness()
        for (update, field) in [(UpdateTaskQueueConfigRequest(taskQueue: "q", kind: .activity, queueRateLimit: .set(requestsPerSecond: -1, reason: "")), "queueRateLimit"),
                                (UpdateTaskQueueConfigRequest(taskQueue: "q", kind: .activity, queueRateLimit: .set(requestsPerSecond: .infinity, reason: "")), "queueRateLimit"),
                                (UpdateTaskQueueConfigRequest(taskQueue: "q", kind: .activity, partitions: .some(0)), "partitions"),
                                (UpdateTaskQueueConfigRequest(taskQueue: "q", kind: .activity, partitions: .some(65)), "partitions"),
                                (UpdateTaskQueueConfigRequest(taskQueue: "", kind: .activity), "task queue")] {
            do {
                try h.engine.updateTaskQueueConfig(update)
                Issue.record("\(update) was accepted")
            } catch {
                #expect(error.code == .invalidArgument)
                #expect(error.message.contains(field), "\(error)")
            }
        }
        #expect(h.engine.configuredTaskQueues().isEmpty)
        await #expect(throws: SpoolError.self) { _ = try await poll(h, "w", rate: -5) }
        await #expect(throws: SpoolError.self) { _ = try await poll(h, "w", workerRate: 0) }
    }

    /// A worker limited to 20/s never gets more than 20 in any 1-second window, while another
    /// worker of the queue takes the rest.
    @Test func aWorkersOwnRateIsEnforcedByTheEngine() async throws {
        let h = try EngineHarness()
        try await schedule(h, 500)
        var slowTimes: [Int] = []  // in 5 ms steps
        var fast = 0
        for step in 0..<400 {
            while try await poll(h, "slow", workerRate: 20) != nil { slowTimes.append(step) }
            if step % 2 == 0, try await poll(h, "fast") != nil { fast += 1 }
            h.clock.advance(by: .milliseconds(5))
        }
        #expect((39...41).contains(slowTimes.count), "slow got \(slowTimes.count)")
        #expect(fast == 200)
        for start in 0..<400 {
            let inWindow = slowTimes.filter { $0 >= start && $0 < start + 200 }.count
            #expect(inWindow <= 20, "window from step \(start): \(inWindow)")
        }
        let pollers = try h.engine.describeTaskQueue(taskQueue: "acts", kind: .activity).pollers
        #expect(pollers.map(\.identity) == ["fast", "slow"])
        #expect(pollers.first { $0.identity == "slow" }?.ratePerSecond == 20)
        #expect(pollers.first { $0.identity == "slow" }?.dispatched == slowTimes.count)
        #expect(pollers.first { $0.identity == "fast" }?.dispatched == fast)
    }

    /// Under a rate limit, a task whose schedule-to-start deadline passed is dropped without
    /// taking a token: the next task gets it.
    @Test func anExpiredTaskTakesNoToken() async throws {
        let h = try EngineHarness()
        _ = try await h.start("wf")
        _ = try await h.completeWorkflowTask([
            scheduleActivity("first", queue: "acts"),
            scheduleActivity("expiring", queue: "acts", scheduleToStart: .milliseconds(1500)),
            scheduleActivity("last", queue: "acts"),
        ])
        try setRate(h, .set(requestsPerSecond: 1, reason: "slow"))
        #expect(try await poll(h, "w")?.activityID == "first")
        #expect(try await poll(h, "w") == nil)  // no token until t = 1 s
        h.clock.advance(by: .seconds(2))
        // One token is available: 'expiring' is past its deadline and must not use it.
        #expect(try await poll(h, "w")?.activityID == "last")
        let info = try h.engine.describeTaskQueue(taskQueue: "acts", kind: .activity)
        #expect(info.backlogCount == 0)
    }

    @Test func pauseHoldsPollsKeepsAddsAndIsDurable() async throws {
        let h = try EngineHarness()
        try await schedule(h, 3)
        try h.engine.pauseTaskQueue(taskQueue: "acts", kind: .activity, reason: "deploy", identity: "ops")
        #expect(try await poll(h, "w") == nil)
        // Adds while paused are kept.
        try await schedule(h, 2, workflowID: "wf2", prefix: "b")
        try await h.closeAndReopen()
        let config = try h.engine.taskQueueConfig(taskQueue: "acts", kind: .activity)
        #expect(config.pause?.reason == "deploy")
        #expect(config.pause?.identity == "ops")
        #expect(try await poll(h, "w") == nil)
        var info = try h.engine.describeTaskQueue(taskQueue: "acts", kind: .activity)
        #expect(info.isPaused)
        #expect(info.backlogCount == 5)
        // A poll waiting on the paused queue gets a task as soon as it is resumed.
        let engine = h.engine
        let waiting = Task { try await engine.pollActivityTaskQueue(taskQueue: "acts", identity: "waiter", timeout: .seconds(30)) }
        while try !h.engine.describeTaskQueue(taskQueue: "acts", kind: .activity).pollers.contains(where: { $0.identity == "waiter" }) {
            await Task.yield()
        }
        for _ in 0..<100 { await Task.yield() }
        try h.engine.resumeTaskQueue(taskQueue: "acts", kind: .activity)
        #expect(try await waiting.value != nil)
        try await h.crashAndReopen()
        #expect(try h.engine.taskQueueConfig(taskQueue: "acts", kind: .activity).pause == nil)
        var got = 0
        while try await poll(h, "w") != nil { got += 1 }
        #expect(got == 4)
        info = try h.engine.describeTaskQueue(taskQueue: "acts", kind: .activity)
        #expect(!info.isPaused)
    }

    @Test func queuesHaveFourPartitionsByDefaultAndForwardTasksToIdlePollers() async throws {
        let h = try EngineHarness()
        // Set before first use: applies at once.
        try h.engine.updateTaskQueueConfig(.init(taskQueue: "solo", kind: .activity, partitions: .some(1)))
        try await schedule(h, 40)
        #expect(try h.engine.describeTaskQueue(taskQueue: "acts", kind: .activity).partitions == 4)
        #expect(try h.engine.describeTaskQueue(taskQueue: "solo", kind: .activity).partitions == 1)
        // One poller drains tasks spread over every partition.
        var got = 0
        while try await poll(h, "only") != nil { got += 1 }
        #expect(got == 40)
        // A poller waiting in one partition gets a task added to another.
        let engine = h.engine
        let waiters = (0..<3).map { index in
            Task { try await engine.pollActivityTaskQueue(taskQueue: "acts", identity: "waiter-\(index)", timeout: .seconds(30)) }
        }
        while try h.engine.describeTaskQueue(taskQueue: "acts", kind: .activity).waitingPollers < 3 { await Task.yield() }
        try await schedule(h, 3, workflowID: "wf2", prefix: "late")
        var delivered: [String] = []
        for waiter in waiters { if let task = try await waiter.value { delivered.append(task.activityID) } }
        #expect(delivered.sorted() == ["late0", "late1", "late2"])
        // Changing a used queue's partitions applies at the next open.
        try h.engine.updateTaskQueueConfig(.init(taskQueue: "acts", kind: .activity, partitions: .some(2)))
        #expect(try h.engine.describeTaskQueue(taskQueue: "acts", kind: .activity).partitions == 4)
        try await h.closeAndReopen()
        #expect(try h.engine.describeTaskQueue(taskQueue: "acts", kind: .activity).partitions == 2)
        #expect(try h.engine.taskQueueConfig(taskQueue: "acts", kind: .activity).partitions == 2)
    }

    /// DescribeTaskQueue against what the test counted itself.
    @Test func describeMatchesTheTasksAndPollersCounted() async throws {
        let h = try EngineHarness()
        try await schedule(h, 3, prefix: "urgent", priority: Priority(priorityKey: 1))
        try await schedule(h, 7, workflowID: "wf2", prefix: "normal")
        h.clock.advance(by: .seconds(5))
        var taken: [String: [String]] = [:]
        for (identity, count) in [("w1", 4), ("w2", 1)] {
            for _ in 0..<count {
                let task = try #require(try await poll(h, identity, workerRate: identity == "w1" ? 1000 : nil))
                taken[identity, default: []].append(task.activityID)
                h.clock.advance(by: .milliseconds(1))
            }
        }
        #expect(taken["w1"]?.prefix(3).allSatisfy { $0.hasPrefix("urgent") } == true)
        let info = try h.engine.describeTaskQueue(taskQueue: "acts", kind: .activity)
        #expect(info.backlog.map(\.count) == [0, 0, 5, 0, 0])
        #expect(info.backlogCount == 5)
        #expect(info.backlog[2].oldestAge == .seconds(5) + .milliseconds(5))
        #expect(info.backlog[0].oldestAge == nil)
        #expect(info.added == 10)
        #expect(info.dispatched == 5)
        // 5.005 s since the engine opened.
        #expect(abs(info.addRate - 10 / 5.005) < 0.001)
        #expect(abs(info.dispatchRate - 5 / 5.005) < 0.001)
        #expect(info.pollers.map(\.identity) == ["w1", "w2"])
        #expect(info.pollers.map(\.dispatched) == [4, 1])
        #expect(info.pollers.map(\.ratePerSecond) == [1000, nil])
        let start = Timestamp(nanosecondsSinceEpoch: Int64(EngineHarness.epoch.nanoseconds))
        #expect(info.pollers.map(\.lastAccessTime) == [start.advanced(by: .seconds(5) + .milliseconds(3)),
                                                       start.advanced(by: .seconds(5) + .milliseconds(4))])
        #expect(info.waitingPollers == 0)
        #expect(!info.isPaused)
        #expect(info.effectiveRateLimit == nil)
        #expect(info.pollersVisible)
        #expect(info.partitions == 4)

        // The backlog rebuilt at open keeps its age (counted from when each task was scheduled).
        try await h.crashAndReopen()
        let reopened = try h.engine.describeTaskQueue(taskQueue: "acts", kind: .activity)
        #expect(reopened.backlog.map(\.count) == [0, 0, 5, 0, 0])
        #expect(reopened.backlog[2].oldestAge == .seconds(5) + .milliseconds(5))
        #expect(reopened.added == 5)
        #expect(reopened.pollers.isEmpty)
    }

    /// Temporal's `fairness_keys_rate_limit_default`: each fairness key at most the rate times its
    /// weight; a key over its rate is skipped while another key still dispatches; durable across
    /// a reopen; shown in describe; unset lifts it.
    @Test func aPerFairnessKeyRateHoldsEachKeyAndSurvivesReopen() async throws {
        let h = try EngineHarness()
        try await schedule(h, 300, workflowID: "tenant-a", prefix: "a", priority: Priority(fairnessKey: "tenant-a"))
        try await schedule(h, 300, workflowID: "tenant-b", prefix: "b", priority: Priority(fairnessKey: "tenant-b", fairnessWeight: 2))
        try h.engine.updateTaskQueueConfig(.init(taskQueue: "acts", kind: .activity, identity: "operator",
                                                 fairnessKeyRateLimit: .set(requestsPerSecond: 10, reason: "per tenant")))
        func driveByKey(seconds: Int) async throws -> [String: [Int]] {
            var counts: [String: [Int]] = ["a": Array(repeating: 0, count: seconds), "b": Array(repeating: 0, count: seconds)]
            for step in 0..<(seconds * 200) {
                while let task = try await poll(h, "w1") { counts[String(task.activityID.prefix(1))]![step / 200] += 1 }
                h.clock.advance(by: .milliseconds(5))
            }
            return counts
        }
        let counted = try await driveByKey(seconds: 3)
        // Weight 1: 10 a second; weight 2: 20 a second (the first token of each key is free at once).
        #expect(counted["a"] == [10, 10, 10], "\(counted)")
        #expect(counted["b"] == [20, 20, 20], "\(counted)")
        let info = try h.engine.describeTaskQueue(taskQueue: "acts", kind: .activity)
        #expect(info.config.fairnessKeyRateLimit?.requestsPerSecond == 10)
        #expect(info.config.fairnessKeyRateLimit?.reason == "per tenant")
        #expect(info.config.fairnessKeyRateLimit?.updateIdentity == "operator")
        #expect(info.effectiveRateLimit == nil, "the queue-wide rate is not set")
        #expect(info.backlogCount == 600 - 30 - 60)
        try await h.crashAndReopen()
        #expect(try h.engine.taskQueueConfig(taskQueue: "acts", kind: .activity).fairnessKeyRateLimit?.requestsPerSecond == 10)
        let reopened = try await driveByKey(seconds: 2)
        #expect(reopened["a"] == [10, 10], "\(reopened)")
        #expect(reopened["b"] == [20, 20], "\(reopened)")
        // Unset: the keys are no longer held back.
        try h.engine.updateTaskQueueConfig(.init(taskQueue: "acts", kind: .activity, fairnessKeyRateLimit: .unset(reason: "done")))
        var rest = 0
        while try await poll(h, "w1") != nil { rest += 1 }
        #expect(rest == 600 - 90 - 60)
        #expect(h.engine.configuredTaskQueues().isEmpty)
        do {
            try h.engine.updateTaskQueueConfig(.init(taskQueue: "acts", kind: .activity, fairnessKeyRateLimit: .set(requestsPerSecond: -1, reason: "")))
            Issue.record("a negative per-key rate was accepted")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("fairnessKeyRateLimit"), "\(error)")
        }
    }

    /// Temporal's poller history TTL (5 minutes): a poller that has not polled for that long
    /// leaves describe, and the queue rate it sent no longer counts.
    @Test func pollersThatStopPollingExpireAfterFiveMinutes() async throws {
        let h = try EngineHarness()
        try await schedule(h, 20)
        #expect(try await poll(h, "old", rate: 1) != nil)
        #expect(try await poll(h, "old", rate: 1) == nil, "1/s: no second token at once")
        h.clock.advance(by: .seconds(120))
        #expect(try await poll(h, "other") != nil)
        h.clock.advance(by: .seconds(179))
        var info = try h.engine.describeTaskQueue(taskQueue: "acts", kind: .activity)
        #expect(info.pollers.map(\.identity) == ["old", "other"])
        #expect(info.pollerRateLimit == 1)
        #expect(info.effectiveRateLimit == 1)
        h.clock.advance(by: .seconds(1))
        info = try h.engine.describeTaskQueue(taskQueue: "acts", kind: .activity)
        #expect(info.pollers.map(\.identity) == ["other"], "'old' last polled 300 s ago")
        #expect(info.pollerRateLimit == nil)
        #expect(info.effectiveRateLimit == nil)
        // Its rate no longer holds the queue back: the other poller takes the rest at once.
        var taken = 0
        while try await poll(h, "other") != nil { taken += 1 }
        #expect(taken == 20 - 2)
    }

    /// `SpoolWorker(maxActivitiesPerSecond:maxTaskQueueActivitiesPerSecond:)`: the worker's own
    /// limit is enforced by the engine (the next activity waits for the clock), and both rates
    /// show in describe.
    @Test func aWorkersActivityRateOptionHoldsItsActivitiesBack() async throws {
        let h = try EngineHarness()
        let worker = SpoolWorker(engine: h.engine, taskQueue: "q", identity: "w1", maxActivitiesPerSecond: 2,
                                 maxTaskQueueActivitiesPerSecond: 100)
        worker.registerWorkflow("order", orderWorkflow)
        let ran = LockedCounter()
        worker.registerActivity("charge") { context in ran.increment(); return context.task.input }
        let running = Task { await worker.run() }
        for index in 0..<3 { _ = try await h.start("order-\(index)") }
        try await eventually("the first activity ran") { ran.value == 1 }
        // Tokens at 0 s, 0.5 s, 1 s: without the clock moving no second activity can start.
        try await eventually("the three activities are scheduled") {
            let backlog = try h.engine.describeTaskQueue(taskQueue: "q", kind: .activity).backlogCount
            return h.engine.listWorkflowExecutions().count == 3 && backlog + ran.value >= 3
        }
        #expect(ran.value == 1)
        h.clock.advance(by: .milliseconds(500))
        try await eventually("the second activity ran") { ran.value == 2 }
        h.clock.advance(by: .milliseconds(500))
        try await eventually("the third activity ran") { ran.value == 3 }
        let info = try h.engine.describeTaskQueue(taskQueue: "q", kind: .activity)
        #expect(info.pollers.first { $0.identity == "w1" }?.ratePerSecond == 2)
        #expect(info.pollerRateLimit == 100)
        // The worker's sticky queue has one partition (Temporal never partitions sticky queues).
        let sticky = try #require(worker.stickyTaskQueue)
        #expect(try h.engine.describeTaskQueue(taskQueue: sticky, kind: .workflow).partitions == 1)
        #expect(try h.engine.describeTaskQueue(taskQueue: "q", kind: .workflow).partitions == 4)
        await worker.stop()
        await running.value
    }
}

/// A counter the activity functions of a test bump.
final class LockedCounter: Sendable {
    private let count = Mutex(0)
    func increment() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
