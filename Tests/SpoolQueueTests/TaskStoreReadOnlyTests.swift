#if canImport(Glibc)
import Glibc
#endif
import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import SpoolQueue

/// A task store opened with `log.access = .readOnly` writes nothing at all, shows every pending
/// task, and refuses writes with the log's `readOnly` error (issue 25, point 7).
@Suite struct TaskStoreReadOnlyTests {
    private func readOnly() -> TaskStoreConfiguration {
        var configuration = testConfiguration()
        configuration.log.access = .readOnly
        return configuration
    }

    @Test("a read-only open of a store killed mid-work changes no file and shows every pending task")
    func readOnlyOpenWritesNothing() async throws {
        let dir = TemporaryDirectory()
        let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration())
        var ids: [UInt64] = []
        for i in 0..<30 { ids.append(try await store.add(payload(i), to: "q", kind: .activity)) }
        let first = try #require(try await store.poll("q", kind: .activity, timeout: .zero))
        try store.complete(first.id)
        await store.waitForAckWriter()
        store.abandon()  // unclean: a read-write open would repair and checkpoint
        let before = fileStamps(dir.store)

        let reader = try TaskStore.open(directory: dir.store, configuration: readOnly())
        let peeked = try reader.peek("q", kind: .activity, limit: 100)
        #expect(peeked.map(\.id) == Array(ids.dropFirst()))
        #expect(peeked.map(\.payload) == (1..<30).map { payload($0) })
        #expect(reader.listQueues().count == 1)
        try await reader.close()
        #expect(fileStamps(dir.store) == before)
    }

    @Test("writes to a read-only store fail with the log's readOnly error and change nothing")
    func writesAreRefused() async throws {
        let dir = TemporaryDirectory()
        let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration())
        _ = try await store.add(payload(0), to: "q", kind: .activity)
        try await store.close()
        let before = fileStamps(dir.store)

        let reader = try TaskStore.open(directory: dir.store, configuration: readOnly())
        do {
            _ = try await reader.add(payload(1), to: "q", kind: .activity)
            Issue.record("add succeeded on a read-only store")
        } catch {
            #expect(error.code == .log)
            #expect((error.underlying as? LogError)?.code == .readOnly, "\(error)")
        }
        try await reader.close()
        #expect(fileStamps(dir.store) == before)
    }

    @Test("a damaged checkpoint directory is left where it is by a reader, which still shows every task")
    func damagedCheckpointLeftInPlace() async throws {
        let dir = TemporaryDirectory()
        let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration())
        for i in 0..<5 { _ = try await store.add(payload(i), to: "q", kind: .activity) }
        try await store.close()
        removeTree(dir.store + "/checkpoint")
        #expect(mkdir(dir.store + "/checkpoint", 0o700) == 0)
        let before = fileStamps(dir.store)

        let reader = try TaskStore.open(directory: dir.store, configuration: readOnly())
        #expect(reader.recoveryReport.ignoredCheckpoint != nil)
        #expect(reader.recoveryReport.movedCheckpoint == nil)
        #expect(try reader.peek("q", kind: .activity, limit: 10).map(\.payload) == (0..<5).map { payload($0) })
        try await reader.close()
        #expect(fileStamps(dir.store) == before)
    }

    @Test("a read-only open of a missing directory fails and creates nothing")
    func missingDirectory() throws {
        let dir = TemporaryDirectory()
        do {
            _ = try TaskStore.open(directory: dir.store, configuration: readOnly())
            Issue.record("a read-only open of a missing directory succeeded")
        } catch {
            #expect(error.code == .directoryMissing, "\(error)")
        }
        #expect(!DataDirectory.isDirectory(dir.store))
    }
}
