import Testing
@testable import SpoolMatching

/// The per-fairness-key rate limit (Temporal's `fairness_keys_rate_limit_default`) and the
/// expiry of pollers from describe (Temporal's `pollerHistoryTTL`), with the manual clock.
@Suite("Dispatcher per-key rate limits and poller expiry (injected clock)")
struct DispatcherKeyRateTests {
    /// Polls until nothing comes every simulated millisecond for `milliseconds`; returns tasks per fairness key ("" for none).
    func drive(_ queue: TaskQueue<UInt64>, clock: ManualMatchingClock, milliseconds: Int) -> [String: Int] {
        var counts: [String: Int] = [:]
        for _ in 0..<milliseconds {
            clock.advance(by: .milliseconds(1))
            while let task = queue.tryPoll() { counts[task.fairness?.key ?? "", default: 0] += 1 }
        }
        return counts
    }

    @Test("each key is held to the rate times its weight; a key over its rate is skipped, others and unkeyed tasks still go",
          arguments: [1, 4])
    func keysHeldToTheirRate(partitions: Int) throws {
        let clock = ManualMatchingClock()
        let queue = try makeDispatcher(partitions: partitions, clock: clock).queue("q", kind: .activity)
        try queue.setFairnessKeyRateLimit(RateLimit(perSecond: 10))
        var id: UInt64 = 0
        func add(_ key: String?, weight: UInt32 = 1, count: Int) throws {
            for _ in 0..<count { id += 1; try queue.add(task(id, key: key, weight: weight)) }
        }
        try add("light", count: 1_000)
        try add("heavy", weight: 3, count: 1_000)
        try add(nil, count: 200)
        let counts = drive(queue, clock: clock, milliseconds: 5_000)
        // 10/s × weight 1 and × weight 3 over 5 s (the first token of each is free at once). Polled
        // on whole milliseconds, the weight-3 key (every 33.3 ms) takes each token up to 1 ms late;
        // the lateness is not lost, so it still gets its 150.
        #expect(counts["light"] == 50, "\(counts)")
        #expect(counts["heavy"] == 150, "\(counts)")
        #expect(counts[""] == 200, "unkeyed tasks are not limited by the per-key rate: \(counts)")
        #expect(queue.describe().fairnessKeyRateLimit == RateLimit(perSecond: 10))
        #expect(queue.describe().backlogCount == 2_000 - (counts["light"] ?? 0) - (counts["heavy"] ?? 0))
    }

    @Test("a throttled task that expires takes no token")
    func expiredTakesNoToken() throws {
        let clock = ManualMatchingClock()
        let queue = try makeDispatcher(clock: clock).queue("q", kind: .activity)
        try queue.setFairnessKeyRateLimit(RateLimit(perSecond: 1))
        try queue.add(task(1, key: "k"))
        try queue.add(task(2, key: "k", deadline: MatchingInstant(nanoseconds: 1_500_000_000)))
        try queue.add(task(3, key: "k"))
        #expect(queue.tryPoll()?.id == 1)
        #expect(queue.tryPoll() == nil, "the key's next token is due at 1 s")
        clock.advance(by: .seconds(2))
        // Task 2 expired at 1.5 s while throttled: it is dropped without a token, so task 3 gets it.
        #expect(queue.tryPoll()?.id == 3)
        #expect(queue.describe().expired == 1)
        #expect(queue.tryPoll() == nil)
    }

    @Test("a waiting poll wakes when its key's next token is due")
    func pollWaitsForKeyToken() async throws {
        let clock = ManualMatchingClock()
        let queue = try makeDispatcher(clock: clock).queue("q", kind: .activity)
        try queue.setFairnessKeyRateLimit(RateLimit(perSecond: 1))
        try queue.add(task(1, key: "k"))
        try queue.add(task(2, key: "k"))
        #expect(await queue.poll()?.id == 1)
        async let second = queue.poll()
        #expect(await eventually { queue.describe().waitingPollers == 1 })
        clock.advance(by: .seconds(1))
        #expect(await second?.id == 2)
    }

    @Test("a key rate of 0 holds keyed tasks back, unkeyed ones go; removing it releases them to a waiting poller")
    func rateZeroHoldsKeys() async throws {
        let clock = ManualMatchingClock()
        let queue = try makeDispatcher(clock: clock).queue("q", kind: .activity)
        try queue.setFairnessKeyRateLimit(RateLimit(perSecond: 0))
        try queue.add(task(1, key: "k"))
        try queue.add(task(2))
        #expect(queue.tryPoll()?.id == 2)
        #expect(queue.tryPoll() == nil)
        clock.advance(by: .seconds(60))
        #expect(queue.tryPoll() == nil)
        #expect(!queue.isPaused, "a per-key rate of 0 does not pause the queue")
        async let waiting = queue.poll()
        #expect(await eventually { queue.describe().waitingPollers == 1 })
        try queue.setFairnessKeyRateLimit(nil)
        #expect(await waiting?.id == 1)
        #expect(queue.describe().fairnessKeyRateLimit == nil)
    }

    @Test("drain takes keyed tasks held back by their rate")
    func drainIgnoresKeyRates() throws {
        let clock = ManualMatchingClock()
        let queue = try makeDispatcher(partitions: 2, clock: clock).queue("q", kind: .activity)
        try queue.setFairnessKeyRateLimit(RateLimit(perSecond: 0))
        for id in 1...5 as ClosedRange<UInt64> { try queue.add(task(id, key: "k")) }
        #expect(queue.tryPoll() == nil)
        #expect(Set(queue.drain().map(\.id)) == [1, 2, 3, 4, 5])
        #expect(queue.backlogCount == 0)
    }

    @Test("bad per-key rates are refused")
    func badKeyRates() throws {
        let queue = try makeDispatcher(clock: ManualMatchingClock()).queue("q", kind: .activity)
        #expect(throws: MatchingError.self) { try queue.setFairnessKeyRateLimit(RateLimit(perSecond: -1)) }
        #expect(throws: MatchingError.self) { try queue.setFairnessKeyRateLimit(RateLimit(perSecond: .nan)) }
        #expect(queue.fairnessKeyRateLimit == nil)
    }

    @Test("a poller that has not polled for 5 minutes leaves describe, and comes back when it polls")
    func pollersExpire() throws {
        let clock = ManualMatchingClock()
        let queue = try makeDispatcher(clock: clock).queue("q", kind: .activity)
        let early = try queue.poller(identity: "early")
        _ = queue.tryPoll(poller: early)
        clock.advance(by: .seconds(200))
        let late = try queue.poller(identity: "late", maxTasksPerSecond: 5)
        _ = queue.tryPoll(poller: late)
        clock.advance(by: .seconds(99))
        #expect(queue.describe().pollers.map(\.identity) == ["early", "late"], "299 s after its last poll")
        clock.advance(by: .seconds(1))
        #expect(queue.describe().pollers.map(\.identity) == ["late"], "300 s after its last poll")
        clock.advance(by: .seconds(200))
        #expect(queue.describe().pollers.isEmpty)
        _ = queue.tryPoll(poller: early)
        #expect(queue.describe().pollers.map(\.identity) == ["early"])
    }
}
