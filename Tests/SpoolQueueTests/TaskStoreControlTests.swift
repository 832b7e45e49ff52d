import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import SpoolQueue

/// Pause, resume, rate limits and purge are control records: durable across a reopen.
@Suite struct TaskStoreControlTests {
    @Test func pauseAndResumeAreDurable() async throws {
        let dir = TemporaryDirectory()
        do {
            let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.sync))
            try await store.pause("q", kind: .activity)
            _ = try await store.add([1], to: "q", kind: .activity)
            #expect(try await store.poll("q", kind: .activity, timeout: .zero) == nil)
            #expect(try store.describe("q", kind: .activity).isPaused)
            // The other kind of the same name is not paused.
            _ = try await store.add([2], to: "q", kind: .workflow)
            #expect(try await store.poll("q", kind: .workflow, timeout: .zero)?.payload == [2])
            try await store.close()
        }
        do {
            let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.sync))
            #expect(try store.describe("q", kind: .activity).isPaused)
            #expect(!(try store.describe("q", kind: .workflow).isPaused))
            #expect(try await store.poll("q", kind: .activity, timeout: .zero) == nil)
            try await store.resume("q", kind: .activity)
            #expect(try await store.poll("q", kind: .activity, timeout: .zero)?.payload == [1])
            store.abandon()  // no clean close: the resume record alone must carry it
        }
        let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.sync))
        #expect(!(try store.describe("q", kind: .activity).isPaused))
        #expect(try await store.poll("q", kind: .activity, timeout: .zero)?.payload == [1])  // was in flight: redelivered
        try await store.close()
    }

    @Test func aPauseOlderThanTheCheckpointSurvivesTheDeletionOfItsSegment() async throws {
        let dir = TemporaryDirectory()
        var configuration = testConfiguration(.sync, segmentBytes: 64 << 10)
        configuration.ackBucketShift = 4
        do {
            let store = try TaskStore.open(directory: dir.store, configuration: configuration)
            try await store.pause("paused", kind: .workflow)
            try await store.setRateLimit(RateLimit(perSecond: 7, burst: 3), for: "limited", kind: .activity)
            for i in 0..<2000 {
                let id = try await store.add(payload(i, size: 100), to: "busy", kind: .activity)
                let task = try #require(try await store.poll("busy", kind: .activity, timeout: .zero))
                #expect(task.id == id)
                try store.complete(id)
            }
            try await store.flush()
            try store.checkpoint()
            #expect(store.log.startOffset > 0)  // the segment with the control records is gone
            store.abandon()
        }
        let store = try TaskStore.open(directory: dir.store, configuration: configuration)
        #expect(try store.describe("paused", kind: .workflow).isPaused)
        #expect(try store.describe("limited", kind: .activity).rateLimit == RateLimit(perSecond: 7, burst: 3))
        #expect(!(try store.describe("busy", kind: .activity).isPaused))
        try await store.close()
    }

    @Test func purgeDropsQueuedTasksDurablyAndKeepsThoseInFlight() async throws {
        let dir = TemporaryDirectory()
        var configuration = testConfiguration(.sync)
        configuration.memoryBudgetBytes = 1000
        configuration.refillBatchSize = 4
        var inFlight: [UInt64] = []
        var after: [UInt64] = []
        do {
            let store = try TaskStore.open(directory: dir.store, configuration: configuration)
            for i in 0..<50 { _ = try await store.add(payload(i, size: 100), to: "q", kind: .activity, options: TaskOptions(priority: 1 + i % 5)) }
            for _ in 0..<2 { inFlight.append(try #require(try await store.poll("q", kind: .activity, timeout: .zero)).id) }
            _ = try await store.add([9], to: "other", kind: .activity)
            #expect(try await store.purge("q", kind: .activity) == 48)
            #expect(try store.describe("q", kind: .activity).backlogCount == 0)
            #expect(try await store.poll("q", kind: .activity, timeout: .zero) == nil)
            for i in 0..<3 { after.append(try await store.add(payload(100 + i), to: "q", kind: .activity)) }
            store.abandon()
        }
        let store = try TaskStore.open(directory: dir.store, configuration: configuration)
        let delivered = try await store.drainNow("q")
        // The tasks in flight at the purge come back (not completed), then the ones added after it.
        #expect(Set(delivered.map(\.id)) == Set(inFlight + after))
        #expect(try await store.drainNow("other").map(\.payload) == [[9]])
        try await store.close()
    }

    @Test func peekShowsQueuedTasksInDeliveryOrderWithoutTakingThem() async throws {
        let dir = TemporaryDirectory()
        var configuration = testConfiguration(.none)
        configuration.memoryBudgetBytes = 300
        configuration.refillBatchSize = 2
        let store = try TaskStore.open(directory: dir.store, configuration: configuration)
        var ids: [UInt64] = []
        for i in 0..<10 { ids.append(try await store.add(payload(i, size: 100), to: "q", kind: .workflow, options: TaskOptions(priority: i < 5 ? 4 : 2))) }
        let peeked = try store.peek("q", kind: .workflow, limit: 7)
        let order = Array(ids[5...]) + Array(ids[..<5])
        #expect(peeked.map(\.id) == Array(order.prefix(7)))
        #expect(peeked.map(\.payload) == order.prefix(7).map { id in payload(ids.firstIndex(of: id)!, size: 100) })
        let description = try store.describe("q", kind: .workflow)
        #expect(description.backlogCount == 10)
        #expect(description.backlog.map(\.count) == [0, 5, 0, 5, 0])
        #expect(description.inMemoryCount < 10)  // the rest is on disk
        #expect(try await store.drainNow("q", kind: .workflow).map(\.id) == order)
        #expect(try store.describe("q", kind: .workflow).dispatchedCount == 10)
        try await store.close()
    }

    @Test func describeReportsAgesInFlightAndPollersOnTheStoreClock() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualMatchingClock()
        let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.none), clock: .manual(clock))
        let queue = try store.queue("q", kind: .activity)
        let poller = try queue.poller(identity: "worker-1", maxTasksPerSecond: 50)
        _ = try await queue.add([1], options: TaskOptions(priority: 1))
        clock.advance(by: .seconds(10))
        _ = try await queue.add([2], options: TaskOptions(priority: 1))
        _ = try await queue.add([3], options: TaskOptions(priority: 5))
        clock.advance(by: .seconds(5))
        var description = try store.describe("q", kind: .activity)
        #expect(description.backlog[0].oldestAge == .seconds(15))
        #expect(description.backlog[4].oldestAge == .seconds(5))
        #expect(description.backlog[2].oldestAge == nil)
        let task = try #require(try await queue.poll(timeout: .zero, poller: poller))
        description = try store.describe("q", kind: .activity)
        #expect(description.inFlightCount == 1 && description.addedCount == 3 && description.dispatchedCount == 1)
        #expect(description.pollers.map(\.identity) == ["worker-1"] && description.pollers[0].maxTasksPerSecond == 50)
        #expect(store.listQueues().map(\.name) == ["q", "q"] || store.listQueues().map(\.name) == ["q"])
        try store.complete(task.id)
        try await store.close()
    }
}
