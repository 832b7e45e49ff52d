#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting
import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import SpoolQueue

/// Online compaction of a running task store: what it reclaims, and that adds, completions and
/// reopens see the same tasks before and after.
@Suite struct TaskStoreOnlineCompactionTests {
    static func configuration(segmentBytes: Int = 64 << 10, _ syscalls: any Syscalls = SystemCalls()) -> TaskStoreConfiguration {
        var configuration = testConfiguration(.sync, segmentBytes: segmentBytes)
        configuration.log.syscalls = syscalls
        configuration.onlineCompaction.minimumDeadBytes = 0
        configuration.onlineCompaction.bytesPerSecond = 0
        configuration.ackBucketShift = 6
        return configuration
    }

    /// The tags of every task a reopened store delivers (none completed), sorted; then closes it.
    static func pendingTags(_ directory: String, configuration: TaskStoreConfiguration = configuration()) async throws -> [Int] {
        let store = try TaskStore.open(directory: directory, configuration: configuration)
        let delivered = try await store.drainNow("q", complete: false)
        try await store.close()
        let tags = delivered.compactMap { TaskStoreCrashTests.tag(of: $0.payload) }
        #expect(tags.count == delivered.count, "a delivered payload was never added")
        return tags.sorted()
    }

    @Test func aStoreSmallerThanOneSegmentShrinksWhileRunning() async throws {
        let dir = TemporaryDirectory()
        let configuration = Self.configuration(segmentBytes: 8 << 20)
        let store = try TaskStore.open(directory: dir.store, configuration: configuration)
        let added = await TaskStoreCrashTests.addConcurrently(store, tags: 0..<3000, producers: 8)
        #expect(added.count == 3000)
        var pending: [Int] = []
        var i = 0
        while let task = try await store.poll("q", kind: .activity, timeout: .zero) {
            i += 1
            if i % 10 == 0 { pending.append(try #require(TaskStoreCrashTests.tag(of: task.payload))) } else { try store.complete(task.id) }
        }
        try await store.flush()
        try store.checkpoint()
        let before = store.logSegmentBytes
        #expect(store.log.segmentBaseOffsets.count == 1, "one segment, never deleted by the ack level")

        // The dead records are in the active segment: the round asks for a roll.
        guard case .rolledActiveSegment(_, let live) = try await store.compactOnline() else {
            Issue.record("expected a roll of the active segment")
            return
        }
        #expect(live < before / 4)
        _ = try await store.add(TaskStoreCrashTests.tagged(99_999), to: "q", kind: .activity)
        pending.append(99_999)
        #expect(store.log.segmentBaseOffsets.count == 2, "the next append rolled")
        guard case .compacted(let summary, _) = try await store.compactOnline() else {
            Issue.record("expected a compaction")
            return
        }
        #expect(summary.recordsDropped > summary.recordsKept)
        let after = store.logSegmentBytes
        #expect(after * 5 < before, "\(before) → \(after) bytes")
        // The in-flight tasks are still completed and failed as usual, and reads come from the new segments.
        #expect(store.onlineCompactionStatistics.compactions == 1)
        try await store.close()
        #expect(try await Self.pendingTags(dir.store, configuration: configuration) == pending.sorted())
    }

    @Test func compactingWhileAddingAndCompletingLosesNothing() async throws {
        let dir = TemporaryDirectory()
        var configuration = Self.configuration()
        configuration.memoryBudgetBytes = 8 << 10   // most of the backlog waits on disk and is read back
        configuration.refillBatchSize = 16
        // A failed task is queued again at once, never dead-lettered: every pending tag is delivered.
        configuration.retryInitialInterval = .zero
        configuration.retryMaximumInterval = .zero
        configuration.maxAttempts = 1000
        let store = try TaskStore.open(directory: dir.store, configuration: configuration)
        var expected = Set(await TaskStoreCrashTests.addConcurrently(store, tags: 0..<1500, producers: 4).values)
        var nextTag = 1500
        var compactions = 0
        for round in 0..<8 {
            // Adds, polls and completions while a compaction runs.
            async let rewritten = store.compactOnline(force: true)
            let more = await TaskStoreCrashTests.addConcurrently(store, tags: nextTag..<nextTag + 300, producers: 4)
            nextTag += 300
            expected.formUnion(more.values)
            var taken = 0
            while taken < 250, let task = try await store.poll("q", kind: .activity, timeout: .zero) {
                let tag = try #require(TaskStoreCrashTests.tag(of: task.payload), "round \(round)")
                if taken % 7 == 0 {
                    _ = try await store.fail(task.id, reason: "retry")
                } else {
                    try store.complete(task.id)
                    expected.remove(tag)
                }
                taken += 1
            }
            if case .compacted = try await rewritten { compactions += 1 }
            try await store.flush()
            if round % 2 == 1 { try store.checkpoint() }
        }
        #expect(compactions >= 4)
        // A crash (no final checkpoint) and a clean close give the same tasks.
        store.abandon()
        let tags = try await Self.pendingTags(dir.store, configuration: configuration)
        #expect(Set(tags).count == tags.count, "a task was delivered twice")
        let missing = expected.subtracting(tags), extra = Set(tags).subtracting(expected)
        #expect(missing.isEmpty && extra.isEmpty, "lost \(missing.count): \(missing.sorted().prefix(10)); resurrected \(extra.count): \(extra.sorted().prefix(10))")
    }

    @Test func aBackgroundLoopCompactsByItsPolicy() async throws {
        let dir = TemporaryDirectory()
        var configuration = Self.configuration()
        configuration.onlineCompaction.checkInterval = .milliseconds(20)
        configuration.onlineCompaction.minimumDeadFraction = 0.5
        let store = try TaskStore.open(directory: dir.store, configuration: configuration)
        for round in 0..<20 {
            let added = await TaskStoreCrashTests.addConcurrently(store, tags: round * 200..<(round + 1) * 200, producers: 4)
            #expect(added.count == 200)
            _ = try await store.drainNow("q")
            try await store.flush()
        }
        // Nothing is live: the loop compacts the sealed segments away (the ack level deletes them too,
        // at the next checkpoint; here the checkpoint never runs).
        var waited = 0
        while store.onlineCompactionStatistics.compactions == 0 && waited < 500 {
            try await Task.sleep(for: .milliseconds(10))
            waited += 1
        }
        #expect(store.onlineCompactionStatistics.compactions >= 1)
        try await store.close()
        #expect(try await Self.pendingTags(dir.store, configuration: configuration).isEmpty)
    }

    @Test func aBadPolicyIsRefusedByName() throws {
        var configuration = Self.configuration()
        configuration.onlineCompaction.minimumDeadFraction = 1.5
        let dir = TemporaryDirectory()
        #expect { try TaskStore.open(directory: dir.store, configuration: configuration) } throws: { error in
            guard let error = error as? QueueError else { return false }
            return error.code == .invalidConfiguration && error.message.contains("onlineCompaction.minimumDeadFraction")
        }
    }
}
