import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import SpoolQueue

/// Acknowledged tasks are reclaimed by deleting whole segments below the checkpointed ack level.
@Suite struct TaskStoreReclamationTests {
    func configuration() -> TaskStoreConfiguration {
        var configuration = testConfiguration(.sync, segmentBytes: 64 << 10)
        configuration.ackBucketShift = 4
        configuration.retryInitialInterval = .seconds(5)
        return configuration
    }

    @Test func fullyAcknowledgedSegmentsAreDeletedAndReopenFindsEveryPendingTask() async throws {
        let dir = TemporaryDirectory()
        let clock = ManualMatchingClock()
        let store = try TaskStore.open(directory: dir.store, configuration: configuration(), clock: .manual(clock))
        var ids: [UInt64] = []
        for i in 0..<3000 { ids.append(try await store.add(payload(i, size: 100), to: "q", kind: .activity)) }
        #expect(store.log.segmentBaseOffsets.count >= 6)

        // The first task fails (its retry is a new record at the end: it must not pin segment 0);
        // all others but the last 10 are completed.
        let first = try #require(try await store.poll("q", kind: .activity, timeout: .zero))
        #expect(first.id == ids[0])
        guard case .retrying(let retryID, 2, _) = try await store.fail(first.id, reason: "later") else { Issue.record("no retry"); return }
        for _ in 1..<2990 {
            let task = try #require(try await store.poll("q", kind: .activity, timeout: .zero))
            try store.complete(task.id)
        }
        try await store.flush()
        let level = try store.checkpoint()
        #expect(level >= ids[2990] - 16 && level <= ids[2990])
        // Every segment wholly below the ack level is gone; the one holding it stays.
        #expect(store.log.segmentBaseOffsets.count <= 2)
        #expect(store.log.startOffset > 0 && store.log.startOffset <= ids[2990])
        try await store.close()
        let end = store.logEnd

        let reopened = try TaskStore.open(directory: dir.store, configuration: configuration(), clock: .manual(clock))
        // The replay started at the ack level (the records after it are the 10 pending tasks, the
        // retry and the acks records), not at the first record ever written.
        #expect(reopened.replayedRecords.load(ordering: .relaxed) <= Int(end - level))
        #expect(reopened.replayedRecords.load(ordering: .relaxed) >= 11)
        let pending = try await reopened.drainNow("q")
        #expect(pending.map(\.id) == Array(ids[2990...]))
        #expect(pending.map(\.payload) == (2990..<3000).map { payload($0, size: 100) })
        clock.advance(by: .seconds(5))
        let retried = try #require(try await reopened.poll("q", kind: .activity, timeout: .zero))
        #expect(retried.id == retryID && retried.originalID == ids[0] && retried.attempt == 2 && retried.payload == payload(0, size: 100))
        try reopened.complete(retried.id)
        try await reopened.flush()
        // Everything acknowledged: the ack level is the log's end.
        #expect(try reopened.checkpoint() == reopened.logEnd)
        try await reopened.close()
    }

    @Test func theAckLevelNeverPassesATaskWhoseAddIsInFlight() async throws {
        let dir = TemporaryDirectory()
        let store = try TaskStore.open(directory: dir.store, configuration: configuration())
        // Many adds in flight while checkpoints run: every task acknowledged must survive a crash.
        let added = await withTaskGroup(of: [UInt64].self) { group in
            for producer in 0..<8 {
                group.addTask {
                    var ids: [UInt64] = []
                    for i in 0..<200 {
                        ids.append(try! await store.add(payload(producer * 1000 + i), to: "q", kind: .activity))
                        if i % 50 == 0 { _ = try? store.checkpoint() }
                    }
                    return ids
                }
            }
            var all: [UInt64] = []
            for await ids in group { all += ids }
            return all
        }
        try store.checkpoint()
        store.abandon()
        let reopened = try TaskStore.open(directory: dir.store, configuration: configuration())
        #expect(Set(try await reopened.drainNow("q").map(\.id)) == Set(added))
        try await reopened.close()
    }
}
