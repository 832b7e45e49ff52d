import SpoolLogTesting
import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import SpoolQueue

/// Under `.none`, a power loss may cut the log below a checkpoint that was synced: the reopened
/// store must not treat the offsets that new records will reuse as acknowledged.
@Suite struct TaskStoreCheckpointCrashTests {
    @Test func aCheckpointAheadOfATruncatedLogDoesNotSwallowNewTasks() async throws {
        let dir = TemporaryDirectory()
        let power = PowerLossSyscalls()
        var configuration = testConfiguration(.none)
        configuration.log.syscalls = power
        configuration.ackBucketShift = 0
        do {
            let store = try TaskStore.open(directory: dir.store, configuration: configuration)
            try await store.flush()  // the empty log's first segment is durable
            for i in 0..<50 {
                _ = try await store.add(payload(i), to: "q", kind: .activity)
                try store.complete(try #require(try await store.poll("q", kind: .activity, timeout: .zero)).id)
            }
            await store.waitForAckWriter()
            #expect(try store.checkpoint() == store.logEnd)  // synced; the log's records are not
            store.abandon()
            power.simulatePowerLoss()
        }
        var ids: [UInt64] = []
        do {
            let store = try TaskStore.open(directory: dir.store, configuration: configuration)
            #expect(store.logEnd < 50)  // the unsynced tail is gone
            for i in 0..<5 { ids.append(try await store.add(payload(100 + i), to: "q", kind: .activity)) }
            try await store.flush()
            store.abandon()
        }
        let store = try TaskStore.open(directory: dir.store, configuration: configuration)
        #expect(try await store.drainNow("q").map(\.id) == ids)
        try await store.close()
    }
}
