import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import SpoolQueue

/// Dead letters, retries waiting out a backoff and a paused queue's tasks do not keep the
/// oldest segments alive: they are copied to the head of the log and the segments deleted.
@Suite struct TaskStoreRelocationTests {
    func configuration() -> TaskStoreConfiguration {
        var configuration = testConfiguration(.sync, segmentBytes: 64 << 10)
        configuration.ackBucketShift = 2
        configuration.maxAttempts = 1
        configuration.retryInitialInterval = .seconds(60)
        configuration.relocationSegmentThreshold = 3
        return configuration
    }

    @Test func pinningTasksAreCopiedForwardAndTheirSegmentsDeleted() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualMatchingClock()
        var configuration = configuration()
        let store = try TaskStore.open(directory: dir.store, configuration: configuration, clock: .manual(clock))
        // In the first segment: a paused queue's tasks, a dead letter, a retry waiting out its backoff.
        try await store.pause("paused", kind: .workflow)
        var pausedIDs: [UInt64] = []
        for i in 0..<20 { pausedIDs.append(try await store.add(payload(i, size: 100), to: "paused", kind: .workflow, options: TaskOptions(priority: 1 + i % 3))) }
        let doomed = try await store.add(Array("doomed".utf8), to: "jobs", kind: .activity)
        let task = try #require(try await store.poll("jobs", kind: .activity, timeout: .zero))
        #expect(task.id == doomed)
        guard case .deadLettered = try await store.fail(task.id, reason: "bad input") else { Issue.record("not dead"); return }
        // Then enough completed traffic to fill several segments.
        for i in 0..<1500 {
            let id = try await store.add(payload(1000 + i, size: 150), to: "busy", kind: .activity)
            let busy = try #require(try await store.poll("busy", kind: .activity, timeout: .zero))
            #expect(busy.id == id)
            try store.complete(busy.id)
        }
        try await store.flush()
        let segmentsBefore = store.log.segmentBaseOffsets.count
        #expect(segmentsBefore >= 4)
        try store.checkpoint()
        #expect(store.log.startOffset == 0)  // pinned
        let moved = try await store.relocatePinnedTasks()
        #expect(moved == 21)
        let level = try store.checkpoint()
        #expect(level > pausedIDs.last!)
        #expect(store.log.startOffset > 0)
        #expect(store.log.segmentBaseOffsets.count < segmentsBefore)
        // Still paused, still in order, same bytes, original ids kept.
        #expect(try await store.poll("paused", kind: .workflow, timeout: .zero) == nil)
        let peeked = try store.peek("paused", kind: .workflow, limit: 100)
        let order = (1...3).flatMap { p in (0..<20).filter { 1 + $0 % 3 == p } }
        #expect(peeked.map(\.payload) == order.map { payload($0, size: 100) })
        #expect(try store.deadLetters("jobs", kind: .activity).map(\.payload) == [Array("doomed".utf8)])
        store.abandon()

        configuration.relocationSegmentThreshold = 100
        let reopened = try TaskStore.open(directory: dir.store, configuration: configuration, clock: .manual(clock))
        let dead = try reopened.deadLetters("jobs", kind: .activity)
        #expect(dead.map(\.payload) == [Array("doomed".utf8)] && dead.map(\.originalID) == [doomed] && dead.map(\.reason) == ["bad input"])
        try await reopened.resume("paused", kind: .workflow)
        let delivered = try await reopened.drainNow("paused", kind: .workflow)
        #expect(delivered.map(\.payload) == order.map { payload($0, size: 100) })
        #expect(delivered.map(\.originalID) == order.map { pausedIDs[$0] })
        #expect(try await reopened.drainNow("busy").isEmpty)
        try await reopened.close()
    }

    @Test func aPausedQueueKeepsNoPayloadInMemory() async throws {
        let dir = TemporaryDirectory()
        let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.none))
        for i in 0..<100 { _ = try await store.add(payload(i, size: 100), to: "q", kind: .activity) }
        #expect(store.inMemoryPayloadBytes == 100 * 100)
        try await store.pause("q", kind: .activity)
        #expect(store.inMemoryPayloadBytes == 0)
        for i in 100..<150 { _ = try await store.add(payload(i, size: 100), to: "q", kind: .activity) }
        #expect(store.inMemoryPayloadBytes == 0)
        #expect(try store.describe("q", kind: .activity).backlogCount == 150)
        // A poller waiting at the pause (or about to) gets the first task once the queue is
        // resumed: the resume reads the window back from disk.
        let queue = try store.queue("q", kind: .activity)
        async let first = queue.poll(timeout: nil)
        for _ in 0..<100 { await Task.yield() }
        try await store.resume("q", kind: .activity)
        #expect(try await first?.payload == payload(0, size: 100))
        #expect(try await store.drainNow("q").map(\.payload) == (1..<150).map { payload($0, size: 100) })
        try await store.close()
    }
}
