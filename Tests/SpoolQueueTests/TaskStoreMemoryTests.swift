#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import SpoolQueue

@_silgen_name("malloc_usable_size")
func mallocUsableSize(_ pointer: UnsafeMutableRawPointer?) -> Int

/// A backlog larger than the memory budget waits on disk as positions and is read back in batches.
@Suite struct TaskStoreMemoryTests {
    func configuration() -> TaskStoreConfiguration {
        var configuration = testConfiguration(.none)
        configuration.memoryBudgetBytes = 8 << 10
        configuration.refillBatchSize = 16
        return configuration
    }

    @Test func aBacklogLargerThanTheBudgetIsDeliveredCompletelyAndInOrder() async throws {
        let dir = TemporaryDirectory()
        let store = try TaskStore.open(directory: dir.store, configuration: configuration())
        var expected: [Int: [UInt64]] = [:]
        for i in 0..<3000 {
            let priority = 1 + (i * 7) % 5
            let id = try await store.add(payload(i, size: 200), to: "big", kind: .activity, options: TaskOptions(priority: priority))
            expected[priority, default: []].append(id)
        }
        // 600 KB of payloads against an 8 KiB budget (plus at most one refill batch).
        let bound = (8 << 10) + 16 * 200
        #expect(store.inMemoryPayloadBytes <= bound)
        let description = try store.describe("big", kind: .activity)
        #expect(description.backlogCount == 3000 && description.inMemoryCount * 200 <= bound)
        var delivered: [UInt64] = []
        var peak = 0
        while let task = try await store.poll("big", kind: .activity, timeout: .zero) {
            peak = max(peak, store.inMemoryPayloadBytes)
            #expect(task.payload.count == 200)
            delivered.append(task.id)
            try store.complete(task.id)
        }
        #expect(delivered == (1...5).flatMap { expected[$0] ?? [] })
        #expect(peak <= bound)
        try await store.close()
    }

    @Test func aReopenedBacklogIsReadBackInBatches() async throws {
        let dir = TemporaryDirectory()
        var ids: [UInt64] = []
        do {
            let store = try TaskStore.open(directory: dir.store, configuration: configuration())
            for i in 0..<2000 { ids.append(try await store.add(payload(i, size: 100), to: "q", kind: .workflow)) }
            try await store.close()
        }
        let store = try TaskStore.open(directory: dir.store, configuration: configuration())
        // Restored as positions: nothing in memory before the first poll.
        #expect(store.inMemoryPayloadBytes == 0)
        #expect(try store.describe("q", kind: .workflow).backlogCount == 2000)
        let delivered = try await store.drainNow("q", kind: .workflow)
        #expect(delivered.map(\.id) == ids)
        #expect(delivered.map(\.payload) == (0..<2000).map { payload($0, size: 100) })
        try await store.close()
    }

    @Test func anIdleQueueTakesAtMost512BytesAndNoFile() async throws {
        let dir = TemporaryDirectory()
        let store = try TaskStore.open(directory: dir.store, configuration: configuration())
        let files = fileNames(dir.store)
        let handle = try store.queue("an-idle-queue", kind: .activity)
        let state = handle.state
        let bytes = mallocUsableSize(Unmanaged.passUnretained(state).toOpaque()) + state.matching.allocatedBytes
        #expect(bytes <= 512, "an idle queue takes \(bytes) bytes")
        #expect(fileNames(dir.store) == files)
        try await store.close()
    }
}
