import Testing
@testable import SpoolMatching

@Suite("Dispatcher rate limits (injected clock)")
struct DispatcherRateLimitTests {
    /// Drains the queue every simulated millisecond for `seconds`, through `pollers`; returns tasks per poller.
    func drive(_ queue: TaskQueue<UInt64>, clock: ManualMatchingClock, seconds: Int, pollers: [TaskPoller?]) -> [Int] {
        var counts = Array(repeating: 0, count: pollers.count)
        for _ in 0..<(seconds * 1000) {
            clock.advance(by: .milliseconds(1))
            for (i, poller) in pollers.enumerated() {
                while queue.tryPoll(poller: poller) != nil { counts[i] += 1 }
            }
        }
        return counts
    }

    @Test("a queue's rate holds within ±10% over 5 s, across partitions and pollers", arguments: [1, 4])
    func queueRate(partitions: Int) throws {
        let clock = ManualMatchingClock()
        let queue = try makeDispatcher(partitions: partitions, clock: clock).queue("q", kind: .activity)
        for id in 0..<5_000 as Range<UInt64> { try queue.add(task(id)) }
        try queue.setRateLimit(RateLimit(perSecond: 200, burst: 5))
        let pollers = try (0..<3).map { try queue.poller(identity: "worker-\($0)") }
        let total = drive(queue, clock: clock, seconds: 5, pollers: pollers).reduce(0, +)
        #expect(abs(total - 1_000) <= 100, "\(total) tasks in 5 s at 200/s")
    }

    @Test("a worker's own rate holds within ±10% while another worker takes the rest")
    func workerRate() throws {
        let clock = ManualMatchingClock()
        let queue = try makeDispatcher(clock: clock).queue("q", kind: .activity)
        for id in 0..<2_000 as Range<UInt64> { try queue.add(task(id)) }
        let slow = try queue.poller(identity: "slow", maxTasksPerSecond: 20)
        let counts = drive(queue, clock: clock, seconds: 5, pollers: [slow])
        #expect(abs(counts[0] - 100) <= 10, "\(counts[0]) tasks in 5 s at 20/s")
        let description = queue.describe()
        #expect(description.pollers.map(\.identity) == ["slow"])
        #expect(description.pollers.first?.maxTasksPerSecond == 20)
        #expect(description.pollers.first?.dispatched == counts[0])
    }

    @Test("an async poll waits for the next token")
    func pollWaitsForToken() async throws {
        let clock = ManualMatchingClock()
        let queue = try makeDispatcher(clock: clock).queue("q", kind: .activity)
        try queue.setRateLimit(RateLimit(perSecond: 1))
        try queue.add(task(1))
        try queue.add(task(2))
        #expect(await queue.poll()?.id == 1)
        async let second = queue.poll()
        #expect(await eventually { clock.sleeperCount == 1 })
        clock.advance(by: .seconds(1))
        #expect(await second?.id == 2)
    }

    @Test("a rate of 0 pauses the queue until another rate is set")
    func rateZeroPauses() async throws {
        let clock = ManualMatchingClock()
        let queue = try makeDispatcher(clock: clock).queue("q", kind: .activity)
        try queue.add(task(1))
        try queue.setRateLimit(RateLimit(perSecond: 0))
        #expect(queue.isPaused)
        #expect(queue.tryPoll() == nil)
        async let polled = queue.poll(timeout: .seconds(1))
        #expect(await eventually { clock.sleeperCount == 1 })
        try queue.setRateLimit(nil)
        #expect(await polled?.id == 1)
        #expect(!queue.isPaused)
    }

    @Test("a worker's interval runs from when it used its last task, not from when that task was handed over")
    func workerIntervalRestartsWhenTheTaskIsUsed() throws {
        let clock = ManualMatchingClock()
        let queue = try makeDispatcher(clock: clock).queue("q", kind: .activity)
        for id in 1...3 as ClosedRange<UInt64> { try queue.add(task(id)) }
        let worker = try queue.poller(identity: "w", maxTasksPerSecond: 10)  // one task per 100 ms
        #expect(queue.tryPoll(poller: worker)?.id == 1)
        // Starting the task took 60 ms (a run's lock, a commit): the next may go 100 ms after that.
        clock.advance(by: .milliseconds(60))
        queue.pollerUsedTask(worker)
        clock.advance(by: .milliseconds(40))
        #expect(queue.tryPoll(poller: worker) == nil, "100 ms after the hand-over but only 40 ms after the start")
        clock.advance(by: .milliseconds(59))
        #expect(queue.tryPoll(poller: worker) == nil)
        clock.advance(by: .milliseconds(1))
        #expect(queue.tryPoll(poller: worker)?.id == 2)
    }

    @Test("a task the worker could not use gives its rate token back")
    func discardedTaskRefundsTheWorkersToken() throws {
        let clock = ManualMatchingClock()
        let queue = try makeDispatcher(clock: clock).queue("q", kind: .activity)
        for id in 1...3 as ClosedRange<UInt64> { try queue.add(task(id)) }
        let worker = try queue.poller(identity: "w", maxTasksPerSecond: 1)
        #expect(queue.tryPoll(poller: worker)?.id == 1)
        #expect(queue.tryPoll(poller: worker) == nil, "one token a second")
        queue.pollerDiscardedTask(worker)  // task 1 was stale: already started elsewhere
        #expect(queue.tryPoll(poller: worker)?.id == 2)
        queue.pollerUsedTask(worker)
        #expect(queue.tryPoll(poller: worker) == nil)
    }
}
