import SpoolLog
import SpoolMatching
import SpoolTestSupport
import Testing
@testable import SpoolQueue

@Suite struct TaskStoreRoundTripTests {
    @Test func addPollCompleteReturnsTheSameBytes() async throws {
        let dir = TemporaryDirectory()
        let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.sync))
        var ids: [UInt64] = []
        for i in 0..<50 { ids.append(try await store.add(payload(i, size: i * 37), to: "emails", kind: .activity)) }
        #expect(Set(ids).count == 50)
        let delivered = try await store.drainNow("emails")
        #expect(delivered.map(\.id) == ids)
        #expect(delivered.map(\.payload) == (0..<50).map { payload($0, size: $0 * 37) })
        #expect(delivered.allSatisfy { $0.attempt == 1 && $0.priority == 3 && $0.queue == "emails" && $0.kind == .activity })
        #expect(try await store.poll("emails", kind: .workflow, timeout: .zero) == nil)
        try await store.close()

        // Everything was completed: nothing comes back.
        let reopened = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.sync))
        #expect(try await reopened.drainNow("emails").isEmpty)
        try await reopened.close()
    }

    @Test func aWaitingPollerGetsTheTaskOnceItIsDurable() async throws {
        let dir = TemporaryDirectory()
        let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.sync))
        let queue = try store.queue("hand-off", kind: .workflow)
        async let polled = queue.poll(timeout: nil)
        while store.dispatcher.existingQueue("hand-off", kind: .workflow)?.describe().waitingPollers != 1 { await Task.yield() }
        let id = try await queue.add(Array("now".utf8))
        let task = try #require(try await polled)
        #expect(task.id == id && task.payload == Array("now".utf8))
        try store.complete(id)
        #expect(throws: QueueError.self) { try store.complete(id) }
        try await store.close()
    }

    @Test func priorityOrderAndFIFOSurviveAReopen() async throws {
        let dir = TemporaryDirectory()
        var expected: [[UInt8]] = []
        do {
            let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.sync))
            var byPriority: [Int: [[UInt8]]] = [:]
            for i in 0..<100 {
                let priority = [3, 1, 5, 2, 4, 3, 1][i % 7]
                _ = try await store.add(payload(i), to: "q", kind: .activity, options: TaskOptions(priority: priority))
                byPriority[priority, default: []].append(payload(i))
            }
            expected = (1...5).flatMap { byPriority[$0] ?? [] }
            try await store.close()
        }
        let reopened = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.sync))
        let delivered = try await reopened.drainNow("q")
        #expect(delivered.map(\.payload) == expected)
        #expect(delivered.map(\.priority) == delivered.map(\.priority).sorted())
        try await reopened.close()
    }

    @Test func inFlightTasksAreDeliveredAgainAfterAReopen() async throws {
        let dir = TemporaryDirectory()
        var ids: [UInt64] = []
        do {
            let store = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.sync))
            for i in 0..<10 { ids.append(try await store.add(payload(i), to: "q", kind: .workflow)) }
            let taken = try await store.drainNow("q", kind: .workflow, complete: false)
            #expect(taken.count == 10)
            for task in taken.prefix(4) { try store.complete(task.id) }
            try await store.close()
        }
        let reopened = try TaskStore.open(directory: dir.store, configuration: testConfiguration(.sync))
        let again = try await reopened.drainNow("q", kind: .workflow)
        #expect(again.map(\.id) == Array(ids.dropFirst(4)))
        try await reopened.close()
    }
}
