import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import SpoolQueue

/// Issue 25, point 5: tasks added as a batch keep their order and share fdatasyncs; names
/// with control characters, over-long names and names from lossy decoding are refused.
@Suite struct TaskStoreOrderAndNameTests {
    @Test("add(contentsOf:) gives ids in input order and one fdatasync per batch")
    func batchKeepsOrderAndSharesSyncs() async throws {
        let dir = TemporaryDirectory()
        let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.sync))
        let payloads = (0..<2000).map { Array("line \($0)".utf8) }
        let syncsBefore = store.logStatistics.fdatasyncs
        var ids: [UInt64] = []
        var start = 0
        while start < payloads.count {
            let batch = Array(payloads[start..<min(start + 128, payloads.count)])
            ids += try await store.add(contentsOf: batch, to: "q", kind: .activity)
            start += batch.count
        }
        #expect(ids == ids.sorted() && Set(ids).count == ids.count, "ids are not increasing in input order")
        let syncs = store.logStatistics.fdatasyncs - syncsBefore
        #expect(syncs <= 2 * ((payloads.count + 127) / 128), "\(syncs) fdatasyncs for \(payloads.count) tasks")
        // Delivered in input order too.
        var delivered: [[UInt8]] = []
        while let task = try await store.poll("q", kind: .activity, timeout: .zero) {
            delivered.append(task.payload)
            try store.complete(task.id)
        }
        #expect(delivered == payloads)
        try await store.close()
    }

    @Test("queue names: control characters, U+FFFD and over 1000 bytes are refused, and nothing is written")
    func badQueueNames() async throws {
        let dir = TemporaryDirectory()
        let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.sync))
        let end = store.logEnd
        for name in ["a\nb", "tab\there", "nul\u{0}", "cr\r", "del\u{7F}", "c1\u{85}", "\u{FFFD}x", "sep\u{2028}",
                     String(repeating: "n", count: 1001)] {
            do {
                _ = try await store.add([1], to: name, kind: .activity)
                Issue.record("\(name.debugDescription) was accepted")
            } catch {
                #expect(error.code == .invalidQueueName, "\(error)")
                #expect(!error.description.contains("\n"), "the message spans lines: \(error)")
            }
            #expect(throws: QueueError.self) { _ = try store.queue(name, kind: .activity) }
        }
        #expect(store.logEnd == end)
        // 1000 bytes and any printable text are fine.
        _ = try await store.add([1], to: String(repeating: "é", count: 500), kind: .activity)
        _ = try await store.add([1], to: "orders/eu-west émoji 🙂", kind: .activity)
        try await store.close()
    }

    @Test("the matching core refuses the same names")
    func dispatcherRefusesBadNames() throws {
        let dispatcher = try Dispatcher<Int>()
        for name in ["a\nb", "\u{FFFD}", String(repeating: "x", count: 1001)] {
            #expect(throws: MatchingError.self) { _ = try dispatcher.queue(name, kind: .activity) }
        }
        #expect(IdentifierText.problem(in: "a\nb")?.contains("newline") == true)
        #expect(IdentifierText.problem(in: String(repeating: "x", count: 1001))?.contains("1001") == true)
        #expect(IdentifierText.problem(in: "fine") == nil)
    }

    @Test("a queue named before control characters were refused still opens with its tasks")
    func recordedNamesStayReachable() async throws {
        let dir = TemporaryDirectory()
        let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.sync))
        // As an older version wrote it: the name passes only the old checks.
        let state = try store.queueState("old\nname", kind: .activity, recorded: true)
        _ = try await store.add([7], to: state, options: TaskOptions())
        try await store.close()
        let reopened = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.sync))
        #expect(reopened.listQueues().contains { $0.name == "old\nname" && $0.backlogCount == 1 })
        try await reopened.close()
    }
}
