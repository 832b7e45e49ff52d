#if canImport(Glibc)
import Glibc
#endif
import SpoolLogTesting
import Synchronization
import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import SpoolQueue

/// Crashes between add and complete: a killed process (`abandon`), and power loss in `.sync`
/// mode through ``PowerLossSyscalls`` (every byte not yet synced is dropped). After each, the
/// store is reopened and every task whose `add` returned and which was not durably completed
/// must be delivered; nothing that was never added may be.
@Suite struct TaskStoreCrashTests {
    /// Adds from many tasks at once; returns the tags of the adds that returned, by id.
    static func addConcurrently(_ store: TaskStore, tags: Range<Int>, producers: Int, queue: String = "q") async -> [UInt64: Int] {
        await withTaskGroup(of: [(UInt64, Int)].self) { group in
            for producer in 0..<producers {
                group.addTask {
                    var acknowledged: [(UInt64, Int)] = []
                    for tag in tags where tag % producers == producer {
                        guard let id = try? await store.add(tagged(tag), to: queue, kind: .activity,
                                                            options: TaskOptions(priority: 1 + tag % 5)) else { break }
                        acknowledged.append((id, tag))
                    }
                    return acknowledged
                }
            }
            var all: [UInt64: Int] = [:]
            for await part in group { for (id, tag) in part { all[id] = tag } }
            return all
        }
    }

    static func tagged(_ tag: Int) -> [UInt8] { Array("task-\(tag)-".utf8) + payload(tag, size: tag % 300) }

    static func tag(of payload: [UInt8]) -> Int? {
        guard payload.starts(with: Array("task-".utf8)), let dash = payload.dropFirst(5).firstIndex(of: UInt8(ascii: "-")),
              let tag = Int(String(decoding: payload[5..<dash], as: UTF8.self)), payload == tagged(tag) else { return nil }
        return tag
    }

    @Test func aKilledProcessLosesNoAcknowledgedTask() async throws {
        let dir = TemporaryDirectory()
        var configuration = testConfiguration(.sync, segmentBytes: 64 << 10)
        configuration.refillBatchSize = 16
        configuration.memoryBudgetBytes = 4096
        let store = try TaskStore.open(directory: dir.store, configuration: configuration)
        let added = await Self.addConcurrently(store, tags: 0..<2000, producers: 16)
        #expect(added.count == 2000)
        var completed: Set<Int> = []
        for _ in 0..<700 {
            let task = try #require(try await store.poll("q", kind: .activity, timeout: .zero))
            try store.complete(task.id)
            completed.insert(try #require(Self.tag(of: task.payload)))
        }
        try await store.flush()
        _ = try await store.poll("q", kind: .activity, timeout: .zero)  // in flight at the crash
        try store.checkpoint()
        let more = await Self.addConcurrently(store, tags: 2000..<2500, producers: 8)
        store.abandon()

        let reopened = try TaskStore.open(directory: dir.store, configuration: configuration)
        let delivered = try await reopened.drainNow("q")
        let tags = delivered.compactMap { Self.tag(of: $0.payload) }
        #expect(tags.count == delivered.count, "a delivered payload was never added")
        #expect(Set(tags).count == tags.count, "a task was delivered twice")
        let expected = Set(added.values).union(more.values).subtracting(completed)
        #expect(Set(tags) == expected)
        #expect(delivered.map(\.priority) == delivered.map(\.priority).sorted())
        try await reopened.close()
    }

    @Test(arguments: [UInt64(1), 2, 3, 4])
    func powerLossInSyncModeLosesNoAcknowledgedTask(seed: UInt64) async throws {
        var random = SplitMix64(seed: seed)
        let dir = TemporaryDirectory()
        let power = PowerLossSyscalls()
        var configuration = testConfiguration(.sync, segmentBytes: 64 << 10)
        configuration.log.syscalls = power
        configuration.refillBatchSize = 32
        configuration.memoryBudgetBytes = 16 << 10
        /// Tags that must be delivered at the next open (added, not durably completed).
        var outstanding: Set<Int> = []
        var nextTag = 0
        var cutsDuringAdds = 0
        var acknowledgedBeforeCuts = 0
        for round in 0..<6 {
            let store = try TaskStore.open(directory: dir.store, configuration: configuration)
            // Everything outstanding comes back, and nothing else.
            var seen: Set<Int> = []
            var completed: Set<Int> = []
            while let task = try await store.poll("q", kind: .activity, timeout: .zero) {
                let tag = try #require(Self.tag(of: task.payload), "seed \(seed) round \(round): foreign payload")
                seen.insert(tag)
                if random.below(3) == 0 {
                    try store.complete(task.id)
                    completed.insert(tag)
                }
            }
            #expect(outstanding.isSubset(of: seen), "seed \(seed) round \(round): lost \(outstanding.subtracting(seen).sorted().prefix(10))")
            #expect(seen.allSatisfy { $0 < nextTag }, "seed \(seed) round \(round)")
            // Completions are durable once flushed; the rest stays in flight, so must come back.
            try await store.flush()
            try store.checkpoint()
            outstanding = seen.subtracting(completed)

            power.cutPower(atStep: power.stepCount + 1 + random.below(120))
            let count = 100 + random.below(400)
            let added = await Self.addConcurrently(store, tags: nextTag..<nextTag + count, producers: 8)
            nextTag += count
            outstanding.formUnion(added.values)
            if power.isPowerCut && added.count < count {
                cutsDuringAdds += 1
                acknowledgedBeforeCuts += added.count
            }
            _ = try? store.checkpoint()
            store.abandon()
            power.simulatePowerLoss()
        }
        let store = try TaskStore.open(directory: dir.store, configuration: configuration)
        // The cuts did fall among acknowledged adds (else this test could not fail).
        #expect(cutsDuringAdds >= 3 && acknowledgedBeforeCuts > 0, "seed \(seed): \(cutsDuringAdds) cuts during adds")
        let tags = Set(try await store.drainNow("q").compactMap { Self.tag(of: $0.payload) })
        #expect(outstanding.isSubset(of: tags), "seed \(seed): lost \(outstanding.subtracting(tags).sorted().prefix(10))")
        try await store.close()
    }
}
